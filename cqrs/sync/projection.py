"""Projection: apply command versions to the data and history tables.

This is the one code path that turns commands into read-model state. The stream
synchronizer and ``publish_sync`` both call :meth:`Projector.apply`.

Invariants, for each entity (pk + base sk):

- versions are applied strictly in order; a gap (version N arrives while data is
  at N-k) is filled from the command table;
- history is written before data, and the data write is conditional on the
  version it replaces, so data never goes backwards and a crash between the two
  loses nothing: the retry rewrites the (identical) history item and commits;
- a version already applied is skipped.

Request budget: with no custom handlers the data version is not read: the write
is tried optimistically against ``first version - 1`` and, on a condition
failure, DynamoDB returns the current row. So a version in order costs one
history write (batched, 25 per request) and one conditional ``UpdateItem`` per
entity per batch. With handlers the data versions are read first (one
``BatchGetItem`` per batch) so handlers see each version once, in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.errors import ConcurrentUpdateError, CqrsError, MissingCommandError, TransientError
from ..core.items import (
    CREATION_FIELDS,
    PROJECTED_FIELDS,
    CommandItem,
    Item,
    stored_int,
    stored_key,
)
from ..core.keys import add_version
from ..core.spec import DataSyncHandler as DataSyncHandler
from ..store import BATCH_GET_LIMIT, Conflict, Store, Update, absent, equals
from ..store.codec import WireItem
from .creation import Created, agrees, assume, created_of, data_row, history_items, repair

if TYPE_CHECKING:
    from ..core.records import Command
    from ..schema.definitions import EntityTables

EntityKey = tuple[str, str]  # (pk, base sk)

_MAX_ROUNDS = 5
_T = TypeVar("_T")


@dataclass
class EntityOutcome:
    """What happened to one entity in one :meth:`Projector.apply` call."""

    key: EntityKey
    applied_through: int = 0  # the data version after the call (0: unknown/none)
    failed_version: int | None = None
    error: BaseException | None = None
    in_handler: bool = False  # the error came from a custom DataSyncHandler
    #: The data version this call saw for sure when it failed; ``None`` when it failed
    #: before learning it (the optimistic base was only a guess), so ``failed_version``
    #: may name a version that is already applied: ask the data table.
    data_version: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed for this entity."""
        return self.error is None


@dataclass
class _Work:
    key: EntityKey
    commands: dict[int, CommandItem]  # version -> command (from records or gap fill)
    target: int
    base: int | None  # data version believed current; None = unknown
    guessed: bool = False  # base is the optimistic guess, not a version seen in the table
    handled_through: int = 0  # handlers have seen versions up to here in this call
    committed: list[int] = field(default_factory=list)  # versions this call committed
    created: Created | None = None  # the data row's creation fields, once seen (.creation)
    outcome: EntityOutcome = field(init=False)

    def __post_init__(self) -> None:
        self.outcome = EntityOutcome(self.key)


#: The typed command handlers see: its attributes are the entity's model (a pydantic
#: generic parameter only the entity's spec knows).
CommandFactory = Callable[[Item], "Command[Any]"]

#: One status per command version: the command, "applied" or "failed", the error.
CommandStatus = tuple[CommandItem, str, BaseException | None]
#: Told, once per :meth:`Projector.apply`, what this call committed or failed (table, statuses).
StatusListener = Callable[[str, list[CommandStatus]], None]


