"""Exactly-once in effect under faults.

A fixed command log (creates, full and partial updates, a delete; two tenants, two
entity types) is published once with ``publish_async``; its real stream records
are then delivered, Lambda-style (batches, redelivery, duplicates, records of
different items reordered, retry from the first failed record), while the
synchronizer's DynamoDB calls fail on a generated schedule, before or after they
took effect. After recovery the read model must be what the command log implies,
history must hold each version once, and a custom projection must have seen every
version in order (re-seeing a version only with identical content).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqrs import Command, CommandInput, CommandPartialInput, Cqrs, InvokeContext
from cqrs.core.keys import remove_version, version_of
from cqrs.store.clients import make_clients
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize
from cqrs.sync.rebuild import expected_read_model
from cqrs.testing import clear_table, stream_records, table_items
from cqrs.testing.delivery import DeliveryPlan, deliver
from cqrs.testing.faults import Fault, FaultInjector, fault_search, make_error

OPERATIONS = ("UpdateItem", "BatchWriteItem", "BatchGetItem", "GetItem")
ENTITIES = ("order", "cat")
#: More examples locally: CQRS_FAULT_EXAMPLES=500 pytest tests/test_faults.py
EXAMPLES = int(os.environ.get("CQRS_FAULT_EXAMPLES", "20"))
#: A fixed seed keeps CI stable; CQRS_FAULT_SEED=n explores other schedules.
SEED = int(os.environ.get("CQRS_FAULT_SEED", "20261123"))

# -- the command log ------------------------------------------------------------------


def _ctx(tenant: str, user: str) -> InvokeContext:
    return InvokeContext(tenant_code=tenant, user_id=user)


def _full(entity: str, tenant: str, code: str, version: int, **kw: Any) -> CommandInput:
    kind = entity.upper()
    return CommandInput(
        pk=f"{kind}#{tenant}", sk=f"{kind}#{code}", code=code, name=kw.pop("name", code),
        tenant_code=tenant, type=kind, version=version, **kw,
    )  # fmt: skip


def publish_log(app: Cqrs) -> list[dict[str, Any]]:
    """Publish the fixed command log (interleaved across entities); return its records."""
    order, cat = app.entity("order").commands, app.entity("cat").commands
    steps = [
        lambda: order.publish_async(_full("order", "acme", "1", 0, attributes={"n": 1}),
                                    _ctx("acme", "u1")),
        lambda: cat.publish_async(_full("cat", "acme", "1", 0, attributes={"c": 1}),
                                  _ctx("acme", "u1")),
        lambda: order.publish_async(_full("order", "beta", "1", 0, attributes={"n": 1}),
                                    _ctx("beta", "u2")),
        lambda: order.publish_async(_full("order", "acme", "1", 1, attributes={"n": 2}),
                                    _ctx("acme", "u2")),
        lambda: order.publish_partial_update_async(
            CommandPartialInput(pk="ORDER#acme", sk="ORDER#1", version=2,
                                attributes={"extra": "p"}),
            _ctx("acme", "u3")),
        lambda: cat.publish_async(_full("cat", "beta", "2", 0, attributes={"c": 9}),
                                  _ctx("beta", "u4")),
        lambda: order.publish_partial_update_async(
            CommandPartialInput(pk="ORDER#beta", sk="ORDER#1", version=1, name="renamed"),
            _ctx("beta", "u5")),
        lambda: cat.publish_async(_full("cat", "acme", "1", 1, attributes={"c": 2}),
                                  _ctx("acme", "u5")),
        lambda: order.publish_async(
            _full("order", "acme", "1", 3, is_deleted=True, attributes={"n": 2}),
            _ctx("acme", "u6")),
        lambda: cat.publish_partial_update_async(
            CommandPartialInput(pk="CAT#acme", sk="CAT#1", version=-1, attributes={"d": 3}),
            _ctx("acme", "u7")),
    ]  # fmt: skip
    for step in steps:
        assert step() is not None, "every command in the log is accepted (dirty)"
    records = stream_records(app)
    assert len(records) == len(steps)
    return records


# -- observations -----------------------------------------------------------------------


class Recorder:
    """A custom projection that records every (version, content) it is shown, per entity."""

    def __init__(self, app: Cqrs) -> None:
        self.seen: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        self.already_committed: list[tuple[str, str, int, int]] = []
        self.undone: list[tuple[str, str, int]] = []
        self._app = app
        self._client = make_clients(app.settings).dynamodb  # not counted by the injector

    def up(self, command: Command[Any]) -> None:
        key = (command.pk, remove_version(command.sk))
        content = command.model_dump_json(exclude={"status"})
        self.seen[key].append((command.version, content))
        entity = "order" if command.pk.startswith("ORDER#") else "cat"
        row = self._client.get_item(
            TableName=self._app.schema.entity_tables(entity).data,
            Key=serialize({"pk": key[0], "sk": key[1]}),
            ConsistentRead=True,
        ).get("Item")
        current = int(deserialize(row)["version"]) if row else 0
        if current >= command.version:  # up() must run before its version is committed
            self.already_committed.append((*key, command.version, current))

    def down(self, command: Command[Any]) -> None:  # a later handler failed: up() again later
        self.undone.append((command.pk, remove_version(command.sk), command.version))


class Flaky:
    """A custom projection (after the recorder) that fails scheduled sightings of a version.

    ``fail`` holds ``(pk, sk, version, nth)``: the ``nth`` time it is shown that
    version, it raises. ``poison`` versions fail every time until ``healed``.
    """

    def __init__(self) -> None:
        self.fail: set[tuple[str, str, int, int]] = set()
        self.poison: set[tuple[str, str, int]] = set()
        self.healed = False
        self.shown: Counter[tuple[str, str, int]] = Counter()
        self.raised = 0

    def up(self, command: Command[Any]) -> None:
        key = (command.pk, remove_version(command.sk), command.version)
        self.shown[key] += 1
        if (*key, self.shown[key]) in self.fail or (key in self.poison and not self.healed):
            self.raised += 1
            raise RuntimeError(f"handler fault on {key}, sighting {self.shown[key]}")

    def down(self, command: Command[Any]) -> None:
        raise AssertionError("down() is only called on handlers whose up() succeeded")

    def reset(self) -> None:
        self.fail.clear()
        self.poison.clear()
        self.healed = False
        self.shown.clear()


@dataclass
class World:
    plain: Cqrs
    handled: Cqrs
    recorder: Recorder
    flaky: Flaky
    records: list[dict[str, Any]]
    commands: list[dict[str, Any]]  # every versioned command item, all entity types
    schedules: int = 0
    faults_fired: int = 0
    handler_faults: int = 0
    partial_failures: int = 0
    raised: int = 0
    kinds: set[tuple[str, str, str]] = field(default_factory=set)

    def reset(self) -> None:
        for entity in ENTITIES:
            tables = self.plain.schema.entity_tables(entity)
            clear_table(self.plain, tables.data)
            clear_table(self.plain, tables.history)
        clear_table(self.plain, self.plain.sync_failures.table)
        self.recorder.seen.clear()
        self.recorder.already_committed.clear()
        self.recorder.undone.clear()
        self.flaky.reset()


def make_world(app: Cqrs) -> World:
    recorder, flaky = Recorder(app), Flaky()
    handled = Cqrs(app.settings, clients=app.clients)
    for entity in ENTITIES:
        handled.register(entity, handlers=[recorder, flaky])
    records = publish_log(app)
    commands = [
        c
        for entity in ENTITIES
        for c in table_items(app, app.schema.entity_tables(entity).command)
        if version_of(str(c.get("sk", ""))) is not None
    ]
    return World(app, handled, recorder, flaky, records, commands)


def check_recovered(
    w: World, *, with_handler: bool, commands: list[dict[str, Any]] | None = None
) -> None:
    """The read model is exactly what ``commands`` (default: the fixed log) imply."""
    commands = w.commands if commands is None else commands
    want_data, want_history = expected_read_model(commands)
    data: dict[tuple[str, str], Any] = {}
    history: dict[tuple[str, str], Any] = {}
    history_count = 0
    for entity in ENTITIES:
        tables = w.plain.schema.entity_tables(entity)
        data.update({(i["pk"], i["sk"]): i for i in table_items(w.plain, tables.data)})
        rows = table_items(w.plain, tables.history)
        history_count += len(rows)
        history.update({(i["pk"], i["sk"]): i for i in rows})
    assert data == want_data
    assert history == want_history  # each version equals the state after that version
    assert history_count == len(commands)  # ... and is there exactly once
    assert w.plain.sync_failures.failing() == []  # nothing stuck; rows of recovered ones pruned
    if not with_handler:
        return
    by_entity: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for c in commands:
        by_entity[c["pk"], remove_version(c["sk"])][int(c["version"])] = c["sk"]
    assert set(w.recorder.seen) == set(by_entity)
    assert w.recorder.already_committed == []  # (pk, sk, version shown, data version)
    for key, seen in w.recorder.seen.items():
        versions = [v for v, _ in seen]
        assert sorted(set(versions)) == sorted(by_entity[key]), (key, versions)
        assert versions[0] == 1, (key, versions)
        for a, b in pairwise(versions):
            # in order; after a failure the projection may restart at an earlier version
            assert b == a + 1 or b <= a, (key, versions)
        content: dict[int, str] = {}
        for v, c in seen:  # a version seen twice is the same version, same content
            assert content.setdefault(v, c) == c, (key, v)


# -- strategies -----------------------------------------------------------------------------

faults = st.builds(
    Fault,
    operation=st.sampled_from(OPERATIONS),
    nth=st.integers(1, 5),
    when=st.sampled_from(("before", "after")),
    kind=st.sampled_from(("throttle", "timeout")),
)


def handler_faults(commands: list[dict[str, Any]]) -> st.SearchStrategy[tuple[str, str, int, int]]:
    """``(pk, sk, version, nth)``: the handler fails the nth sighting of a logged version.

    At most twice per version, below the attempts that make an entity stuck."""
    versions = sorted((c["pk"], remove_version(c["sk"]), int(c["version"])) for c in commands)
    return st.builds(
        lambda version, nth: (*version, nth), st.sampled_from(versions), st.sampled_from((1, 1, 2))
    )


@st.composite
def plans(draw: st.DrawFn, records: list[dict[str, Any]]) -> DeliveryPlan:
    """Batches of k, duplicates, whole-batch redelivery, items interleaved differently.

    Records of one item keep their stream order (one shard); different items are
    reordered freely (different shards / partitions).
    """
    n = len(records)
    items = [r["dynamodb"]["Keys"]["pk"]["S"] + remove_version(r["dynamodb"]["Keys"]["sk"]["S"])
             for r in records]  # fmt: skip
    shuffled = draw(st.permutations(range(n)))
    queues: dict[str, list[int]] = defaultdict(list)
    for i in range(n):
        queues[items[i]].append(i)
    order = [queues[items[i]].pop(0) for i in shuffled]  # same slots per item, in order
    return DeliveryPlan(
        batch_size=draw(st.integers(1, n)),
        order=order,
        duplicates=draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, n - 1)),
                                 max_size=3)),
        redeliver=draw(st.lists(st.integers(0, n - 1), max_size=2)),
    )  # fmt: skip


# -- tests ------------------------------------------------------------------------------------


def test_fault_injector_before_and_after(cqrs_app: Cqrs) -> None:
    """``before`` faults stop the call; ``after`` faults hide a call that happened."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    client = cqrs_app.clients.dynamodb
    table = cqrs_app.schema.entity_tables("order").data
    put = {"TableName": table, "Item": serialize({"pk": "p", "sk": "s"})}
    key = {"TableName": table, "Key": serialize({"pk": "p", "sk": "s"})}
    schedule = [Fault("PutItem", 1, "before", "throttle"), Fault("PutItem", 2, "after", "timeout")]
    with FaultInjector(client, schedule) as inj:
        with pytest.raises(ClientError) as throttled:
            client.put_item(**put)
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        assert "Item" not in client.get_item(**key)
        with pytest.raises(ReadTimeoutError):
            client.put_item(**put)
        assert "Item" in client.get_item(**key)  # it happened
        client.put_item(**put)  # third call: no fault
    assert inj.injected == schedule and not inj.pending
    assert inj.calls["PutItem"] == 3
    client.put_item(**put)  # uninstalled
    assert isinstance(make_error(Fault("X", 1, kind="timeout")), ReadTimeoutError)


