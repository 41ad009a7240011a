"""Poison commands: bounded sync attempts, stuck entities, redrive.

A stream retries a failed record until it succeeds, and Lambda resumes a shard
from its first failed record, so one command that always fails (a custom
:class:`~cqrs.sync.projection.DataSyncHandler` raising, a version missing from the
command table) would hold back every later record of its shard forever. Instead:

- each failed sync attempt of an entity is recorded in ``<prefix>sync-failures``,
  one row per entity: the failed version, its error, the attempt count;
- after ``max_attempts`` (``CQRS_SYNC_MAX_ATTEMPTS``, default 5) the entity is
  *stuck*: the alarm :class:`~cqrs.events.notifications.EntityStuckEvent` is raised
  once (ERROR log, event bus, SNS) and the entity's records are acknowledged,
  so the shard moves on;
- later versions of a stuck entity are still accepted into the command log and
  wait behind the failed one: each new record retries it once, and the row's
  ``waiting_through`` shows how far the log has gone;
- :meth:`SyncFailures.failing` is the query of stuck (and still retrying) entities,
  and :meth:`SyncFailures.redrive` (``cqrs redrive``) re-applies an entity from
  its data version once the cause is fixed, then clears its row.

Failures that pass (throttling, timeouts: :class:`~cqrs.core.errors.TransientError`)
are not counted: they are not the command's fault, and the stream retries them
as usual. Everything retrying cannot cure counts: a handler's exception, a
version missing from the log, an item DynamoDB refuses (too large, invalid), a
permanent or unclassified DynamoDB error.

Records that are not commands at all are *rejected* by the synchronizer and kept
in the same table (:mod:`cqrs.sync.rejected`, ``SyncFailures.rejected_records``).
Nothing here costs a request while sync succeeds; a row left by an entity that
recovered on its own is dropped by the next :meth:`SyncFailures.failing`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..core.errors import ConcurrentUpdateError, OperationalError, is_retryable
from ..core.items import CommandItem, Item, stored_int, stored_key, stored_str
from ..core.keys import VERSION_SEPARATOR, add_version, make_id, tenant_of, validate_part
from ..core.records import now_iso
from ..store import Store, begins_with, equals, item_absent
from .rejected import RejectedRecords
from .synchronizer import Verdict

if TYPE_CHECKING:
    from ..events.notifications import EntityStuckEvent, RecordRejectedEvent
    from ..schema.definitions import Schema
    from .projection import EntityKey, EntityOutcome, Projector

logger = logging.getLogger("cqrs.sync.failures")

#: The system table (``tables/templates/system/sync-failures.json``).
TABLE = "sync-failures"
DEFAULT_MAX_ATTEMPTS = 5
_WRITE_RACES = 3  # optimistic retries when two workers record the same entity at once


def counts_as_attempt(outcome: EntityOutcome) -> bool:
    """Whether a failed outcome is the command's fault (and so counts towards stuck).

    A handler's exception always counts, whatever its type; of everything else,
    only errors a retry can cure (:class:`~cqrs.core.errors.TransientError`) do not.
    """
    if outcome.error is None:
        return False
    return outcome.in_handler or not is_retryable(outcome.error)


@dataclass(frozen=True)
class SyncFailure:
    """One entity whose sync failed: where, why, how often, and what waits behind it."""

    entity: str
    pk: str
    sk: str  # the entity's sk, without ``@version``
    failed_version: int
    waiting_through: int  # the highest version known to be in the log behind the failure
    attempts: int
    error: str
    first_failed_at: str
    last_failed_at: str
    stuck: bool
    data_version: int | None = None  # the read model's version, when the row was checked
    revision: int = 0  # optimistic lock of the row

    @property
    def id(self) -> str:
        """The entity id (``pk#sk``)."""
        return make_id(self.pk, self.sk)

    @property
    def tenant_code(self) -> str:
        """The tenant the entity belongs to."""
        return tenant_of(self.pk)

    @property
    def key(self) -> EntityKey:
        """``(pk, sk)`` of the entity."""
        return (self.pk, self.sk)

    @property
    def failed_sk(self) -> str:
        """The command table sk of the failed version."""
        return add_version(self.sk, self.failed_version)

    def to_item(self) -> Item:
        """The stored row (MBC-style camelCase attributes)."""
        return {
            "pk": _partition(self.entity),
            "sk": self.id,
            "entity": self.entity,
            "entityPk": self.pk,
            "entitySk": self.sk,
            "tenantCode": self.tenant_code,
            "failedVersion": self.failed_version,
            "waitingThrough": self.waiting_through,
            "attempts": self.attempts,
            "error": self.error,
            "firstFailedAt": self.first_failed_at,
            "lastFailedAt": self.last_failed_at,
            "status": "STUCK" if self.stuck else "RETRYING",
            "revision": self.revision,
        }

    @classmethod
    def from_item(cls, item: Item) -> SyncFailure:
        """Read a stored row."""
        return cls(
            entity=stored_str(item["entity"]),
            pk=stored_str(item["entityPk"]),
            sk=stored_str(item["entitySk"]),
            failed_version=stored_int(item["failedVersion"]),
            waiting_through=stored_int(item["waitingThrough"]),
            attempts=stored_int(item["attempts"]),
            error=stored_str(item["error"]),
            first_failed_at=stored_str(item["firstFailedAt"]),
            last_failed_at=stored_str(item["lastFailedAt"]),
            stuck=item["status"] == "STUCK",
            revision=stored_int(item["revision"]),
        )


@dataclass(frozen=True)
class RedriveResult:
    """What one :meth:`SyncFailures.redrive` did for one entity."""

    failure: SyncFailure  # as it was before the redrive
    applied_through: int  # the data version afterwards
    error: BaseException | None = None  # why it failed again (its row was updated)

    @property
    def ok(self) -> bool:
        """True when the entity is no longer stuck."""
        return self.error is None


class SyncFailures:
    """Records failed sync attempts, lists stuck entities, and redrives them.

    - ``client``, ``table``: DynamoDB and the ``sync-failures`` table.
    - ``schema``: maps command tables to entities; ``projector_for(entity)``
      gives the entity's projector (the one the synchronizer uses) for redrive.
    - ``max_attempts``: failed attempts of one version before it is stuck.
    - ``alarm``: called once when an entity becomes stuck (``Notifier.entity_stuck``).
    """

    def __init__(
        self,
        store: Store,
        table: str,
        schema: Schema,
        projector_for: Callable[[str], Projector],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        alarm: Callable[[EntityStuckEvent], None] | None = None,
        rejection_alarm: Callable[[RecordRejectedEvent], None] | None = None,
        clock: Callable[[], str] = now_iso,
    ) -> None:
        if max_attempts < 1:
            from ..core.errors import ConfigurationError

            raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
        self._store = store
        self.table = table
        self._schema = schema
        self._projector_for = projector_for
        self.max_attempts = max_attempts
        self._alarm = alarm
        self._clock = clock
        #: Stream records the synchronizer rejected (:mod:`cqrs.sync.rejected`).
        self.rejected_records = RejectedRecords(store, table, alarm=rejection_alarm, clock=clock)

    # -- the synchronizer's side ------------------------------------------------

    def acknowledge(self, command_table: str, outcome: EntityOutcome, target: int) -> Verdict:
        """Record a failed outcome and say what to do with the entity's records.

        ``target`` is the highest version of the entity in the batch. The failed
        version is the data version + 1: when the projector failed before it saw the
        data version (``outcome.data_version`` is ``None``), it is read (one consistent
        ``GetItem``), so a redelivered batch never records a version already applied.
        Errors that do not count (see :func:`counts_as_attempt`), and a failure to
        record the attempt, leave the records to the stream's retry.
        """
        entity = self._schema.entity_of_command_table(command_table)
        if entity is None or not counts_as_attempt(outcome):
            return Verdict.RETRY
        assert outcome.error is not None
        try:
            data_version = outcome.data_version
            if data_version is None:
                data_version = self._data_version(entity, outcome.key)
            if data_version >= target:  # applied meanwhile (another writer): nothing failed
                return Verdict.APPLIED
            failure, newly_stuck = self.record(
                entity, outcome.key, data_version + 1, target, outcome.error
            )
        except OperationalError as exc:
            logger.error("could not record the sync failure of %s: %s", outcome.key, exc)
            return Verdict.RETRY
        if newly_stuck:
            self._raise_alarm(command_table, failure)
        return Verdict.STUCK if failure.stuck else Verdict.RETRY

    def record(
        self, entity: str, key: EntityKey, version: int, target: int, error: BaseException | str
    ) -> tuple[SyncFailure, bool]:
        """Count one failed attempt of ``key`` at ``version``; returns the row and whether
        this attempt made the entity stuck. Two requests (GetItem, conditional PutItem)."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        for _ in range(_WRITE_RACES):
            old = self._get(entity, key)
            now = self._clock()
            again = old is not None and old.failed_version == version
            attempts = old.attempts + 1 if again and old is not None else 1
            failure = SyncFailure(
                entity=entity,
                pk=key[0],
                sk=key[1],
                failed_version=version,
                waiting_through=max(version, target, old.waiting_through if old else 0),
                attempts=attempts,
                error=text,
                first_failed_at=old.first_failed_at if again and old is not None else now,
                last_failed_at=now,
                stuck=attempts >= self.max_attempts,
                revision=(old.revision + 1) if old else 1,
            )
            if self._put(failure, old):
                newly_stuck = failure.stuck and not (again and old is not None and old.stuck)
                return failure, newly_stuck
        raise ConcurrentUpdateError(f"{self.table}: {key} kept changing under concurrent writers")

    # -- operators' side ----------------------------------------------------------

    def get(self, entity: str, pk: str, sk: str) -> SyncFailure | None:
        """The recorded failure of one entity, if any (not checked against the read model)."""
        self._schema.entity_tables(entity)  # unknown entity → UnknownEntityError
        return self._get(entity, (pk, sk))

    def failing(
        self, entity: str | None = None, *, tenant_code: str | None = None
    ) -> list[SyncFailure]:
        """Entities whose sync is failing: stuck, or still being retried (``stuck=False``).

        Each row is checked against the read model (one ``BatchGetItem`` per 100
        rows): rows of entities that have since caught up are deleted, not
        returned. ``tenant_code`` narrows the list to one tenant.
        """
        entities = [entity] if entity is not None else list(self._schema.entities)
        if tenant_code is not None:
            validate_part("tenant_code", tenant_code)
        out: list[SyncFailure] = []
        for name in entities:
            rows = list(self._query(name, tenant_code))
            out.extend(self._unresolved(name, rows))
        return out

    def redrive(
        self, entity: str, *, pk: str | None = None, sk: str | None = None
    ) -> list[RedriveResult]:
        """Re-apply the failed entities of ``entity`` (or only ``pk`` / ``sk``) from their data
        version through the latest command, with the same projector as the synchronizer.

        An entity that now applies has its row deleted; one that fails again has its row
        updated (and stays stuck). Run it after fixing the cause (a handler's bug).
        """
        projector = self._projector_for(entity)
        results = []
        for failure in self.failing(entity, tenant_code=tenant_of(pk) if pk else None):
            if (pk is not None and failure.pk != pk) or (sk is not None and failure.sk != sk):
                continue
            base = failure.data_version or 0
            commands = list(self._commands_after(projector.tables.command, failure, base))
            outcome = projector.apply(commands, {failure.key: base})[failure.key]
            if outcome.ok:
                self._delete(failure)
                results.append(RedriveResult(failure, outcome.applied_through))
                continue
            assert outcome.error is not None and outcome.failed_version is not None
            target = max((c.version for c in commands), default=base)
            self.record(entity, failure.key, outcome.failed_version, target, outcome.error)
            results.append(RedriveResult(failure, outcome.applied_through, outcome.error))
        return results

    # -- storage --------------------------------------------------------------------

    def _data_version(self, entity: str, key: EntityKey) -> int:
        table = self._schema.entity_tables(entity).data
        row = self._store.get(
            table, {"pk": key[0], "sk": key[1]}, consistent=True, attributes=("version",)
        )
        return stored_int(row.get("version", 0)) if row else 0

    def _get(self, entity: str, key: EntityKey) -> SyncFailure | None:
        row_key = {"pk": _partition(entity), "sk": make_id(*key)}
        item = self._store.get(self.table, row_key, consistent=True)
        return SyncFailure.from_item(item) if item is not None else None

    def _put(self, failure: SyncFailure, old: SyncFailure | None) -> bool:
        """Write ``failure`` if the row is still ``old``; ``False`` if someone changed it."""
        condition = item_absent() if old is None else equals("revision", old.revision)
        return self._store.put(self.table, failure.to_item(), condition=condition) is None

    def _delete(self, failure: SyncFailure) -> bool:
        """Delete the row unless a newer failure was recorded meanwhile."""
        key = {"pk": _partition(failure.entity), "sk": failure.id}
        conflict = self._store.delete(
            self.table, key, condition=equals("revision", failure.revision)
        )
        return conflict is None

    def _query(self, entity: str, tenant_code: str | None) -> Iterator[SyncFailure]:
        self._schema.entity_tables(entity)  # unknown entity → UnknownEntityError
        for item in self._query_items(self.table, _partition(entity)):
            failure = SyncFailure.from_item(item)
            if tenant_code is None or failure.tenant_code == tenant_code:
                yield failure

    def _query_items(self, table: str, pk: str, sk_prefix: str | None = None) -> Iterator[Item]:
        condition = equals("pk", pk)
        if sk_prefix is not None:
            condition = condition & begins_with("sk", sk_prefix)
        return self._store.query(table, condition, consistent=True)

    def _unresolved(self, entity: str, rows: Sequence[SyncFailure]) -> list[SyncFailure]:
        if not rows:
            return []
        data_table = self._schema.entity_tables(entity).data
        keys = [{"pk": f.pk, "sk": f.sk} for f in rows]
        found = self._store.batch_get(data_table, keys, attributes=("pk", "sk", "version"))
        versions = {stored_key(i): stored_int(i.get("version", 0)) for i in found}
        out = []
        for failure in rows:
            data_version = versions.get(failure.key, 0)
            if data_version >= failure.waiting_through:  # caught up since: the row is stale
                self._delete(failure)
                continue
            # The data may have moved past the recorded failure (a later batch applied
            # some versions): what fails next is the one after the data version.
            failed = max(failure.failed_version, data_version + 1)
            out.append(replace(failure, data_version=data_version, failed_version=failed))
        return out

    def _commands_after(
        self, table: str, failure: SyncFailure, version: int
    ) -> Iterator[CommandItem]:
        """The entity's commands after ``version``, read from the command table."""
        for item in self._query_items(table, failure.pk, f"{failure.sk}{VERSION_SEPARATOR}"):
            command = CommandItem.from_item(item)
            if command.version > version and command.base_sk == failure.sk:
                yield command

    def _raise_alarm(self, command_table: str, failure: SyncFailure) -> None:
        if self._alarm is None:
            return
        from ..events.notifications import EntityStuckEvent

        self._alarm(
            EntityStuckEvent(
                pk=failure.pk,
                sk=failure.failed_sk,
                table=command_table,
                entity=failure.entity,
                failed_version=failure.failed_version,
                waiting_through=failure.waiting_through,
                attempts=failure.attempts,
                error=failure.error,
            )
        )


def _partition(entity: str) -> str:
    return f"SYNC_FAILURE#{entity}"
