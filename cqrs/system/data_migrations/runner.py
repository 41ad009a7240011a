"""Running the pending migrations in order, recording each, stopping at the first failure."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.errors import CqrsError, TableNotFoundError
from .context import Echo, MigrationContext
from .discovery import Migration, check_renames, discover
from .ledger import applied_ids, record
from .progress import ProgressBars, line_progress

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...app import Cqrs


class MigrationFailedError(CqrsError):
    """A migration raised: it was not recorded and the later ones did not run.

    ``migration`` is the one that failed, ``report`` what the run did before it,
    ``cause`` the original exception.
    """

    def __init__(
        self,
        message: str,
        migration: Migration,
        report: MigrationReport,
        *,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, cause=cause)
        self.migration = migration
        self.report = report


class MigrationConflictError(MigrationFailedError):
    """Another runner recorded the migration while this one was running it."""


@dataclass(frozen=True)
class AppliedMigration:
    """A migration this run applied (and recorded)."""

    migration: Migration
    applied_at: str
    duration_ms: int


@dataclass
class MigrationReport:
    """What :func:`run_migrations` found and did.

    ``already_applied``: ids recorded before the run (including ids with no file
    here, e.g. from another branch); ``applied``: what this run applied;
    ``pending``: with ``dry_run``, what would run; otherwise what was left
    unapplied (empty unless a migration failed).
    """

    directory: Path
    dry_run: bool = False
    found: bool = True
    already_applied: list[str] = field(default_factory=list)
    applied: list[AppliedMigration] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)


def default_directory(tables_dir: Path | str) -> Path:
    """Where ``cqrs migrate`` looks by default: ``migrations/`` beside the tables folder."""
    return Path(tables_dir).parent / "migrations"


def run_migrations(
    app: Cqrs,
    directory: Path | str,
    *,
    dry_run: bool = False,
    echo: Echo = print,
    progress_bars: ProgressBars | None = None,
) -> MigrationReport:
    """Apply, in order, every migration in ``directory`` not yet recorded; record each.

    Run :meth:`Cqrs.migrate <cqrs.app.Cqrs.migrate>` first (the records live in
    the ``migrations`` system table). A missing ``directory`` is skipped with a
    line saying so. ``progress_bars`` makes the bars of ``ctx.progress`` (default:
    plain lines on stderr, :func:`~cqrs.system.data_migrations.progress.line_progress`).
    ``dry_run`` lists what would run and runs nothing (a missing migrations
    table then counts as nothing applied). Raises
    :class:`~cqrs.core.errors.ConfigurationError` (bad files) before running
    anything, :class:`MigrationFailedError` when a migration raises (it is not
    recorded; later ones don't run; rerun to resume) and
    :class:`MigrationConflictError` when another runner recorded it first.
    """
    directory = Path(directory)
    report = MigrationReport(directory, dry_run=dry_run)
    if not directory.is_dir():
        report.found = False
        echo(f"migrations: no {directory}/ folder, nothing to run")
        return report
    migrations = discover(directory)
    pending = _pending(app, migrations, report, echo)
    if not pending:
        echo(f"migrations: up to date ({len(migrations)} applied)")
    elif dry_run:
        report.pending = pending
        for migration in pending:
            echo(f"would apply  {migration.id}  {migration.summary}")
        echo(f"migrations: {len(pending)} pending, none run (dry run)")
    else:
        _apply_all(app, pending, report, echo, progress_bars)
    return report


def _pending(
    app: Cqrs, migrations: list[Migration], report: MigrationReport, echo: Echo
) -> list[Migration]:
    """Read what is applied into ``report``; the migrations still to run, in order."""
    try:
        done = applied_ids(app)
    except TableNotFoundError:
        if not report.dry_run:
            raise
        done = []  # the dry run did not create the table: nothing was applied yet
    report.already_applied = done
    check_renames(migrations, done)
    known = {m.id for m in migrations}
    for unknown in (i for i in done if i not in known):
        echo(
            f"migrations: {unknown} is recorded but has no file in {report.directory}/ (left as is)"
        )
    applied_before = set(done)
    return [m for m in migrations if m.id not in applied_before]


def _apply_all(
    app: Cqrs,
    pending: list[Migration],
    report: MigrationReport,
    echo: Echo,
    progress_bars: ProgressBars | None,
) -> None:
    """Run and record each of ``pending`` in order; raise at the first that fails."""
    functions = {m.id: m.load() for m in pending}  # a file that fails to load stops us here
    for index, migration in enumerate(pending):
        echo(f"applying     {migration.id}  {migration.summary}")
        bars = progress_bars or line_progress()
        context = MigrationContext(app, migration, echo=echo, progress_bars=bars)
        started = time.monotonic()
        _run_one(functions[migration.id], context, pending, index, report)
        duration_ms = int((time.monotonic() - started) * 1000)
        applied_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if not record(app, migration, applied_at, duration_ms):
            report.pending = pending[index + 1 :]
            raise MigrationConflictError(
                f"migration {migration.id} was recorded by another runner while this one ran "
                "it; stopping here: run migrations from one place, then rerun",
                migration,
                report,
            )
        report.applied.append(AppliedMigration(migration, applied_at, duration_ms))
        echo(f"applied      {migration.id}  in {duration_ms / 1000:.1f}s")
    echo(f"migrations: applied {len(report.applied)}")


def _run_one(
    up: Callable[[MigrationContext], None],
    context: MigrationContext,
    pending: list[Migration],
    index: int,
    report: MigrationReport,
) -> None:
    """Call ``up(context)``; a failure becomes :class:`MigrationFailedError` (not recorded)."""
    migration = context.migration
    try:
        up(context)
    except BaseException as exc:
        context.close_progress(stopped=True)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt & co.: not recorded either
        report.pending = pending[index:]
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise MigrationFailedError(
            f"migration {migration.id} failed: {detail}; it was not recorded and "
            f"{len(pending) - index - 1} later migration(s) did not run; "
            "fix it and rerun to resume",
            migration,
            report,
            cause=exc,
        ) from exc
    context.close_progress()