class Projector:
    """Projects the commands of one entity type into its data and history tables."""

    def __init__(
        self,
        store: Store,
        tables: EntityTables,
        handlers: Sequence[DataSyncHandler] = (),
        to_command: CommandFactory | None = None,
        listener: StatusListener | None = None,
    ) -> None:
        self._store = store
        self.tables = tables
        self.handlers = tuple(handlers)
        self._to_command = to_command
        self._listener = listener

    # -- public ---------------------------------------------------------------

    def apply(
        self,
        commands: Iterable[CommandItem],
        known_versions: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, EntityOutcome]:
        """Apply commands (any order, duplicates allowed) to data and history.

        ``known_versions`` may give the current data version of some entities
        (from a consistent read the caller already made). Returns one outcome per
        entity; failures are reported there, not raised, so one poison entity
        does not stop the others.
        """
        work = self._group(commands, known_versions or {})
        if self.handlers:
            self._read_data_versions([w for w in work.values() if w.base is None])
        for w in work.values():
            if w.base is None:  # optimistic: assume the first version continues the data row
                w.base, w.guessed = min(w.commands) - 1, True
        pending = list(work.values())
        for _ in range(_MAX_ROUNDS):
            pending = self._round(pending)
            if not pending:
                break
        for w in pending:
            w.outcome.error = ConcurrentUpdateError(
                f"{self.tables.data}: {w.key} kept changing under concurrent writers"
            )
            w.outcome.failed_version = (w.base or 0) + 1
            w.outcome.data_version = None if w.guessed else w.base
        if self._listener is not None:
            self._listener(self.tables.command, _statuses(work.values()))
        return {k: w.outcome for k, w in work.items()}

    # -- steps ------------------------------------------------------------------

    def _group(
        self, commands: Iterable[CommandItem], known: Mapping[EntityKey, int]
    ) -> dict[EntityKey, _Work]:
        work: dict[EntityKey, _Work] = {}
        for cmd in commands:
            key, version = cmd.key, cmd.version
            w = work.get(key)
            if w is None:
                w = work[key] = _Work(key, {}, version, known.get(key))
            w.commands.setdefault(version, cmd)
            w.target = max(w.target, version)
        return work

    def _round(self, work: list[_Work]) -> list[_Work]:
        """One pass: fill gaps, run handlers, write history, commit data. Returns retries."""
        live = [w for w in work if w.outcome.ok]
        for w in live:
            if w.base is not None and w.base >= w.target:
                w.outcome.applied_through = w.base
        live = [w for w in live if w.base is not None and w.base < w.target]
        self._fill_gaps(live)
        live = [w for w in live if w.outcome.ok]
        commit_through = {id(w): self._run_handlers(w) for w in live}
        live = self._write_history(live, commit_through)
        retry = []
        for w in live:
            through = commit_through[id(w)]
            if through <= _base(w):
                continue
            base, assumed = _base(w), assume(w.created, w.commands, _base(w))
            current = self._commit(w, through)
            span = (base, min(current or 0, through))  # versions another writer committed
            if err := repair(
                self._store, self.tables.history, w.commands, span, assumed, w.created
            ):
                self._fail(w, base + 1, err)
            if current is None:  # committed
                w.committed.extend(range(_base(w) + 1, through + 1))
                w.base = w.outcome.applied_through = through
                w.guessed = False
            elif current >= w.target:
                w.base = w.outcome.applied_through = current
                w.guessed = False
            elif current >= 0:
                w.base, w.guessed = current, False  # someone else moved it; go again from there
                retry.append(w)
        return [w for w in retry if w.outcome.ok]

    def _read_data_versions(self, work: list[_Work]) -> None:
        by_key = {w.key: w for w in work}
        keys = list(by_key)
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            chunk = keys[start : start + BATCH_GET_LIMIT]
            try:
                attributes = ("pk", "sk", "version", *CREATION_FIELDS)
                items = self._batch_get(self.tables.data, chunk, attributes)
            except CqrsError as exc:
                for key in chunk:
                    self._fail(by_key[key], min(by_key[key].commands), exc)
                continue
            found = {stored_key(i): i for i in items}
            for key in chunk:
                row, w = found.get(key), by_key[key]
                w.base, w.created = stored_int(row.get("version", 0)) if row else 0, created_of(row)

    def _fill_gaps(self, work: list[_Work]) -> None:
        missing: list[tuple[_Work, int]] = [
            (w, v) for w in work for v in range(_base(w) + 1, w.target) if v not in w.commands
        ]
        if not missing:
            return
        keys = [(w.key[0], add_version(w.key[1], v)) for w, v in missing]
        try:
            found = {
                (c.pk, c.sk): c
                for c in map(CommandItem.from_item, self._batch_get(self.tables.command, keys))
            }
        except CqrsError as exc:
            for w, v in missing:
                self._fail(w, v, exc)
            return
        for (w, v), key in zip(missing, keys, strict=True):
            if key in found:
                w.commands[v] = found[key]
            elif w.outcome.ok:
                self._fail(
                    w,
                    v,
                    MissingCommandError(f"{self.tables.command}: command {key} not found"),
                )

    def _run_handlers(self, w: _Work) -> int:
        """Call handlers for each unseen version in order; return the last committable one."""
        through = _base(w)
        for version in range(_base(w) + 1, w.target + 1):
            if version > w.handled_through and self.handlers:
                done: list[DataSyncHandler] = []
                try:
                    command = self._command_model(w.commands[version])
                    for handler in self.handlers:
                        handler.up(command)
                        done.append(handler)
                except Exception as exc:
                    for handler in reversed(done):
                        _best_effort(handler.down, command)
                    self._fail(w, version, exc)
                    w.outcome.in_handler = w.outcome.error is exc
                    return through
                w.handled_through = version
            through = version
        return through

    def _commit(self, w: _Work, through: int) -> int | None:
        """Conditionally move the data row from ``w.base`` to ``through``.

        Returns ``None`` on success, else the current data version (or -1 after
        a recorded failure).
        """
        item = data_row(w.commands, _base(w), through)
        expected = _base(w)
        update = Update()
        for name in (*PROJECTED_FIELDS, "cpk", "csk"):
            if name in CREATION_FIELDS:  # the first writer's audit fields win
                if name in item:
                    update.set_if_absent({name: item[name]})
            elif name in item:
                update.set({name: item[name]})
            else:  # absent in this version: drop what an earlier version set
                update.remove(name)
        condition = absent("pk") if expected == 0 else equals("version", expected)
        if expected and w.created is None:  # what the history items assumed (.creation)
            condition = condition & agrees(assume(None, w.commands, expected))
        key = {"pk": item["pk"], "sk": item["sk"]}
        try:
            result = self._store.update(self.tables.data, key, update, condition=condition)
        except CqrsError as exc:
            self._fail(w, expected + 1, exc)
            return -1
        if not isinstance(result, Conflict):
            return None
        if result.current is not None:
            w.created = created_of(result.current)
            return stored_int(result.current.get("version", 0))
        return self._current_version(w, expected)

    def _current_version(self, w: _Work, expected: int) -> int:
        """The data version after a failed condition that returned no item (absent, or an
        engine that does not return it: DynamoDB Local)."""
        try:
            row = self._store.get(
                self.tables.data,
                {"pk": w.key[0], "sk": w.key[1]},
                consistent=True,
                attributes=("version", *CREATION_FIELDS),
            )
        except CqrsError as exc:
            self._fail(w, expected + 1, exc)
            return -1
        w.created = created_of(row)
        return stored_int(row.get("version", 0)) if row else 0

    # -- DynamoDB helpers --------------------------------------------------------

    def _batch_get(
        self, table: str, keys: Sequence[EntityKey], attributes: Sequence[str] | None = None
    ) -> list[Item]:
        rows = [{"pk": pk, "sk": sk} for pk, sk in keys]
        return self._store.batch_get(table, rows, attributes=attributes)

    def _write_history(self, live: list[_Work], through: Mapping[int, int]) -> list[_Work]:
        """Write the history items of every entity (batched); return the entities whose
        history is written. One entity's refused item fails only that entity: a transient
        failure fails them all (the retry is safe), a permanent one is isolated by writing
        each entity's items on their own."""
        items: dict[int, list[WireItem]] = {}
        for w in live:  # a refused item fails its entity only, before any request
            try:
                items[id(w)] = self._history_items(w, through[id(w)])
            except CqrsError as exc:
                self._fail(w, _base(w) + 1, exc)
        live = [w for w in live if id(w) in items]  # none left: no request is made
        try:
            self._store.batch_write(
                self.tables.history, wire_puts=[i for w in live for i in items[id(w)]]
            )
            return live
        except TransientError as exc:
            for w in live:
                self._fail(w, _base(w) + 1, exc)
            return []
        except CqrsError as exc:
            if len(live) == 1:
                self._fail(live[0], _base(live[0]) + 1, exc)
                return []
        written = []
        for w in live:
            try:
                self._store.batch_write(self.tables.history, wire_puts=items[id(w)])
                written.append(w)
            except CqrsError as exc:
                self._fail(w, _base(w) + 1, exc)
        return written

    def _history_items(self, w: _Work, through: int) -> list[WireItem]:
        created = assume(w.created, w.commands, _base(w))  # each item: the data row at v
        return history_items(
            self._store, self.tables.history, w.commands, _base(w), through, created
        )

    def _command_model(self, command: CommandItem) -> Command[Any]:
        command = self._store.objects.resolved(command)  # handlers see attributes in S3 too
        if self._to_command is not None:
            return self._to_command(command.to_item())
        from ..core.records import Command

        return Command[dict[str, object]].model_validate(command.to_item())

    @staticmethod
    def _fail(w: _Work, version: int, exc: BaseException) -> None:
        if w.outcome.error is None:
            w.outcome.error = exc
            w.outcome.failed_version = version
            w.outcome.data_version = None if w.guessed or w.base is None else w.base
        if w.base is not None and w.base > 0 and not w.guessed:
            w.outcome.applied_through = max(w.outcome.applied_through, w.base)


def _statuses(work: Iterable[_Work]) -> list[CommandStatus]:
    """Versions this call committed ("applied") and the version each entity failed at."""
    out: list[CommandStatus] = []
    for w in work:
        out.extend((w.commands[v], "applied", None) for v in w.committed)
        failed = w.outcome.failed_version
        if failed is not None and failed in w.commands:
            out.append((w.commands[failed], "failed", w.outcome.error))
    return out


def _base(w: _Work) -> int:
    assert w.base is not None
    return w.base


def _best_effort(fn: Callable[[_T], None], arg: _T) -> None:
    with contextlib.suppress(Exception):  # compensation must not mask the original failure
        fn(arg)
