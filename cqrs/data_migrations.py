"""Versioned data migrations: ordered Python files applied once each, recorded in DynamoDB.

Schema evolution in an event-sourced store goes: add the attribute as optional
with a default, deploy the code that writes it, then *backfill* the existing
entities through commands (so the command log stays the truth and history
shows the change). A backfill is a migration::

    migrations/
      0001_order_priority.py
      0002_cat_owner.py

Each file has a module docstring (its description) and ``def up(ctx) -> None``.
Files are ordered by their numeric prefix; ``_helpers.py``-style files (leading
underscore) and non-Python files are ignored; any other ``.py`` file that does
not look like ``0001_short_name.py``, two files with the same number, a file
without a docstring or without ``up`` are a :class:`~cqrs.errors.ConfigurationError`
raised before anything runs.

:func:`run_migrations` reads the ids already applied from the ``<prefix>migrations``
table (one Query), then runs every other migration in order. After one
succeeds it is recorded (``{pk: "MIGRATION", sk: id, name, description,
appliedAt, durationMs}``, written only if absent). A migration that raises is
not recorded and stops the run: later ones do not run, and the next run starts
again at the failed one. Migrations must therefore be idempotent — a crash in
the middle of a backfill leaves it half done, and the rerun does it again.

Two runners at once: there is no lock. Both may run the same pending migration
(harmless when it is idempotent, as it must be anyway); the record is written
with ``attribute_not_exists(sk)``, so only the first to finish records it, and
the other stops with :class:`MigrationConflictError` instead of racing on
through the rest. Run migrations from one place (the deploy pipeline) to avoid
the duplicated work.
"""

from __future__ import annotations

import ast
import re
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from .batch import paginate
from .clients import dynamo_errors, error_code, translate
from .codec import Item, deserialize, serialize
from .errors import ConfigurationError, CqrsError, TableNotFoundError
from .keys import add_version
from .models import InvokeContext
from .progress import ProgressPrinter, track

if TYPE_CHECKING:
    from .app import Cqrs

T = TypeVar("T")
Echo = Callable[[str], None]

#: Name of the system table holding the applied migrations (``<prefix>migrations``).
MIGRATIONS_TABLE = "migrations"
#: Partition key of every migration record.
MIGRATION_PK = "MIGRATION"

_FILE_NAME = re.compile(r"^(?P<number>\d+)_(?P<name>[a-z0-9][a-z0-9_]*)$")
_SCAN_PAGE = 500


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
class Migration:
    """One migration file: ``<number>_<name>.py``; ``id`` is the file name without ``.py``."""

    id: str
    number: int
    name: str
    description: str
    path: Path

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.splitlines()[0] if self.description else ""

    def load(self) -> Callable[[MigrationContext], None]:
        """Execute the file as a fresh module (no bytecode cache) and return its ``up``."""
        module_name = f"_cqrs_migration_{self.id}"
        module = types.ModuleType(module_name, self.description)
        module.__file__ = str(self.path)
        try:
            source = self.path.read_text(encoding="utf-8")
            code = compile(source, str(self.path), "exec", dont_inherit=True)
            sys.modules[module_name] = module  # dataclasses & co. look themselves up there
            exec(code, module.__dict__)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise ConfigurationError(
                f"migration {self.path} failed to load: {type(exc).__name__}: {exc}", cause=exc
            ) from exc
        up = module.__dict__.get("up")
        if not callable(up):
            raise ConfigurationError(f"migration {self.path} has no function up(ctx)")
        function: Callable[[MigrationContext], None] = up
        return function


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


