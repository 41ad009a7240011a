"""The data commands: ``migrate``, ``sync``, ``rebuild``, ``stuck`` and ``redrive``.

Each returns its exit code (:mod:`cqrs.cli.errors`); a
:class:`~cqrs.core.errors.CqrsError` it raises becomes a one-line error in
:func:`cqrs.cli.app.run`. The app comes from :func:`_app` (``--app``, or the
options and the environment).
"""

from __future__ import annotations

import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .errors import FAILURE, OK, USAGE, fail
from .loading import app_for as _app
from .loading import stop_on_signals
from .options import AppSpec, DryRun, EndpointUrl, Entity, Prefix, TablesDir, target
from .progress import Phases, SyncProgress, follow_printing, progress_bars

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..sync.follower import PollReport, StreamFollower


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    for command in (migrate, sync, rebuild, stuck, redrive):
        app.command()(command)


def migrate(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="print table changes and pending migrations; change nothing"
        ),
    ] = False,
    migrations_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="folder of NNNN_name.py data migrations (default: migrations/ beside the "
            "tables folder)",
            show_default=False,
        ),
    ] = None,
    endpoint_url: EndpointUrl = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
) -> int:
    """Create missing tables and fix drift, then run pending data migrations."""
    from ..system.data_migrations import MigrationFailedError, default_directory, run_migrations

    app = _app(target("migrate", endpoint_url, tables_dir, prefix, app_spec))
    changes = app.migrate(dry_run=dry_run, echo=print)
    verb = "would change" if dry_run else "changed"
    print(f"migrate: {verb} {len(changes)} thing(s) across {len(app.schema.definitions())} tables")
    directory = migrations_dir or default_directory(app.settings.tables_dir)
    try:
        run_migrations(app, directory, dry_run=dry_run, echo=print, progress_bars=progress_bars())
    except MigrationFailedError as exc:
        if exc.cause is not None:
            traceback.print_exception(exc.cause, file=sys.stderr)
        return fail(str(exc))
    return OK


def sync(
    follow: Annotated[bool, typer.Option("--follow", help="keep following until Ctrl-C")] = False,
    interval: Annotated[
        float, typer.Option(metavar="SECONDS", help="seconds between idle polls (with --follow)")
    ] = 0.25,
    checkpoints: Annotated[
        Path,
        typer.Option(metavar="FILE", help="checkpoint file (per stream ARN and shard)"),
    ] = Path(".cqrs/checkpoints.json"),
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, metavar="N", help="records per batch, at most")
    ] = 100,
    endpoint_url: EndpointUrl = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
) -> int:
    """Feed every streamed table's new records through the synchronizer.

    Shows the records handled and their rate (a live line on a terminal, a line every
    few seconds otherwise); with --follow, prints one line per batch.
    """
    from ..sync.follower import FileCheckpoints

    app = _app(target("sync", endpoint_url, tables_dir, prefix, app_spec))
    if app_spec is None and "tasks" in app.schema.system_tables:
        # No --app: the service's task handlers are not in this process. Leave their
        # tasks QUEUED for one that has them instead of failing them here.
        app.tasks.unhandled = "leave"
    follower = app.follower(checkpoints=FileCheckpoints(checkpoints), batch_size=batch_size)
    streams = len(app.streamed_tables())
    if not follow:
        print(f"sync: reading {streams} stream(s)", flush=True)
        report, totals = _drain(app, follower)
        print(
            f"sync: {report.records} record(s) in {report.batches} batch(es), "
            f"{report.failed} failed; {totals}"
        )
        return FAILURE if report.failed else OK
    stop = threading.Event()
    print(f"sync: following {streams} stream(s); Ctrl-C to stop", flush=True)
    with stop_on_signals(stop):
        follow_printing(app, follower, stop, interval)
    return OK


def _drain(app: Cqrs, follower: StreamFollower) -> tuple[PollReport, str]:
    """Drain every stream once, showing progress (:class:`SyncProgress`); the report and
    what the records became (``2 applied``, with stuck and rejected ones if any)."""
    from ..sync.telemetry import observing

    progress = SyncProgress()
    stopped = True
    try:
        report = follower.with_handler(observing(app.process_event, progress)).drain()
        stopped = False
    finally:
        progress.close(stopped=stopped)
    return report, progress.totals.outcome()


