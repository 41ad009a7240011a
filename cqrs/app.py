"""The facade: one object that wires tables, clients, services and the synchronizer
(``app = Cqrs.from_env()``, ``app.entity("order").commands``, ``app.sync()``: the README).

Services are wired with ``injector``: user handler classes (``DataSyncHandler``
implementations) are built by the app's injector, so their ``__init__`` can
ask for :class:`Cqrs`, :class:`~cqrs.store.clients.Clients`, :class:`Settings` or
anything bound in extra modules passed to :class:`Cqrs`.

The Lambda handler's first batch needs only settings, schema, clients, synchronizer and
projector; the rest (services, injector, events, follower ...) loads on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic

from .core.items import AttrT
from .core.settings import Settings
from .core.spec import EntitySpec, HandlerSpec
from .schema.definitions import EntityTables, Schema
from .store.clients import Clients, make_clients, with_objects
from .sync.projection import CommandStatus, Projector
from .sync.synchronizer import BatchReport, BatchResponse, Synchronizer

if TYPE_CHECKING:
    import injector as di  # ``injector`` names the app's attribute
    from pydantic import BaseModel

    from .events.bus import EventBus
    from .events.notifications import Notifier
    from .read.data import DataService
    from .read.history import HistoryService
    from .schema.provision import TableChange
    from .store import Store
    from .store.stream_records import StreamRecord
    from .sync.failures import SyncFailures
    from .sync.follower import CheckpointStore, PollReport, StreamFollower
    from .sync.rebuild import RebuildReport
    from .system.sequences import SequenceService
    from .system.tasks import TaskService
    from .write.commands import CommandService


@dataclass(frozen=True)
class EntityServices(Generic[AttrT]):
    """The services of one entity: ``commands`` (write), ``data`` and ``history`` (read).

    Each service is built on first use (the Lambda handler needs only ``projector``).
    """

    name: str
    tables: EntityTables
    spec: EntitySpec[AttrT]
    projector: Projector
    store: Store = field(repr=False)
    settings: Settings | None = field(default=None, repr=False)  # command retention

    @cached_property
    def commands(self) -> CommandService[AttrT]:
        """Publishes commands (:class:`~cqrs.write.commands.CommandService`)."""
        from .write.commands import CommandService
        from .write.retention import Retention

        retention = Retention.from_settings(self.settings)
        return CommandService(self.store, self.tables, self.spec, self.projector, retention)

    @cached_property
    def data(self) -> DataService[AttrT]:
        """Current state (:class:`~cqrs.read.data.DataService`)."""
        from .read.data import DataService

        return DataService(self.store, self.tables, self.spec)

    @cached_property
    def history(self) -> HistoryService[AttrT]:
        """Past versions (:class:`~cqrs.read.history.HistoryService`)."""
        from .read.history import HistoryService

        return HistoryService(self.store, self.tables, self.spec)


class Cqrs:
    """A CQRS application: its tables, entities and synchronizer."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clients: Clients | None = None,
        modules: Sequence[di.Module | Callable[[di.Binder], None]] = (),
    ) -> None:
        self.settings = settings or Settings()
        self.schema = Schema.load(self.settings.tables_dir, self.settings.table_prefix)
        self.clients = (
            with_objects(clients, self.settings) if clients else make_clients(self.settings)
        )
        self._specs: dict[str, EntitySpec[Any]] = {}
        self._entities: dict[str, EntityServices[Any]] = {}
        self._modules = tuple(modules)
        if self._modules:  # a module that fails to configure fails here, as it always did
            _ = self.injector
        self.synchronizer = Synchronizer(self._projector_for_table)
        if "sync-failures" in self.schema.system_tables:
            # Bounded attempts for poison commands, rejected records kept: built on first use.
            self.synchronizer.failures = lambda table, outcome, target: (
                self.sync_failures.acknowledge(table, outcome, target)
            )
            self.synchronizer.rejections = lambda record: self.sync_failures.rejected_records.add(
                record
            )
        self._checkpoints: CheckpointStore | None = None  # the follower's, built with it
        if "tasks" in self.schema.system_tables:
            # Task records must reach the task service even in a process that never touched
            # ``app.tasks``; the service (and its module) is built on the first record.
            self.add_stream_consumer(
                self.schema.system_table("tasks"), lambda records: self.tasks.consume(records)
            )

    @classmethod
    def from_env(cls, **overrides: Any) -> Cqrs:
        """Build from ``CQRS_ENDPOINT_URL``, ``AWS_REGION``, ``CQRS_TABLE_PREFIX``,
        ``CQRS_TABLES_DIR`` (keyword arguments override them)."""
        return cls(Settings(**overrides))

    @cached_property
    def injector(self) -> di.Injector:
        """Builds handler classes; created on first use (at once if given extra modules)."""
        import injector

        return injector.Injector([self._bind, *self._modules])

    def _bind(self, binder: di.Binder) -> None:
        import injector

        binder.bind(Cqrs, to=self)
        binder.bind(Settings, to=self.settings)
        binder.bind(Clients, to=self.clients)
        binder.bind(Schema, to=self.schema)
        # Handlers asking for the bus or notifier get the app's own (built on first use).
        from .events.bus import EventBus
        from .events.notifications import Notifier

        binder.bind(EventBus, to=injector.CallableProvider(lambda: self.events))
        binder.bind(Notifier, to=injector.CallableProvider(lambda: self.notifier))

    @cached_property
    def sequences(self) -> SequenceService:
        """Atomic, formatted, rotating ID counters per tenant (``<prefix>sequences``)."""
        from .system.sequences import SequenceService

        return SequenceService(
            self.clients.store,
            self.schema.system_table("sequences"),
            time_zone=self.settings.time_zone,
            fiscal_start_month=self.settings.fiscal_start_month,
        )

    # -- tables ----------------------------------------------------------------

    def migrate(
        self, *, dry_run: bool = False, echo: Callable[[str], None] | None = None
    ) -> list[TableChange]:
        """Create missing tables and fix drift (GSIs, streams, TTL). Never deletes."""
        from .schema.provision import migrate_tables
        from .store.tables import TableAdmin

        return migrate_tables(
            TableAdmin(self.clients.dynamodb), self.schema.definitions(), dry_run=dry_run, echo=echo
        )

    # -- entities --------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        attributes: type[BaseModel] | None = None,
        handlers: Iterable[HandlerSpec] = (),
    ) -> EntityServices[Any]:
        """Declare an entity's attributes model and custom projections; returns it.

        Call before the entity is first used.
        """
        self.schema.entity_tables(name)  # unknown entity → UnknownEntityError
        if name in self._entities:
            from .core.errors import ProgrammingError

            raise ProgrammingError(f"entity {name!r} was already used; register it first")
        self._specs[name] = EntitySpec(name, attributes, tuple(handlers))
        return self.entity(name)

    def entity(self, name: str) -> EntityServices[Any]:
        """The services of entity ``name`` (listed in ``tables/cqrs.json``)."""
        found = self._entities.get(name)
        if found is not None:
            return found
        tables = self.schema.entity_tables(name)
        spec = self._specs.get(name) or EntitySpec(name)
        handlers = [self.injector.get(h) if isinstance(h, type) else h for h in spec.handlers]
        store = self.clients.store
        projector = Projector(
            store, tables, handlers, spec.command_model, listener=self._command_statuses
        )
        entity = EntityServices(name, tables, spec, projector, store, self.settings)
        self._entities[name] = entity
        return entity

    def rebuild(
        self,
        entity: str,
        *,
        prune: bool = False,
        dry_run: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> RebuildReport:
        """Recompute ``entity``'s data and history from its commands (:mod:`cqrs.sync.rebuild`)."""
        from .sync.rebuild import rebuild

        return rebuild(
            self.clients.store,
            self.schema.entity_tables(entity),
            prune=prune,
            dry_run=dry_run,
            progress=progress,
        )

    @cached_property
    def tasks(self) -> TaskService:
        """The :class:`~cqrs.system.tasks.TaskService` of the ``tasks`` table.

        First use registers it as the consumer of the tasks stream, so handlers
        (``@app.tasks.handler(...)``) must be registered where the app is built.
        """
        from .system.tasks import TaskService

        table = self.schema.system_table("tasks")
        service = TaskService(self.clients.store, table, build=self.injector.get)
        self.add_stream_consumer(table, service.consume)
        return service

    @cached_property
    def sync_failures(self) -> SyncFailures:
        """Entities whose sync keeps failing: list, redrive (:mod:`cqrs.sync.failures`)."""
        from .sync.failures import TABLE, SyncFailures

        return SyncFailures(
            self.clients.store,
            self.schema.system_table(TABLE),
            self.schema,
            lambda entity: self.entity(entity).projector,
            max_attempts=self.settings.sync_max_attempts,
            alarm=self.notifier.entity_stuck,
            rejection_alarm=self.notifier.record_rejected,
        )

    def _command_statuses(self, table: str, statuses: list[CommandStatus]) -> None:
        """Publish ``command-status`` for what a projection applied or failed, if anyone listens."""
        if not statuses or not self._may_notify() or not self.notifier.enabled:
            return
        from .events.notifications import CommandStatusEvent

        self.notifier.command_statuses(
            CommandStatusEvent(
                pk=command.pk,
                sk=command.sk,
                table=table,
                status=status,
                error=f"{type(error).__name__}: {error}" if error is not None else None,
                source=command.source,
                request_id=command.request_id,  # the notification's id, as in MBC
            )
            for command, status, error in statuses
        )

    def _may_notify(self) -> bool:
        """False if the notifier cannot be enabled: no subscriber, SNS topic or AppSync."""
        if "notifier" in self.__dict__ or "events" in self.__dict__:
            return True
        return bool(
            self.settings.sns_topic_arn
            or self.settings.appsync_endpoint
            or os.environ.get("CQRS_SNS_TOPIC_ARN")  # the Notifier's fallback (TOPIC_ENV)
        )

    def _projector_for_table(self, table_name: str) -> Projector | None:
        entity = self.schema.entity_of_command_table(table_name)
        return self.entity(entity).projector if entity else None

    # -- events ----------------------------------------------------------------

    @cached_property
    def events(self) -> EventBus:
        """The app's event bus; subscribed handler classes are built by the app's injector."""
        from .events.bus import EventBus

        return EventBus(self.injector)

    @cached_property
    def notifier(self) -> Notifier:
        """Command status notifications on :attr:`events` and, if configured, SNS."""
        from .events.notifications import Notifier

        return Notifier(self.events, self.settings, topic_arn=self.settings.sns_topic_arn)

    # -- synchronization -------------------------------------------------------

    def handle_event(self, event: Mapping[str, object]) -> BatchResponse:
        """Process a Lambda DynamoDB stream event; return the partial batch response."""
        return self.synchronizer.handle_event(event).response()

    def process_event(self, event: Mapping[str, object]) -> BatchReport:
        """Like :meth:`handle_event` but returns the full :class:`BatchReport`."""
        return self.synchronizer.handle_event(event)

    def add_stream_consumer(
        self, table_name: str, consumer: Callable[[Sequence[StreamRecord]], Sequence[str]]
    ) -> None:
        """Route another table's stream records (e.g. ``tasks``) through the same handler."""
        self.synchronizer.add_consumer(table_name, consumer)

    def streamed_tables(self) -> list[str]:
        """Physical names of every table whose stream the synchronizer consumes."""
        tables = [self.schema.entity_tables(e).command for e in self.schema.entities]
        tables += [
            d.name for d in self.schema.definitions() if d.entity is None and d.stream_view_type
        ]
        return tables

    def follower(
        self, *, checkpoints: CheckpointStore | None = None, batch_size: int = 100
    ) -> StreamFollower:
        """A :class:`StreamFollower` over every streamed table, feeding :meth:`handle_event`."""
        from .store.streams import StreamsGateway
        from .sync.follower import MemoryCheckpoints, StreamFollower

        if self._checkpoints is None:
            self._checkpoints = MemoryCheckpoints()
        return StreamFollower(
            StreamsGateway(self.clients.dynamodb, self.clients.streams),
            self.streamed_tables(),
            self.handle_event,
            checkpoints=checkpoints or self._checkpoints,
            batch_size=batch_size,
            region=self.settings.region,
        )

    def sync(self) -> PollReport:
        """Drain every command-table stream through the synchronizer once."""
        return self.follower().drain()


def load_app(spec: str, *, source: str = "CQRS_APP") -> Cqrs:
    """Import ``module:attribute`` (a :class:`Cqrs` or a zero-argument factory returning one).

    A bad spec, a module that cannot be imported or an attribute that is missing is a
    one-line :class:`~cqrs.core.errors.ConfigurationError` naming ``source`` (where the spec
    came from: ``CQRS_APP``, ``--app``). The module must be importable as is: this
    function leaves ``sys.path`` alone.
    """
    import importlib

    from .core.errors import ConfigurationError

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"{source} must look like module:attribute (e.g. shop.app:cqrs), got {spec!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            raise ConfigurationError(
                f"{source} {spec}: no module named {missing!r}; run from your project "
                "folder or add it to PYTHONPATH",
                cause=exc,
            ) from exc
        raise ConfigurationError(
            f"{source} {spec}: importing {module_name} failed: {type(exc).__name__}: {exc}",
            cause=exc,
        ) from exc
    if not hasattr(module, attribute):
        raise ConfigurationError(
            f"{source} {spec}: module {module_name!r} has no attribute {attribute!r}; "
            "name the variable (or factory) holding your Cqrs app"
        )
    target = getattr(module, attribute)
    app = target() if callable(target) and not isinstance(target, Cqrs) else target
    if not isinstance(app, Cqrs):
        raise ConfigurationError(f"{source} {spec} is not a Cqrs app (got {type(app).__name__})")
    return app