@dataclass
class MigrationContext:
    """What a migration's ``up(ctx)`` gets.

    - ``app``: the :class:`~cqrs.app.Cqrs` (``ctx.app.entity("order").commands`` …).
    - ``migration``: the :class:`Migration` being run (its ``id``, ``description``).
    - ``dry_run``: always ``False`` under :func:`run_migrations`, which runs no
      migration in a dry run; set it when calling ``up`` yourself to preview,
      and honour it in ``up`` by writing nothing.
    - ``echo``: print a line (stdout under ``cqrs migrate``).
    - :meth:`progress`, :meth:`scan_data`, :meth:`estimate_rows`,
      :meth:`latest_command`, :meth:`invoke_context`: helpers for backfills.
    """

    app: Cqrs
    migration: Migration
    dry_run: bool = False
    echo: Echo = print
    progress_stream: TextIO | None = None  # None: sys.stderr
    _printers: list[ProgressPrinter] = field(default_factory=list, init=False, repr=False)

    def progress(
        self, iterable: Iterable[T], total: int | None = None, label: str | None = None
    ) -> Iterator[T]:
        """Yield from ``iterable`` while printing progress to stderr.

        ``total`` may be an estimate (:meth:`estimate_rows`); ``label`` defaults
        to the migration id. The final line is printed when the loop ends, and
        also when ``up`` raises.
        """
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        printer = ProgressPrinter(
            total, label if label is not None else self.migration.id, stream=self.progress_stream
        )
        self._printers.append(printer)
        return track(iterable, printer)

    def close_progress(self, *, stopped: bool = False) -> None:
        """Print the final line of every progress bar still open (called by the runner)."""
        for printer in self._printers:
            printer.close(stopped=stopped)
        self._printers.clear()

    def scan_data(self, entity: str, *, page_size: int = _SCAN_PAGE) -> Iterator[Item]:
        """Every data row of ``entity`` across all tenants, soft-deleted ones included.

        A paginated Scan of ``<entity>-data`` yielding raw stored items
        (camelCase dicts, ``attributes`` as stored), one page in memory at a
        time. Raw on purpose: a typed model would fill in the very defaults a
        backfill needs to see are missing. Reads are eventually consistent; a
        row may lag its latest command (see :meth:`latest_command`).
        """
        table = self.app.schema.entity_tables(entity).data
        request = {"TableName": table, "Limit": page_size}
        yield from paginate(self.app.clients.dynamodb, "scan", request)

    def estimate_rows(self, entity: str) -> int:
        """DynamoDB's item count of ``<entity>-data`` (refreshed about every six hours).

        Cheap (one DescribeTable); good enough as a progress total.
        """
        table = self.app.schema.entity_tables(entity).data
        with dynamo_errors(f"describe {table}"):
            described = self.app.clients.dynamodb.describe_table(TableName=table)
        return int(described["Table"].get("ItemCount", 0))

    def latest_command(self, entity: str, pk: str, sk: str) -> Item | None:
        """The latest command of one entity as stored (a raw dict), or ``None``.

        The command log is the truth: use this when a data row proved stale
        (a :class:`~cqrs.errors.VersionConflictError` on a write based on it).
        """
        commands = self.app.entity(entity).commands
        version = commands.latest_version(pk, sk)
        if not version:
            return None
        table = commands.tables.command
        with dynamo_errors(f"get {table}"):
            response = self.app.clients.dynamodb.get_item(
                TableName=table,
                Key=serialize({"pk": pk, "sk": add_version(sk, version)}),
                ConsistentRead=True,
            )
        return deserialize(response["Item"]) if "Item" in response else None

    def invoke_context(self, tenant_code: str) -> InvokeContext:
        """An :class:`~cqrs.models.InvokeContext` for commands this migration publishes.

        ``user_id`` is ``migration:<id>``, so history shows who made the change.
        """
        return InvokeContext(tenant_code=tenant_code, user_id=f"migration:{self.migration.id}")


# -- discovery -------------------------------------------------------------------


def discover(directory: Path | str) -> list[Migration]:
    """The migrations in ``directory``, ordered by number; validates every file first.

    Raises :class:`~cqrs.errors.ConfigurationError` naming every bad file: a
    name that is not ``<digits>_<lowercase_name>.py``, a duplicate number, a
    syntax error, a missing module docstring or a missing ``def up``.
    Nothing is executed.
    """
    directory = Path(directory)
    problems: list[str] = []
    by_number: dict[int, list[Migration]] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue  # __init__.py, _helpers.py
        match = _FILE_NAME.match(path.stem)
        if match is None:
            problems.append(
                f"{path.name}: name must look like 0001_short_name.py "
                "(digits, underscore, lowercase letters/digits/underscores)"
            )
            continue
        try:
            description = _describe(path)
        except ConfigurationError as exc:
            problems.append(str(exc))
            continue
        number = int(match["number"])
        migration = Migration(path.stem, number, match["name"], description, path)
        by_number.setdefault(number, []).append(migration)
    for number, same in sorted(by_number.items()):
        if len(same) > 1:
            names = ", ".join(m.path.name for m in same)
            problems.append(f"duplicate migration number {number}: {names}")
    if problems:
        raise ConfigurationError(f"bad migrations in {directory}:\n  " + "\n  ".join(problems))
    return [same[0] for _, same in sorted(by_number.items())]


