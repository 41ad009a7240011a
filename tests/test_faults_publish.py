"""Faults while publishing: a failure in the middle of a publish loses nothing and can be retried.

Sequences of publishes (creates, full and partial updates based on an explicit version
or on the latest, soft deletes; ``publish_async`` and ``publish_sync``) run while the
app's DynamoDB calls (GetItem, BatchGetItem, PutItem, BatchWriteItem, UpdateItem) fail
on a schedule: *before* the call reaches the engine (nothing happened) or *after* it
took effect (the response was lost). What the framework does, pinned here:

- The caller always gets a typed error: :class:`~cqrs.core.errors.ThrottledError` for a
  throttle, :class:`~cqrs.core.errors.ServiceUnavailableError` for a server error (500), an
  :class:`~cqrs.core.errors.OperationalError` (``cause``: botocore's ``ReadTimeoutError``) for
  a timeout, all three :class:`~cqrs.core.errors.TransientError` (``retryable``). Errors no
  retry cures come as non-retryable classes, with nothing written:
  :class:`~cqrs.core.errors.RequestRejectedError` (``ValidationException``),
  :class:`~cqrs.core.errors.ItemTooLargeError`, :class:`~cqrs.core.errors.AccessDeniedError`,
  :class:`~cqrs.core.errors.UnexpectedError` (a code nobody lists). A fault in
  ``publish_sync``'s projection comes after the command landed, and says so:
  :class:`~cqrs.core.errors.CommandNotAppliedError` carries the stored command, the fault as
  ``cause`` (and the stream applies the command later). A lost ``PutItem`` response
  cannot say whether the command was stored.
- Retrying with the same input is therefore safe, and tells the caller which it was.
  Not landed: the retry stores the command, at the version the first attempt would have
  had. Landed, based on an explicit version (0 or N): the retry's conditional
  ``PutItem`` fails with ``VersionConflictError(expected=N, actual=N+1)`` and writes
  nothing (the stored ``@N+1`` carries the first attempt's ``request_id``, which tells
  the caller's own write from another writer's). Landed, based on the latest (-1): the
  retry finds its own change as the latest and returns ``None`` (not dirty), writing
  nothing.
- The command table only ever holds whole commands, one per accepted publish, at
  contiguous versions, in publish order, with the content the caller sent.
- ``publish_sync``'s projection may stop half way (e.g. history without data); the stream
  finishes it: after draining, data and history are exactly ``expected_read_model`` of
  the command log.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pytest
from botocore.exceptions import ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st

from cqrs import SYSTEM, Command, CommandInput, CommandPartialInput, Cqrs, InvokeContext
from cqrs.core.errors import (
    AccessDeniedError,
    CommandNotAppliedError,
    CqrsError,
    ItemTooLargeError,
    OperationalError,
    RequestRejectedError,
    ServiceUnavailableError,
    ThrottledError,
    TransientError,
    UnexpectedError,
    VersionConflictError,
)
from cqrs.core.keys import add_version, remove_version, version_of
from cqrs.store.codec import Item
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.sync.rebuild import expected_read_model
from cqrs.testing import migrated_app, table_items
from cqrs.testing.faults import (
    KINDS,
    PERMANENT_KINDS,
    Fault,
    FaultInjector,
    Kind,
    When,
    fault_search,
)

TABLES = Path(__file__).parent / "fixtures" / "tables"
OPERATIONS = ("GetItem", "BatchGetItem", "PutItem", "BatchWriteItem", "UpdateItem")
#: More examples locally: CQRS_FAULT_EXAMPLES=200 pytest -s tests/test_faults_publish.py
EXAMPLES = int(os.environ.get("CQRS_FAULT_EXAMPLES", "20"))
SEED = int(os.environ.get("CQRS_FAULT_SEED", "20261123"))

#: The entities a sequence publishes to: (entity type, code); two share a pk.
KEYS = (("order", "A"), ("order", "B"), ("cat", "A"))
Op = Literal["update", "update_latest", "patch", "patch_latest", "delete"]
OPS: tuple[Op, ...] = get_args(Op)
#: Every stored command carries these (a command missing one would be half-written).
REQUIRED = {"pk", "sk", "id", "code", "name", "version", "tenantCode", "type", "attributes",
            "requestId", "createdAt", "createdBy", "updatedAt", "updatedBy"}  # fmt: skip
Publish = Callable[[], Command[Any] | None]
RetryKind = Literal["none", "stored", "conflict", "noop"]
#: The framework error each kind (but a timeout: botocore's error as ``cause``) reaches
#: the caller as.
RAISED_AS: dict[str, type[CqrsError]] = {
    "throttle": ThrottledError,
    "server-error": ServiceUnavailableError,
    "validation": RequestRejectedError,
    "item-too-large": ItemTooLargeError,
    "access-denied": AccessDeniedError,
    "unknown": UnexpectedError,
}

_tenants = itertools.count(1)


@dataclass(frozen=True)
class Step:
    """One publish: ``op`` on ``KEYS[key]`` (a create while the entity doesn't exist)."""

    key: int
    op: Op = "update"
    sync: bool = False
    faults: tuple[Fault, ...] = ()
    drain: bool = False  # drain the stream (and check the read model) after this step


@dataclass
class EntityLog:
    """What the caller knows was accepted for one entity: expected content per version."""

    entity: str
    code: str
    tenant: str
    versions: list[Item] = field(default_factory=list)

    @property
    def pk(self) -> str:
        return f"{self.entity.upper()}#{self.tenant}"

    @property
    def sk(self) -> str:
        return f"{self.entity.upper()}#{self.code}"

    @property
    def latest(self) -> int:
        return len(self.versions)

    def next_content(self, op: str, n: int, request_id: str) -> Item:
        """The content the command of step ``n`` must be stored with."""
        prev = self.versions[-1] if self.versions else {}
        if op in ("create", "update", "update_latest"):
            name, attributes, deleted = f"{self.code}-{n}", {"n": n}, None
        else:
            name, deleted = prev["name"], True if op == "delete" else prev["isDeleted"]
            attributes = {**prev["attributes"], f"p{n}": n}
        return {"version": self.latest + 1, "name": name, "attributes": attributes,
                "isDeleted": deleted, "requestId": request_id}  # fmt: skip


@dataclass
class Outcome:
    """What one step did: faults fired, first error, whether it landed, what the retry did."""

    fired: list[Fault]
    error: BaseException | None
    landed: bool
    retry: RetryKind = "none"


@dataclass
class Stats:
    schedules: int = 0
    publishes: int = 0
    faults_fired: int = 0
    permanent_fired: int = 0
    retries: Counter[RetryKind] = field(default_factory=Counter)
    kinds: set[tuple[str, str, str]] = field(default_factory=set)
    raised: Counter[str] = field(default_factory=Counter)  # error class the caller saw

    def add(self, outcome: Outcome) -> None:
        self.publishes += 1
        self.faults_fired += len(outcome.fired)
        self.permanent_fired += sum(1 for f in outcome.fired if f.permanent)
        self.kinds.update((f.operation, f.when, f.kind) for f in outcome.fired)
        self.retries[outcome.retry] += 1
        error = outcome.error
        if isinstance(error, CommandNotAppliedError):
            self.raised[f"CommandNotApplied({type(error.cause).__name__})"] += 1
        elif error is not None:
            self.raised[type(error).__name__] += 1


# -- publishing --------------------------------------------------------------------------


def make_input(log: EntityLog, op: str, n: int) -> tuple[CommandInput | CommandPartialInput, int]:
    """The input of step ``n`` and the base version it names (-1: the latest)."""
    if op in ("create", "update", "update_latest"):
        base = {"create": 0, "update": log.latest, "update_latest": -1}[op]
        full = CommandInput(pk=log.pk, sk=log.sk, code=log.code, name=f"{log.code}-{n}",
                            tenant_code=log.tenant, type=log.entity.upper(), version=base,
                            attributes={"n": n})  # fmt: skip
        return full, base
    base = -1 if op == "patch_latest" else log.latest
    deleted = {"is_deleted": True} if op == "delete" else {}  # unset fields stay unchanged
    partial = CommandPartialInput(pk=log.pk, sk=log.sk, version=base, attributes={f"p{n}": n},
                                  **deleted)  # fmt: skip
    return partial, base


def publisher(
    app: Cqrs, log: EntityLog, payload: CommandInput | CommandPartialInput, sync: bool, n: int
) -> Publish:
    """The caller's publish of step ``n``, callable again to retry with the same input."""
    commands = app.entity(log.entity).commands
    ctx = InvokeContext(tenant_code=log.tenant, user_id="caller", request_id=f"req-{n}")
    if isinstance(payload, CommandInput):
        full = commands.publish_sync if sync else commands.publish_async
        return lambda: full(payload, ctx)
    partial = (
        commands.publish_partial_update_sync if sync else commands.publish_partial_update_async
    )
    return lambda: partial(payload, ctx)


def attempt(call: Publish) -> tuple[Command[Any] | None, Exception | None]:
    try:
        return call(), None
    except Exception as exc:  # checked by the caller: it must be a typed cqrs error
        return None, exc


def check_typed(error: BaseException | None, fault: Fault) -> None:
    """The caller sees the fault as the framework's error for it, botocore's as ``cause``;
    retryable exactly when a retry can cure it."""
    assert isinstance(error, CqrsError), f"{fault} reached the caller as {error!r}"
    if fault.kind == "timeout":
        assert isinstance(error, OperationalError), repr(error)
        assert isinstance(error.cause, ReadTimeoutError), repr(error.cause)
    else:
        assert isinstance(error, RAISED_AS[fault.kind]), f"{fault} reached the caller as {error!r}"
    if fault.permanent:
        assert not error.retryable, repr(error)
    else:
        assert isinstance(error, TransientError) and error.retryable, repr(error)
        assert isinstance(error, OperationalError)  # transient errors still are operational


def causing_fault(error: BaseException | None, injected: list[Fault]) -> Fault:
    """The fault ``error`` reports: the last one it is typed as. Not always the last to
    fire: a ``publish_sync`` that failed hands its command back to the stream (an
    ``UpdateItem`` that may meet a fault too) before raising the first error."""
    for fault in reversed(injected):
        try:
            check_typed(error, fault)
        except AssertionError:
            continue
        return fault
    return injected[-1]  # none matches: check_typed(error, injected[-1]) says why


def stored_request_id(app: Cqrs, log: EntityLog, version: int) -> str | None:
    resp = app.clients.dynamodb.get_item(
        TableName=app.schema.entity_tables(log.entity).command,
        Key={"pk": {"S": log.pk}, "sk": {"S": add_version(log.sk, version)}},
        ConsistentRead=True,
    )
    return deserialize(resp["Item"]).get("requestId") if "Item" in resp else None


def run_step(app: Cqrs, logs: list[EntityLog], step: Step, n: int) -> Outcome:
    """Publish under ``step.faults``; on an error retry once without faults; check the log."""
    log = logs[step.key]
    op = step.op if log.latest else "create"
    payload, base = make_input(log, op, n)
    call = publisher(app, log, payload, step.sync, n)
    want = log.next_content(op, n, f"req-{n}")
    with FaultInjector(app.clients.dynamodb, step.faults) as faults:
        first, error = attempt(call)
    landed = stored_request_id(app, log, log.latest + 1) == want["requestId"]
    outcome = Outcome(list(faults.injected), error, landed)
    if not faults.injected:
        assert error is None, f"no fault fired, yet {error!r}"
        assert first is not None and first.version == log.latest + 1
    else:
        if isinstance(error, CommandNotAppliedError):  # stored; only the projection failed
            assert landed and error.command.version == log.latest + 1, error
            error = error.cause if isinstance(error.cause, Exception) else error
            cause = causing_fault(error, faults.injected)
        else:
            cause = causing_fault(error, faults.injected)
            if cause.permanent:  # refused before the write: nothing written
                assert not landed, f"{cause} refused the publish, yet it landed"
        check_typed(error, cause)
        outcome.retry = check_retry(call, landed, base, log.latest + 1)
    log.versions.append(want)
    return outcome


def check_retry(call: Publish, landed: bool, base: int, version: int) -> RetryKind:
    """The caller retries with the same input (no faults now)."""
    again, error = attempt(call)
    if not landed:
        assert error is None, f"retry of a publish that did not land: {error!r}"
        assert again is not None and again.version == version
        return "stored"
    if base == -1:  # based on the latest: its own change is the latest now
        assert (again, error) == (None, None), (again, error)
        return "noop"
    assert isinstance(error, VersionConflictError), f"retry of a landed publish: {error!r}"
    assert (error.expected, error.actual) == (base, version)
    return "conflict"


# -- the tables ----------------------------------------------------------------------------


def check_command_log(commands: list[Item], log: EntityLog) -> None:
    """Whole commands only, one per accepted publish, contiguous, with the sent content.

    Command items are never deleted, so checking after the steps sees every write made.
    """
    items = [i for i in commands if (i["pk"], remove_version(i["sk"])) == (log.pk, log.sk)]
    items.sort(key=lambda i: int(i["version"]))
    assert [int(i["version"]) for i in items] == list(range(1, log.latest + 1)), log.sk
    for item, want in zip(items, log.versions, strict=True):
        assert item.keys() >= REQUIRED, f"half-written command: {item}"
        assert item["sk"] == add_version(log.sk, int(item["version"]))
        assert {k: item.get(k) for k in want} == want, item["sk"]


def drain_and_check(app: Cqrs, logs: list[EntityLog]) -> None:
    """Drain the stream (no faults now); check the command log; data and history must be
    exactly what the command log implies."""
    assert app.sync().failed == 0
    commands: list[Item] = []
    data: dict[tuple[str, str], Item] = {}
    history: dict[tuple[str, str], Item] = {}
    history_rows = 0
    for entity, pk in sorted({(log.entity, log.pk) for log in logs}):
        tables = app.schema.entity_tables(entity)
        commands += [c for c in table_items(app, tables.command, pk=pk) if version_of(c["sk"])]
        data.update({(i["pk"], i["sk"]): i for i in table_items(app, tables.data, pk=pk)})
        rows = table_items(app, tables.history, pk=pk)
        history_rows += len(rows)
        history.update({(i["pk"], i["sk"]): i for i in rows})
    for log in logs:
        check_command_log(commands, log)
    want_data, want_history = expected_read_model(commands)
    assert data == want_data
    assert history == want_history  # each version equals the state after it ...
    assert history_rows == len(commands)  # ... once


def run_sequence(app: Cqrs, steps: list[Step], stats: Stats | None = None) -> list[Outcome]:
    """Publish ``steps`` for a fresh tenant, drain, check; return each step's outcome."""
    tenant = f"t{next(_tenants)}"
    logs = [EntityLog(entity, code, tenant) for entity, code in KEYS]
    outcomes = []
    for n, step in enumerate(steps, 1):
        outcome = run_step(app, logs, step, n)
        outcomes.append(outcome)
        if stats is not None:
            stats.add(outcome)
        if step.drain:
            drain_and_check(app, logs)
    drain_and_check(app, logs)
    return outcomes


@pytest.fixture(scope="module")
def app() -> Iterator[Cqrs]:
    """One migrated app for the module (like ``cqrs_app``): every sequence uses a fresh tenant."""
    with migrated_app(TABLES) as migrated:
        yield migrated


# -- named cases -----------------------------------------------------------------------------


def fault(operation: str, when: When, kind: Kind = "timeout", nth: int = 1) -> tuple[Fault, ...]:
    return (Fault(operation, nth, when, kind),)


NAMED: dict[str, tuple[list[Step], bool, RetryKind]] = {
    # name: (steps, did the last (faulted) step land?, what its retry does)
    "create: PutItem throttled": (
        [Step(0, faults=fault("PutItem", "before", "throttle"))], False, "stored"),
    "create: PutItem reply lost": (
        [Step(0, faults=fault("PutItem", "after"))], True, "conflict"),
    "update at N: base read fails": (
        [Step(0), Step(0, "update", faults=fault("GetItem", "before"))], False, "stored"),
    "update at N: base read reply lost": (
        [Step(0), Step(0, "update", faults=fault("GetItem", "after", "throttle"))],
        False, "stored"),
    "update at -1: version window read fails": (
        [Step(0), Step(0, "update_latest", faults=fault("BatchGetItem", "before"))],
        False, "stored"),
    "update at -1: PutItem reply lost": (
        [Step(0), Step(0, "update_latest", faults=fault("PutItem", "after", "throttle"))],
        True, "noop"),
    "patch at N: PutItem reply lost": (
        [Step(0), Step(0, "patch", faults=fault("PutItem", "after"))], True, "conflict"),
    "patch at -1: data version read fails": (
        [Step(0), Step(0, "patch_latest", faults=fault("GetItem", "before"))], False, "stored"),
    "delete: PutItem reply lost": (
        [Step(0), Step(0, "delete", faults=fault("PutItem", "after"))], True, "conflict"),
    "sync create: history write lost": (
        [Step(0, sync=True, faults=fault("BatchWriteItem", "before"))], True, "conflict"),
    "sync update: data written, reply lost": (
        [Step(0, sync=True), Step(0, sync=True, faults=fault("UpdateItem", "after"))],
        True, "conflict"),
    "sync update at -1: history written, reply lost": (
        [Step(0), Step(0, "update_latest", sync=True, faults=fault("BatchWriteItem", "after"))],
        True, "noop"),
    "sync update behind the stream: gap read fails": (
        [Step(0), Step(0), Step(0, sync=True, faults=fault("BatchGetItem", "before"))],
        True, "conflict"),
    "sync update behind the stream: data version read fails": (
        [Step(0), Step(0, "patch", sync=True, faults=fault("GetItem", "before", nth=2))],
        True, "conflict"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(NAMED))
def test_named_publish_faults(app: Cqrs, name: str) -> None:
    steps, landed, retry = NAMED[name]
    last = run_sequence(app, steps)[-1]
    assert last.fired == list(steps[-1].faults), f"the fault did not fire: {last}"
    assert (last.landed, last.retry) == (landed, retry)
    if name.startswith("sync"):  # every named sync fault hits the projection, after the write
        assert isinstance(last.error, CommandNotAppliedError), repr(last.error)


def test_sync_publish_fault_after_commit_leaves_read_model_current(app: Cqrs) -> None:
    """A lost reply to publish_sync's data write: the read model already has the version."""
    orders = app.entity("order")
    steps = [Step(0, sync=True), Step(0, "patch", sync=True, faults=fault("UpdateItem", "after"))]
    tenant = f"t{next(_tenants)}"
    logs = [EntityLog(entity, code, tenant) for entity, code in KEYS]
    outcomes = [run_step(app, logs, step, n) for n, step in enumerate(steps, 1)]
    assert outcomes[-1].landed and outcomes[-1].retry == "conflict"
    row = orders.data.get(logs[0].pk, logs[0].sk, consistent=True, context=SYSTEM)
    assert row is not None and row.version == 2  # committed before the reply was lost
    drain_and_check(app, logs)


# -- permanent faults on every call of a publish -------------------------------------------------


def calls_of(app: Cqrs, steps: list[Step]) -> list[tuple[str, int]]:
    """The DynamoDB calls (operation, nth) the last of ``steps`` makes, for a fresh tenant."""
    tenant = f"t{next(_tenants)}"
    logs = [EntityLog(entity, code, tenant) for entity, code in KEYS]
    for n, step in enumerate(steps[:-1], 1):
        run_step(app, logs, step, n)
    last, log = steps[-1], logs[steps[-1].key]
    payload, _ = make_input(log, last.op if log.latest else "create", len(steps))
    with FaultInjector(app.clients.dynamodb) as counted:
        publisher(app, log, payload, last.sync, len(steps))()
    return [(op, nth) for op, count in sorted(counted.calls.items()) for nth in range(1, count + 1)]


#: (name, steps before, the publish faulted): explicit version, latest (-1), sync or not.
PUBLISHES: dict[str, tuple[list[Step], Step]] = {
    "async create": ([], Step(0)),
    "async patch at -1": ([Step(0)], Step(0, "patch_latest")),
    "sync update at N": ([Step(0)], Step(0, "update", sync=True)),
    "sync update at -1 behind the stream": ([Step(0), Step(0)],
                                            Step(0, "update_latest", sync=True)),
}  # fmt: skip


#: Faulted with every permanent kind: the command write, and a sync projection's data write.
EVERY_KIND = {("async create", ("PutItem", 1)), ("sync update at N", ("UpdateItem", 1))}


@pytest.fixture(scope="module")
def publish_calls(app: Cqrs) -> list[tuple[str, tuple[str, int]]]:
    """(publish name, call) for every call each of :data:`PUBLISHES` makes."""
    return [
        (name, call)
        for name, (before, publish) in PUBLISHES.items()
        for call in calls_of(app, [*before, publish])
    ]


@pytest.mark.parametrize("kind", PERMANENT_KINDS)
def test_permanent_fault_on_each_call_of_a_publish(
    app: Cqrs, publish_calls: list[tuple[str, tuple[str, int]]], kind: Kind
) -> None:
    """``kind`` before calls of publishes (each call of each publish gets one of the kinds,
    in turn; the command write and a projection's write get every kind): the caller gets
    the non-retryable class for it and nothing is written; once the command is stored (a
    sync projection's call), :class:`CommandNotAppliedError` with that cause, and the
    stream applies it. The retry (no fault) then stores it, or finds it stored."""
    faulted = publish_calls
    assert all(target in faulted for target in EVERY_KIND)
    turn = PERMANENT_KINDS.index(kind)
    seen: Counter[str] = Counter()
    for i, (name, (operation, nth)) in enumerate(faulted):
        if i % len(PERMANENT_KINDS) != turn and (name, (operation, nth)) not in EVERY_KIND:
            continue
        before, publish = PUBLISHES[name]
        step = dataclasses.replace(publish, faults=(Fault(operation, nth, "before", kind),))
        last = run_sequence(app, [*before, step])[-1]  # checks type, retry, read model
        assert last.fired == list(step.faults), f"{name}: {operation}#{nth} not called"
        assert last.error is not None and not getattr(last.error, "retryable", True)
        if isinstance(last.error, CommandNotAppliedError):
            assert publish.sync and last.landed and isinstance(last.error.cause, RAISED_AS[kind])
            seen["not applied"] += 1
        else:
            assert isinstance(last.error, RAISED_AS[kind]) and not last.landed
            seen["refused"] += 1
    assert seen["refused"] > 0 and seen["not applied"] > 0, seen


# -- generated sequences ---------------------------------------------------------------------


#: Any kind on any call; a permanent one only before the call (DynamoDB refuses it).
faults = st.one_of(
    st.builds(
        Fault,
        operation=st.sampled_from(OPERATIONS),
        nth=st.sampled_from((1, 1, 2)),
        when=st.sampled_from(("before", "after")),
        kind=st.sampled_from([k for k in KINDS if k not in PERMANENT_KINDS]),
    ),
    st.builds(
        Fault,
        operation=st.sampled_from(OPERATIONS),
        nth=st.sampled_from((1, 1, 2)),
        when=st.just("before"),
        kind=st.sampled_from(PERMANENT_KINDS),
    ),
)
schedules = st.lists(faults, min_size=1, max_size=3, unique=True).map(tuple)
steps = st.builds(
    Step,
    key=st.integers(0, len(KEYS) - 1),
    op=st.sampled_from(OPS),
    sync=st.booleans(),
    faults=st.one_of(st.just(()), schedules),  # half the steps run without faults
    drain=st.integers(0, 3).map(lambda i: i == 0),
)


def test_any_publish_fault_schedule(app: Cqrs, capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()

    @fault_search(EXAMPLES, SEED)
    @given(sequence=st.lists(steps, min_size=1, max_size=6))
    def check(sequence: list[Step]) -> None:
        run_sequence(app, sequence, stats)
        stats.schedules += 1

    check()
    with capsys.disabled():
        print(
            f"\npublish fault schedules tried: {stats.schedules}, publishes: {stats.publishes}, "
            f"faults fired: {stats.faults_fired} ({stats.permanent_fired} permanent), "
            f"distinct (operation, when, kind) fired: {len(stats.kinds)}, "
            f"retries: {dict(sorted(stats.retries.items()))}, "
            f"raised: {dict(sorted(stats.raised.items()))}"
        )
    assert stats.schedules >= min(EXAMPLES, 20)
    assert stats.faults_fired > 0 and stats.permanent_fired > 0