@pytest.mark.parametrize("with_handler", [False, True], ids=["optimistic", "with handler"])
def test_named_fault_schedules_recover(cqrs_app: Cqrs, with_handler: bool) -> None:
    w = make_world(cqrs_app)
    app = w.handled if with_handler else w.plain
    named = {
        "data write lost before": [Fault("UpdateItem", 1, "before", "throttle")],
        "data write done, reply lost": [Fault("UpdateItem", 1, "after", "timeout")],
        "history write lost before": [Fault("BatchWriteItem", 1, "before", "timeout")],
        "history written, reply lost": [Fault("BatchWriteItem", 1, "after", "throttle")],
        "version read fails": [Fault("BatchGetItem", 1, "before", "throttle")],
        "every first call fails": [Fault(op, 1, "after", "timeout") for op in OPERATIONS],
    }
    for name, schedule in named.items():
        w.reset()
        with FaultInjector(app.clients.dynamodb, schedule):
            deliver(app, w.records, DeliveryPlan(batch_size=4))
        try:
            check_recovered(w, with_handler=with_handler)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def test_any_fault_schedule_recovers(cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str]) -> None:
    w = make_world(cqrs_app)

    @fault_search(EXAMPLES, SEED)
    @given(
        schedule=st.lists(faults, min_size=1, max_size=4, unique=True),
        plan=plans(w.records),
        with_handler=st.booleans(),
        handler_faults=st.lists(handler_faults(w.commands), min_size=1, max_size=3, unique=True),
    )
    def check(
        schedule: list[Fault],
        plan: DeliveryPlan,
        with_handler: bool,
        handler_faults: list[tuple[str, str, int, int]],
    ) -> None:
        w.reset()
        run_schedule(w, w.records, plan, schedule, with_handler, handler_faults)
        check_recovered(w, with_handler=with_handler)

    check()
    report(w, capsys, "fault schedules tried")


