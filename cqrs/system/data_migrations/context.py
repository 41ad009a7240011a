"""What a migration's ``up(ctx)`` gets: the app, progress bars and backfill helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ...core.context import SYSTEM, InvokeContext
from ...core.errors import TableNotFoundError
from ...core.keys import add_version
from ...store.tables import TableAdmin
from .progress import ProgressBar, ProgressBars, line_progress, track

if TYPE_CHECKING:
    from ...app import Cqrs
    from ...core.items import Item
    from .discovery import Migration

T = TypeVar("T")
Echo = Callable[[str], None]

SCAN_PAGE = 500


@dataclass
class MigrationContext:
    """What a migration's ``up(ctx)`` gets.

    - ``app``: the :class:`~cqrs.app.Cqrs` (``ctx.app.entity("order").commands`` …).
      Its reads are tenant-scoped: a migration acting on every tenant passes
      ``context=SYSTEM`` (:data:`cqrs.core.context.SYSTEM`).
    - ``migration``: the :class:`Migration` being run (its ``id``, ``description``).
    - ``dry_run``: always ``False`` under :func:`run_migrations`, which runs no
      migration in a dry run; set it when calling ``up`` yourself to preview,
      and honour it in ``up`` by writing nothing.
    - ``echo``: print a line (stdout under ``cqrs migrate``).
    - ``progress_bars``: makes the bars of :meth:`progress` (default: plain lines on
      stderr, :func:`~cqrs.system.data_migrations.progress.line_progress`).
    - :meth:`progress`, :meth:`scan_data`, :meth:`estimate_rows`,
      :meth:`latest_command`, :meth:`invoke_context`: helpers for backfills.
    """

    app: Cqrs
    migration: Migration
    dry_run: bool = False
    echo: Echo = print
    progress_bars: ProgressBars = field(default_factory=line_progress)
    _bars: list[ProgressBar] = field(default_factory=list, init=False, repr=False)

    def progress(
        self, iterable: Iterable[T], total: int | None = None, label: str | None = None
    ) -> Iterator[T]:
        """Yield from ``iterable`` while showing its progress (on stderr, by default).

        ``total`` may be an estimate (:meth:`estimate_rows`); ``label`` defaults
        to the migration id. The bar is closed when the loop ends, and also when
        ``up`` raises.
        """
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        bar = self.progress_bars(total, label if label is not None else self.migration.id)
        self._bars.append(bar)
        return track(iterable, bar)

    def close_progress(self, *, stopped: bool = False) -> None:
        """Close every progress bar still open (called by the runner)."""
        for bar in self._bars:
            bar.close(stopped=stopped)
        self._bars.clear()

    def scan_data(self, entity: str, *, page_size: int = SCAN_PAGE) -> Iterator[Item]:
        """Every data row of ``entity`` across all tenants, soft-deleted ones included.

        A paginated Scan of ``<entity>-data`` yielding raw stored items
        (camelCase dicts, ``attributes`` as stored, but loaded when kept in S3: one
        ``GetObject`` each), one page in memory at a time. Raw on purpose: a typed
        model would fill in the very defaults a backfill needs to see are missing.
        Reads are eventually consistent; a row may lag its latest command (see
        :meth:`latest_command`). ``page_size`` items are read per request.
        """
        table = self.app.schema.entity_tables(entity).data
        store = self.app.clients.store
        yield from map(store.objects.resolve, store.scan(table, page_size=page_size))

    def estimate_rows(self, entity: str) -> int:
        """DynamoDB's item count of ``<entity>-data`` (refreshed about every six hours).

        Cheap (one DescribeTable); good enough as a progress total.
        """
        table = self.app.schema.entity_tables(entity).data
        described = TableAdmin(self.app.clients.dynamodb).describe(table)
        if described is None:
            raise TableNotFoundError(f"describe {table}: table not found (run `cqrs migrate`)")
        return int(described.get("ItemCount", 0))

    def latest_command(self, entity: str, pk: str, sk: str) -> Item | None:
        """The latest command of one entity as stored (a raw dict, attributes loaded), or
        ``None``.

        The command log is the truth: use this when a data row proved stale
        (a :class:`~cqrs.core.errors.VersionConflictError` on a write based on it).
        Any tenant's entity: a migration acts as :data:`~cqrs.core.context.SYSTEM`.
        """
        commands = self.app.entity(entity).commands
        version = commands.latest_version(pk, sk, context=SYSTEM)
        if not version:
            return None
        key = {"pk": pk, "sk": add_version(sk, version)}
        store = self.app.clients.store
        item = store.get(commands.tables.command, key, consistent=True)
        return store.objects.resolve(item) if item is not None else None

    def invoke_context(self, tenant_code: str) -> InvokeContext:
        """An :class:`~cqrs.core.context.InvokeContext` for commands this migration publishes.

        ``user_id`` is ``migration:<id>``, so history shows who made the change.
        """
        return InvokeContext(tenant_code=tenant_code, user_id=f"migration:{self.migration.id}")
