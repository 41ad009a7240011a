"""Concurrent synchronizers: independent apps project the same stream records at once.

Lambda runs one invocation per shard at a time, but two synchronizers still meet: ``cqrs
sync`` beside Lambda, a redeployed event source mapping, a replay tool. Each worker here
is its own :class:`Cqrs` with its own boto3 clients on the same tables of moto's server
(real HTTP, requests atomic as on DynamoDB). The workers get identical, overlapping,
reordered, split or duplicated batches of the real stream records of one command log,
and start together. After they all finish:

- data is the serial application of the log (``expected_read_model``); history holds
  each version once, equal to the state after it;
- every version was committed to data exactly once, by one worker (the ``applied``
  command-status events of all workers together): none lost, none committed twice, none
  committed out of order (a commit from a stale base would repeat a version);
- with a custom ``DataSyncHandler``: every version was shown to a handler, always with
  the command's own content, never before some handler had been shown the version
  before it, and no ``down`` (no handler failed). Two workers may both show a version:
  handlers must be idempotent per (key, version), as the README asks.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cqrs import Command, CommandInput, CommandPartialInput, Cqrs, InvokeContext
from cqrs.core.keys import add_version, remove_version
from cqrs.events.notifications import CommandStatusEvent
from cqrs.store.clients import Clients, make_clients
from cqrs.store.codec import Item
from cqrs.sync.rebuild import expected_read_model
from cqrs.testing import clear_table, make_test_app, stream_records, table_items
from cqrs.testing.faults import DeliveryPlan, deliver

TABLES = Path(__file__).parent / "fixtures" / "tables"
ENTITIES = ("order", "cat")
WORKERS = 3
SEED = 20261123
Record = dict[str, Any]
EntityKey = tuple[str, str]
Version = tuple[str, str, str]  # (command table, pk, sk@version)

# -- the command log -------------------------------------------------------------------


def _full(entity: str, tenant: str, code: str, version: int, n: int) -> CommandInput:
    kind = entity.upper()
    return CommandInput(pk=f"{kind}#{tenant}", sk=f"{kind}#{code}", code=code,
                        name=f"{code}.{n}", tenant_code=tenant, type=kind, version=version,
                        attributes={"n": n})  # fmt: skip


def _patch(pk: str, sk: str, **changes: Any) -> CommandPartialInput:
    return CommandPartialInput(pk=pk, sk=sk, version=-1, **changes)


def publish_log(app: Cqrs) -> None:
    """10 commands on 3 entities (2 types, 2 tenants), versions of different entities
    interleaved: creates, full and partial updates, a soft delete and an update after it."""
    order, cat = app.entity("order").commands, app.entity("cat").commands
    acme, beta = (InvokeContext(tenant_code=t, user_id=f"u-{t}") for t in ("acme", "beta"))
    order.publish_async(_full("order", "acme", "1", 0, 0), acme)
    order.publish_async(_full("order", "acme", "2", 0, 0), acme)
    cat.publish_async(_full("cat", "beta", "1", 0, 0), beta)
    for n in (1, 2):
        order.publish_partial_update_async(_patch("ORDER#acme", "ORDER#1", seq=n), acme)
        cat.publish_async(_full("cat", "beta", "1", n, n), beta)
    order.publish_partial_update_async(_patch("ORDER#acme", "ORDER#2", name="2.1"), acme)
    order.publish_partial_update_async(_patch("ORDER#acme", "ORDER#1", is_deleted=True), acme)
    order.publish_partial_update_async(_patch("ORDER#acme", "ORDER#1", attributes={"z": 1}), acme)


@dataclass
class Log:
    app: Cqrs
    records: list[Record]  # the real stream records, in stream order
    commands: list[Item]  # every command item
    worker_clients: list[Clients]  # one pair per worker (built once: building them is slow)


@pytest.fixture(scope="module")
def log(moto_server: str) -> Log:
    """The command log, published once per module; every test starts from an empty read model."""
    app = make_test_app(TABLES, moto_server)
    publish_log(app)
    records = stream_records(app)
    commands = [c for e in ENTITIES for c in table_items(app, app.schema.entity_tables(e).command)]
    assert len(records) == len(commands) == 10
    return Log(app, records, commands, [make_clients(app.settings) for _ in range(WORKERS)])


@pytest.fixture
def fresh(log: Log) -> Iterator[Log]:
    for entity in ENTITIES:
        tables = log.app.schema.entity_tables(entity)
        clear_table(log.app, tables.data)
        clear_table(log.app, tables.history)
    yield log


# -- observing the workers ----------------------------------------------------------------


@dataclass
class Observed:
    """What every worker did, in the order it happened (shared, under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    applied: list[tuple[int, Version]] = field(default_factory=list)  # (worker, version) commits
    shown: list[tuple[EntityKey, int, str]] = field(default_factory=list)  # handler up() calls
    downs: list[tuple[EntityKey, int]] = field(default_factory=list)

    def status_listener(self, worker: int) -> Callable[[CommandStatusEvent], None]:
        def on_status(event: CommandStatusEvent) -> None:
            if event.status == "applied":
                with self.lock:
                    self.applied.append((worker, (event.table, event.pk, event.sk)))

        return on_status

    def committed_by(self, worker: int) -> set[Version]:
        return {v for w, v in self.applied if w == worker}


class Recorder:
    """A custom projection recording every version it is shown, across workers."""

    def __init__(self, observed: Observed) -> None:
        self._observed = observed

    def up(self, command: Command[Any]) -> None:
        key = (command.pk, remove_version(command.sk))
        with self._observed.lock:
            self._observed.shown.append((key, command.version, command.model_dump_json()))

    def down(self, command: Command[Any]) -> None:  # exceptions here would be swallowed
        with self._observed.lock:
            self._observed.downs.append(((command.pk, remove_version(command.sk)), command.version))


def make_workers(log: Log, observed: Observed, *, with_handler: bool) -> list[Cqrs]:
    """Independent apps on the same tables: each its own Cqrs and its own boto3 clients."""
    workers = []
    for i, clients in enumerate(log.worker_clients):
        app = Cqrs(log.app.settings, clients=clients)
        if with_handler:
            for entity in ENTITIES:
                app.register(entity, handlers=[Recorder(observed)])
        app.events.on(CommandStatusEvent)(observed.status_listener(i))
        workers.append(app)
    return workers


def run_together(workers: list[Cqrs], work: Callable[[Cqrs, int], object]) -> None:
    """Run ``work(app, i)`` for every worker in its own thread, all released at once."""
    barrier = threading.Barrier(len(workers))

    def run(i: int) -> None:
        barrier.wait(timeout=60)  # a guard against a hung worker, not a timing assertion
        work(workers[i], i)

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        for future in [pool.submit(run, i) for i in range(len(workers))]:
            future.result()  # re-raises a worker's failure


# -- checks ------------------------------------------------------------------------------------


def check_read_model(log: Log) -> None:
    want_data, want_history = expected_read_model(log.commands)
    data: dict[EntityKey, Item] = {}
    history: list[Item] = []
    for entity in ENTITIES:
        tables = log.app.schema.entity_tables(entity)
        data.update({(i["pk"], i["sk"]): i for i in table_items(log.app, tables.data)})
        history += table_items(log.app, tables.history)
    assert data == want_data  # the serial application of the log
    assert {(i["pk"], i["sk"]): i for i in history} == want_history  # the state after each
    assert len(history) == len(log.commands)  # ... once


def check_committed_once(log: Log, observed: Observed) -> None:
    """Each version committed by exactly one worker: none lost, none twice or out of order."""
    tables = {e: log.app.schema.entity_tables(e).command for e in ENTITIES}
    want = Counter((tables[c["type"].lower()], c["pk"], c["sk"]) for c in log.commands)
    applied = Counter(v for _, v in observed.applied)
    assert applied == want, {v: n for v, n in (applied | want).items() if applied[v] != 1}


def check_handlers(log: Log, observed: Observed) -> None:
    """Every version shown, with its content, never before its predecessor was shown."""
    content = {(c["pk"], c["sk"]): Command[Any].model_validate(c).model_dump_json()
               for c in log.commands}  # fmt: skip
    versions: dict[EntityKey, set[int]] = {}
    for c in log.commands:
        versions.setdefault((c["pk"], remove_version(c["sk"])), set()).add(int(c["version"]))
    first_shown: dict[EntityKey, list[int]] = {}
    for key, version, shown in observed.shown:
        assert shown == content[key[0], add_version(key[1], version)], (key, version)
        order = first_shown.setdefault(key, [])
        if version not in order:
            order.append(version)
    assert {k: sorted(v) for k, v in first_shown.items()} == {
        k: sorted(v) for k, v in versions.items()
    }  # every version shown
    for key, order in first_shown.items():
        assert order == sorted(order), f"{key}: first shown in the order {order}"
    assert observed.downs == []


# -- how the workers get the records -------------------------------------------------------

Assign = Callable[[list[Record], int], tuple[list[Record], DeliveryPlan]]


def one_per_batch(records: list[Record], i: int) -> tuple[list[Record], DeliveryPlan]:
    return records, DeliveryPlan(batch_size=1)


def reordered(records: list[Record], i: int) -> tuple[list[Record], DeliveryPlan]:
    """Worker 0 in stream order, worker 1 reversed, the others shuffled (later versions of an
    entity before earlier ones: the projector fills the gap from the command table)."""
    order = list(range(len(records)))
    if i == 1:
        order.reverse()
    elif i > 1:
        random.Random(SEED + i).shuffle(order)
    return records, DeliveryPlan(batch_size=1 + 2 * i, order=order)


def overlapping(records: list[Record], i: int) -> tuple[list[Record], DeliveryPlan]:
    """Each worker a wrapping window of 2/3 of the log (every record goes to two workers),
    its last record duplicated first, its first duplicated mid-way, a batch redelivered."""
    n = len(records)
    start, width = i * n // WORKERS, 2 * n // WORKERS + 1
    window = [records[(start + j) % n] for j in range(width)]
    plan = DeliveryPlan(batch_size=3, duplicates=[(0, width - 1), (width // 2, 0)], redeliver=[1])
    return window, plan


def split(records: list[Record], i: int) -> tuple[list[Record], DeliveryPlan]:
    """Each record to one worker only: an entity's versions race each other across workers."""
    return records[i::WORKERS], DeliveryPlan(batch_size=2)


ASSIGNMENTS: dict[str, Assign] = {
    "identical, one record per batch": one_per_batch,
    "reordered": reordered,
    "overlapping, duplicated, redelivered": overlapping,
    "split": split,
}


def test_assignments_cover_every_record(log: Log) -> None:
    """The plans really hand out every record (and overlap where they say so)."""
    ids = [r["dynamodb"]["SequenceNumber"] for r in log.records]
    for name, assign in ASSIGNMENTS.items():
        delivered: Counter[str] = Counter()
        for i in range(WORKERS):
            records, plan = assign(log.records, i)
            delivered.update(
                r["dynamodb"]["SequenceNumber"] for b in plan.batches(records) for r in b
            )
        assert set(delivered) == set(ids), name
        assert min(delivered.values()) >= (1 if name == "split" else 2), name


# -- tests ----------------------------------------------------------------------------------------

HANDLER = pytest.mark.parametrize("with_handler", [False, True], ids=["optimistic", "handler"])


@HANDLER
@pytest.mark.parametrize("name", list(ASSIGNMENTS))
def test_concurrent_deliveries_commit_each_version_once(
    fresh: Log, name: str, with_handler: bool
) -> None:
    observed = Observed()
    workers = make_workers(fresh, observed, with_handler=with_handler)
    assign = ASSIGNMENTS[name]
    run_together(workers, lambda app, i: deliver(app, *assign(fresh.records, i)))
    check_read_model(fresh)
    check_committed_once(fresh, observed)
    if with_handler:
        check_handlers(fresh, observed)


@HANDLER
def test_concurrent_stream_followers(fresh: Log, with_handler: bool) -> None:
    """Each worker follows the whole stream itself (own checkpoints), as ``cqrs sync`` does:
    identical batches, read from the stream by each worker."""
    observed = Observed()
    workers = make_workers(fresh, observed, with_handler=with_handler)

    def follow(app: Cqrs, _: int) -> None:
        for _attempt in range(10):  # a failed record is retried on the next drain, as Lambda does
            if app.sync().failed == 0:
                return
        raise AssertionError("records still failing after 10 drains")

    run_together(workers, follow)
    check_read_model(fresh)
    check_committed_once(fresh, observed)
    if with_handler:
        check_handlers(fresh, observed)


class Stall:
    """Holds a client's first ``UpdateItem`` (a data commit) until :attr:`release` is set,
    and counts the ``UpdateItem`` calls that lost their condition."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self.reached, self.release = threading.Event(), threading.Event()
        self.condition_failures = 0
        self._held = False

    def _before(self, **_: Any) -> None:
        if not self._held:
            self._held = True
            self.reached.set()
            self.release.wait(timeout=60)  # a guard against a hung test, not a timing assertion

    def _after(self, parsed: Any = None, **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if code == "ConditionalCheckFailedException":
            self.condition_failures += 1

    def __enter__(self) -> Stall:
        self._events.register("before-call.dynamodb.UpdateItem", self._before)
        self._events.register("after-call.dynamodb.UpdateItem", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._events.unregister("before-call.dynamodb.UpdateItem", self._before)
        self._events.unregister("after-call.dynamodb.UpdateItem", self._after)


@HANDLER
@pytest.mark.parametrize("half", [False, True], ids=["other commits all", "other commits half"])
def test_stalled_synchronizer_resumes_from_what_another_committed(
    fresh: Log, with_handler: bool, half: bool
) -> None:
    """A deterministic race: worker 0 stops right before its first data commit; worker 1
    then projects every record (or the first half of the stream); worker 0 resumes from a
    stale base. Its stale commit must lose, and it must carry on from worker 1's versions.
    (With a handler, worker 0 had already shown versions that worker 1 then committed:
    a handler sees each version at least once, not exactly once.)"""
    observed = Observed()
    stalled, other = make_workers(fresh, observed, with_handler=with_handler)[:2]
    records = fresh.records[: len(fresh.records) // 2] if half else fresh.records
    with ThreadPoolExecutor(max_workers=1) as pool, Stall(stalled.clients.dynamodb) as stall:
        first = pool.submit(deliver, stalled, fresh.records, DeliveryPlan())
        assert stall.reached.wait(timeout=60), "worker 0 never reached a data commit"
        deliver(other, records, DeliveryPlan())
        stall.release.set()
        first.result()
    assert stall.condition_failures > 0  # the stale commit lost
    check_read_model(fresh)
    check_committed_once(fresh, observed)
    if with_handler:
        check_handlers(fresh, observed)
    assert bool(observed.committed_by(0)) == half  # only what worker 1 never saw
    assert observed.committed_by(1)