def run_schedule(
    w: World,
    records: list[dict[str, Any]],
    plan: DeliveryPlan,
    schedule: list[Fault],
    with_handler: bool,
    handler_faults: list[tuple[str, str, int, int]],
) -> None:
    """Deliver ``records`` per ``plan`` while ``schedule`` (and the handler) fail; count it."""
    app = w.handled if with_handler else w.plain
    if with_handler:
        w.flaky.fail.update(handler_faults)
    with FaultInjector(app.clients.dynamodb, schedule) as inj:
        log = deliver(app, records, plan)
    w.schedules += 1
    w.handler_faults += w.flaky.raised
    w.flaky.raised = 0
    w.partial_failures += log.partial_failures
    w.raised += log.raised
    w.faults_fired += len(inj.injected)
    w.kinds.update((f.operation, f.when, f.kind) for f in inj.injected)


def report(w: World, capsys: pytest.CaptureFixture[str], what: str) -> None:
    with capsys.disabled():
        print(
            f"\n{what}: {w.schedules}, faults fired: {w.faults_fired}, "
            f"distinct (operation, when, kind) fired: {len(w.kinds)}, "
            f"partial batch failures: {w.partial_failures}, handler raised: {w.raised}, "
            f"handler faults: {w.handler_faults}"
        )
    assert w.schedules >= min(EXAMPLES, 20)
    assert w.faults_fired > 0