def _describe(path: Path) -> str:
    """The module docstring of a migration file; checks it defines ``up``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        raise ConfigurationError(f"{path.name}: syntax error line {exc.lineno}: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path.name}: unreadable: {exc}") from exc
    docstring = ast.get_docstring(tree)
    if not docstring or not docstring.strip():
        raise ConfigurationError(f"{path.name}: add a module docstring describing the migration")
    has_up = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "up"
        for node in tree.body
    )
    if not has_up:
        raise ConfigurationError(f"{path.name}: define a module-level function up(ctx)")
    return docstring.strip()


# -- records ---------------------------------------------------------------------


def applied_ids(app: Cqrs) -> list[str]:
    """Ids recorded in ``<prefix>migrations``, sorted (one Query per MB of records)."""
    table = app.schema.system_table(MIGRATIONS_TABLE)
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": serialize({":pk": MIGRATION_PK}),
        "ProjectionExpression": "sk",
        "ConsistentRead": True,
    }
    return sorted(str(item["sk"]) for item in paginate(app.clients.dynamodb, "query", kwargs))


def _record(app: Cqrs, migration: Migration, applied_at: str, duration_ms: int) -> bool:
    """Record ``migration`` as applied; ``False`` if another runner already did."""
    table = app.schema.system_table(MIGRATIONS_TABLE)
    item = {
        "pk": MIGRATION_PK,
        "sk": migration.id,
        "name": migration.name,
        "description": migration.description,
        "appliedAt": applied_at,
        "durationMs": duration_ms,
    }
    try:
        app.clients.dynamodb.put_item(
            TableName=table,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(sk)",
        )
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise translate(exc, f"put {table}") from exc
    return True


# -- running ---------------------------------------------------------------------


def default_directory(tables_dir: Path | str) -> Path:
    """Where ``cqrs migrate`` looks by default: ``migrations/`` beside the tables folder."""
    return Path(tables_dir).parent / "migrations"


def run_migrations(
    app: Cqrs,
    directory: Path | str,
    *,
    dry_run: bool = False,
    echo: Echo = print,
    progress_stream: TextIO | None = None,
) -> MigrationReport:
    """Apply, in order, every migration in ``directory`` not yet recorded; record each.

    Run :meth:`Cqrs.migrate <cqrs.app.Cqrs.migrate>` first (the records live in
    the ``migrations`` system table). A missing ``directory`` is skipped with a
    line saying so. Progress bars go to ``progress_stream`` (default stderr).
    ``dry_run`` lists what would run and runs nothing (a missing migrations
    table then counts as nothing applied). Raises
    :class:`~cqrs.errors.ConfigurationError` (bad files) before running
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
    try:
        done = applied_ids(app)
    except TableNotFoundError:
        if not dry_run:
            raise
        done = []  # the dry run did not create the table: nothing was applied yet
    report.already_applied = done
    _check_renames(migrations, done)
    known = {m.id for m in migrations}
    for unknown in (i for i in done if i not in known):
        echo(f"migrations: {unknown} is recorded but has no file in {directory}/ (left as is)")
    applied_before = set(done)
    pending = [m for m in migrations if m.id not in applied_before]
    if not pending:
        echo(f"migrations: up to date ({len(migrations)} applied)")
        return report
    if dry_run:
        report.pending = pending
        for migration in pending:
            echo(f"would apply  {migration.id}  {migration.summary}")
        echo(f"migrations: {len(pending)} pending, none run (dry run)")
        return report
    functions = {m.id: m.load() for m in pending}  # a file that fails to load stops us here
    for index, migration in enumerate(pending):
        echo(f"applying     {migration.id}  {migration.summary}")
        context = MigrationContext(app, migration, echo=echo, progress_stream=progress_stream)
        started = time.monotonic()
        try:
            functions[migration.id](context)
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
        duration_ms = int((time.monotonic() - started) * 1000)
        applied_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if not _record(app, migration, applied_at, duration_ms):
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
    return report


def _check_renames(migrations: list[Migration], done: list[str]) -> None:
    """Refuse a file whose number was applied under another name (it would run twice)."""
    recorded: dict[int, str] = {}
    for applied in done:
        match = _FILE_NAME.match(applied)
        if match:
            recorded[int(match["number"])] = applied
    for migration in migrations:
        previous = recorded.get(migration.number)
        if previous is not None and previous != migration.id:
            raise ConfigurationError(
                f"migration number {migration.number} was applied as {previous!r} but the "
                f"file is now {migration.path.name}: rename it back (applied migrations "
                "keep their id), or give new work a new number"
            )