def rebuild(
    entity: Entity,
    prune: Annotated[
        bool, typer.Option("--prune", help="delete rows the command log does not imply")
    ] = False,
    dry_run: DryRun = False,
    endpoint_url: EndpointUrl = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
) -> int:
    """Recompute an entity's data and history from its command table."""
    app = _app(target("rebuild", endpoint_url, tables_dir, prefix, app_spec))
    app.schema.entity_tables(entity)  # unknown entity → UnknownEntityError, before anything
    phases = Phases(progress_bars())
    stopped = True
    try:
        report = app.rebuild(entity, prune=prune, dry_run=dry_run, progress=phases)
        stopped = False
    finally:
        phases.close(stopped=stopped)
    verb = "would write" if dry_run else "wrote"
    print(
        f"rebuild {entity}: {report.commands} command(s), {report.entities} entit(ies); "
        f"{verb} {report.data_written} data row(s) and {report.history_written} history item(s)"
    )
    if report.skipped_newer:
        print(f"  {report.skipped_newer} data row(s) were already ahead of the log (left alone)")
    for table, pk, sk in report.orphans:
        action = "deleted" if prune and not dry_run else "not in the log (use --prune)"
        print(f"  orphan {table} {pk} / {sk}: {action}")
    return OK


def stuck(
    entity: Annotated[
        str | None,
        typer.Argument(metavar="[ENTITY]", help="entity name (default: every entity)"),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(metavar="CODE", help="only this tenant code", show_default=False)
    ] = None,
    endpoint_url: EndpointUrl = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
) -> int:
    """List entities whose sync keeps failing, and rejected records (exit 1 if any)."""
    app = _app(target("stuck", endpoint_url, tables_dir, prefix, app_spec))
    failures = app.sync_failures.failing(entity, tenant_code=tenant)
    for f in failures:
        state = "STUCK" if f.stuck else "retrying"
        waiting = f.waiting_through - f.failed_version
        print(
            f"{state:8} {f.entity} {f.pk} / {f.sk}: version {f.failed_version} failed "
            f"{f.attempts}x since {f.first_failed_at} (data at {f.data_version}, "
            f"{waiting} version(s) waiting): {f.error}"
        )
    stuck = sum(1 for f in failures if f.stuck)
    rejected = _print_rejected(app, entity)
    print(f"stuck: {stuck} stuck, {len(failures) - stuck} retrying, {rejected} rejected record(s)")
    return FAILURE if stuck or rejected else OK


def _print_rejected(app: Cqrs, entity: str | None) -> int:
    """List the stream records sync rejected (of ``entity``'s command table, if given)."""
    table = app.schema.entity_tables(entity).command if entity else None
    kept = app.sync_failures.rejected_records.list(table)
    for r in kept:
        where = f"{r.pk} / {r.sk}" if r.pk or r.sk else "(no key)"
        print(
            f"REJECTED {r.table or '-'} record {r.sequence_number or '-'} {where} "
            f"at {r.rejected_at}: {r.reason}"
        )
    return len(kept)


def redrive(
    entity: Entity,
    pk: Annotated[
        str | None,
        typer.Option(metavar="PK", help="only entities with this pk", show_default=False),
    ] = None,
    sk: Annotated[
        str | None,
        typer.Option(
            metavar="SK", help="only the entity with this sk (with --pk)", show_default=False
        ),
    ] = None,
    without_handlers: Annotated[
        bool,
        typer.Option(
            "--without-handlers",
            help="redrive with no DataSyncHandlers (only when the entity has none)",
        ),
    ] = False,
    endpoint_url: EndpointUrl = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
) -> int:
    """Re-apply stuck entities from their data version, once the cause is fixed."""
    if not app_spec and not without_handlers:
        return fail(
            "redrive runs your DataSyncHandlers: pass --app module:attribute "
            "(or --without-handlers if the entity has none)",
            USAGE,
        )
    app = _app(target("redrive", endpoint_url, tables_dir, prefix, app_spec))
    results = app.sync_failures.redrive(entity, pk=pk, sk=sk)
    for r in results:
        f = r.failure
        if r.ok:
            print(f"redriven {f.pk} / {f.sk}: applied through version {r.applied_through}")
        else:
            print(f"still failing {f.pk} / {f.sk} at version {f.failed_version}: {r.error}")
    failed = sum(1 for r in results if not r.ok)
    print(f"redrive {entity}: {len(results) - failed} redriven, {failed} still failing")
    return FAILURE if failed else OK