# -- generated command histories ----------------------------------------------------------

#: One step of a generated history: (entity, tenant, code, operation). The first step on a
#: key creates it; later ones update it (full), patch it (partial) or soft-delete it.
history_steps = st.tuples(
    st.sampled_from(ENTITIES),
    st.sampled_from(("a", "b")),
    st.sampled_from(("1", "2")),
    st.sampled_from(("update", "patch", "delete")),
)


def publish_history(
    app: Cqrs, steps: list[tuple[str, str, str, str]], run: int
) -> list[dict[str, Any]]:
    """Publish a generated history under tenants fresh to this run; return its commands."""
    created: set[tuple[str, str, str]] = set()
    pks: set[tuple[str, str]] = set()
    for i, (entity, tenant_name, code, op) in enumerate(steps):
        tenant = f"g{run}{tenant_name}"
        commands, ctx = app.entity(entity).commands, _ctx(tenant, f"u{i}")
        kind = entity.upper()
        pks.add((entity, f"{kind}#{tenant}"))
        if (entity, tenant, code) not in created:
            created.add((entity, tenant, code))
            commands.publish_async(_full(entity, tenant, code, 0, attributes={"i": i}), ctx)
        elif op == "update":
            commands.publish_async(_full(entity, tenant, code, -1, attributes={"i": i}), ctx)
        else:
            change = {"is_deleted": True} if op == "delete" else {"attributes": {f"p{i}": i}}
            commands.publish_partial_update_async(
                CommandPartialInput(pk=f"{kind}#{tenant}", sk=f"{kind}#{code}", version=-1,
                                    **change), ctx)  # fmt: skip
    return [
        c
        for entity, pk in sorted(pks)
        for c in table_items(app, app.schema.entity_tables(entity).command, pk=pk)
        if version_of(c["sk"]) is not None
    ]


def _record_id(record: dict[str, Any]) -> tuple[str, str]:
    """Sequence numbers are per stream: a record is (stream, sequence number)."""
    return record["eventSourceARN"], record["dynamodb"]["SequenceNumber"]


def test_generated_histories_recover_under_faults(
    cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hypothesis writes the command history too: creates, full and partial updates and
    soft deletes over two entity types, two tenants and two codes, each published for
    real; its stream records are then delivered under a generated plan and fault schedule."""
    w = make_world(cqrs_app)
    seen_records = {_record_id(r) for r in w.records}
    runs = itertools.count(1)  # fresh tenants per example, replays included

    @fault_search(EXAMPLES, SEED)
    @given(
        steps=st.lists(history_steps, min_size=1, max_size=8),
        schedule=st.lists(faults, min_size=1, max_size=4, unique=True),
        with_handler=st.booleans(),
        data=st.data(),
    )
    def check(
        steps: list[tuple[str, str, str, str]],
        schedule: list[Fault],
        with_handler: bool,
        data: st.DataObject,
    ) -> None:
        w.reset()
        commands = publish_history(w.plain, steps, next(runs))
        records = [r for r in stream_records(w.plain) if _record_id(r) not in seen_records]
        seen_records.update(_record_id(r) for r in records)
        assert len(records) == len(commands)  # one INSERT per accepted command
        plan = data.draw(plans(records))
        handler_faulted = data.draw(st.lists(handler_faults(commands), max_size=3, unique=True))
        run_schedule(w, records, plan, schedule, with_handler, handler_faulted)
        check_recovered(w, with_handler=with_handler, commands=commands)

    check()
    report(w, capsys, "generated histories tried")


@pytest.mark.parametrize("when", ["before", "after"])
def test_current_version_read_fault_recovers(cqrs_app: Cqrs, when: str) -> None:
    """A later version first, on an empty data row: the optimistic write misses, no old
    item comes back, so the projector reads the version (GetItem); that read fails."""
    w = make_world(cqrs_app)
    v2 = next(
        i
        for i, r in enumerate(w.records)
        if r["dynamodb"]["Keys"]["sk"]["S"] == "ORDER#1@2"
        and r["dynamodb"]["Keys"]["pk"]["S"] == "ORDER#acme"
    )
    plan = DeliveryPlan(batch_size=1, duplicates=[(0, v2)])
    with FaultInjector(w.plain.clients.dynamodb, [Fault("GetItem", 1, when, "timeout")]) as inj:
        deliver(w.plain, w.records, plan)
    assert inj.injected, f"GetItem was not called: {dict(inj.calls)}"
    check_recovered(w, with_handler=False)


def test_a_poison_entity_is_stuck_and_every_other_entity_recovers(cqrs_app: Cqrs) -> None:
    """A handler always fails ORDER#acme / ORDER#1 at version 2, under DynamoDB faults too:
    delivery still completes; the rest of the log is applied, that entity waits at
    version 1 and is listed as stuck; once the handler is fixed, redrive completes it."""
    w = make_world(cqrs_app)
    poisoned = ("ORDER#acme", "ORDER#1")
    w.flaky.poison.add((*poisoned, 2))
    schedule = [Fault("UpdateItem", 2, "after", "timeout"), Fault("BatchGetItem", 3)]

    with FaultInjector(w.handled.clients.dynamodb, schedule) as inj:
        log = deliver(w.handled, w.records, DeliveryPlan(batch_size=3, redeliver=[0]))

    assert inj.injected and log.partial_failures >= cqrs_app.settings.sync_max_attempts - 1
    (stuck,) = w.plain.sync_failures.failing()
    assert (stuck.key, stuck.failed_version, stuck.stuck, stuck.data_version) == (
        poisoned, 2, True, 1
    )  # fmt: skip
    assert stuck.waiting_through == 4
    waiting = [c for c in w.commands if (c["pk"], remove_version(c["sk"])) == poisoned
               and int(c["version"]) >= 2]  # fmt: skip
    want_data, want_history = expected_read_model([c for c in w.commands if c not in waiting])
    data: dict[tuple[str, str], Any] = {}
    history: dict[tuple[str, str], Any] = {}
    for entity in ENTITIES:
        tables = w.plain.schema.entity_tables(entity)
        data.update({(i["pk"], i["sk"]): i for i in table_items(w.plain, tables.data)})
        history.update({(i["pk"], i["sk"]): i for i in table_items(w.plain, tables.history)})
    assert data == want_data and history == want_history

    w.flaky.healed = True
    (result,) = w.handled.sync_failures.redrive("order")

    assert result.ok and result.applied_through == 4
    check_recovered(w, with_handler=True)
