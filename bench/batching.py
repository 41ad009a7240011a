"""2. Requests per command at each event source mapping setting; 3. parallelization.

Section 2: the same commands handed to the handler in batches of 1, 10, 25 and 100
records (``cqrs template --batch-size``; 10 was the old default, 100 is the new
one). Per batch the handler writes history 25 items per ``BatchWriteItem`` and, with
a custom projection, reads the data versions in one ``BatchGetItem`` of up to 100
keys, so those requests amortise over the batch. The capacity units do not: every
history item and every key read is billed on its own.

A batch is full when at least that many records wait on the shard: at a steady rate
of r commands per second on one shard, Lambda's batches hold about
``min(batch size, r * max(batching window, ~0.25 s poll))`` records, which is what
``--batching-window`` buys.

Section 3: ``ParallelizationFactor`` P > 1 lets Lambda process P batches of a shard
at once, keeping order per *item* only. Every command version is an item of its own
(``<sk>@<N>``), so the versions of one entity can land in different concurrent
batches. Simulated here without threads: records go to P sub-streams by a hash of
their key, each sub-stream is cut into batches, and in each round the sub-streams'
batches are handled in reverse order (later versions first: the worst case of two
concurrent batches). Workload: bursts of 4 versions of each entity published before
the handler runs (imports, rapid edits); steady traffic rarely has two versions of
one entity in flight.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cqrs import Cqrs

from .capacity import CapacityMeter, Units
from .cpu import CallCpu, ClientCpu, EngineCpu
from .engine import Requests, StreamDriver, counting, drop_app, median, new_app, publish
from .report import Section, ops
from .requests import NoOpHandler, Sample, raw_round

BATCH_SIZES = (1, 10, 25, 100)
PARALLELIZATION = (1, 2, 4)
BURST = 4  # versions per entity in section 3


@dataclass
class Measured:
    """Requests, units and handler CPU of some commands."""

    commands: int
    requests: Requests
    units: Units
    handler_cpu: float = 0.0
    invocations: int = 0
    up_calls: int = 0

    def per(self, value: float) -> str:
        return f"{value / self.commands:.2f}"

    @property
    def total(self) -> float:
        return sum(self.requests.handler.values()) / self.commands


def _measure(app: Cqrs, driver: StreamDriver, publish_one: Callable[[int], None],
             entities: int, engine: EngineCpu) -> Measured:  # fmt: skip
    calls = driver.calls
    reading = CallCpu(
        engine, (app.clients.streams, None), (app.clients.dynamodb, frozenset({"DescribeTable"}))
    )
    with CapacityMeter(app.clients.dynamodb) as meter, counting(app) as requests, reading:
        for i in range(entities):
            publish_one(i)
        with ClientCpu(engine, lambda: meter.overhead + reading.overhead) as sync:
            driver.drain()
    return Measured(entities, requests, meter.units, sync.seconds - reading.seconds,
                    driver.calls - calls)  # fmt: skip


# -- 2. batch size ---------------------------------------------------------------------


@dataclass
class BatchRow:
    batch: int
    create: Measured
    update: Measured
    handled_create: Measured
    handled_update: Measured
    raw_update: Sample  # the raw boto3 script's updates, projected in batches of the same size
    cpu: list[tuple[float, float, float]] = field(default_factory=list)  # plain, handled, raw


def batch_row(batch: int, entities: int, engine: EngineCpu) -> BatchRow:
    """Creates then updates of ``entities`` entities, without and with a custom projection."""
    measured: list[Measured] = []
    for handlers in ((), (NoOpHandler(),)):
        app = new_app(f"batch{batch}", handlers=handlers)
        driver = StreamDriver(app, batch)
        try:
            for base in (0, 1):  # creates, then updates
                measured.append(_measure(app, driver, _publisher(app, base), entities, engine))
        finally:
            drop_app(app)
    create, update, handled_create, handled_update = measured
    raw = dict(raw_round(entities, batch, engine, shapes=("update",)))
    raw_update = next(v for k, v in raw.items() if "update (version N)" in k)
    return BatchRow(batch, create, update, handled_create, handled_update, raw_update)


def _publisher(app: Cqrs, base: int) -> Callable[[int], None]:
    return lambda i: publish(app, i, base)


def run_batches(entities: int, rounds: int, default: int) -> Section:
    """Section 2."""
    rows: list[BatchRow] = []
    with EngineCpu() as engine:
        for batch in BATCH_SIZES:
            samples = [batch_row(batch, entities, engine) for _ in range(rounds)]
            row = samples[0]
            row.cpu = [
                (s.update.handler_cpu, s.handled_update.handler_cpu, s.raw_update.handler_cpu)
                for s in samples
            ]
            rows.append(row)
    section = Section(
        f"2. Requests per command by Lambda batch size ({entities} creates then {entities} "
        f"updates, full batches; CPU: median of {rounds} round(s))",
        ["Batch size (records per invocation)", "invocations per 100 commands",
         "create req/cmd", "update req/cmd", "update req/cmd, with a handler",
         "update by operation, with a handler", "update RCU/cmd (with a handler)",
         "update WCU/cmd", "handler CPU ms/cmd: update (with a handler)",
         "raw floor update: req/cmd", "RCU/cmd", "WCU/cmd", "handler CPU ms/cmd"],
    )  # fmt: skip
    for row in rows:
        plain = median([c[0] for c in row.cpu]) / entities
        handled = median([c[1] for c in row.cpu]) / entities
        raw, raw_cpu = row.raw_update, median([c[2] for c in row.cpu]) / entities
        label = f"{row.batch}" + (" (template default)" if row.batch == default else "")
        label += " (old default)" if row.batch == 10 else ""
        section.rows.append([
            label,
            f"{100 * row.update.invocations / entities:.0f}",
            f"{row.create.total:.2f}",
            f"{row.update.total:.2f}",
            f"{row.handled_update.total:.2f}",
            ops(dict(row.handled_update.requests.handler), entities),
            f"{row.update.per(row.update.units.read)} "
            f"({row.handled_update.per(row.handled_update.units.read)})",
            row.update.per(row.update.units.write),
            f"{1000 * plain:.2f} ({1000 * handled:.2f})",
            f"{sum(raw.requests.handler.values()) / entities:.2f}",
            f"{raw.units.read / entities:.2f}",
            f"{raw.units.write / entities:.2f}",
            f"{1000 * raw_cpu:.2f}",
        ])  # fmt: skip
    section.notes += _batch_notes(rows)
    return section


def _batch_notes(rows: Sequence[BatchRow]) -> list[str]:
    one, big = rows[0], rows[-1]
    saved = one.update.total - big.update.total
    return [
        "Requests per command fall with the batch: history BatchWriteItem costs "
        "ceil(batch/25)/batch per command and, with a handler, the data versions' "
        "BatchGetItem ceil(batch/100)/batch. From batch 1 to batch "
        f"{big.batch}: {saved:.2f} fewer requests per update, "
        f"{one.update.invocations / big.update.invocations:.0f}x fewer invocations.",
        "Capacity units do not change with the batch (every item is billed on its own, "
        "inside a batch request too): batching saves round trips and Lambda invocations "
        "(per-invocation fixed cost, duration spent waiting for requests), not DynamoDB "
        "units.",
        "Handler CPU per command includes the per-invocation overhead (event parsing, "
        "routing, the batch requests), spread over the batch; it excludes the engine's "
        "time and the local follower's stream reading.",
        "Raw floor update: the plain boto3 script (bench/raw_floor.py) writing the same "
        "updates and projecting them from memory in batches of the same size (history 25 "
        "per BatchWriteItem, one conditional UpdateItem per command), measured in the same "
        "round; its handler CPU has no stream records to parse.",
    ]


# -- 3. parallelization ----------------------------------------------------------------


def sub_batches(records: Sequence[dict[str, Any]], factor: int, batch: int
                ) -> list[list[list[dict[str, Any]]]]:  # fmt: skip
    """Records → ``factor`` sub-streams by item key hash → batches of up to ``batch``."""
    streams: list[list[dict[str, Any]]] = [[] for _ in range(factor)]
    for record in records:
        keys = record["dynamodb"]["Keys"]
        item = f"{keys['pk']['S']}\x00{keys['sk']['S']}".encode()
        streams[zlib.crc32(item) % factor].append(record)
    return [[s[i : i + batch] for i in range(0, len(s), batch)] for s in streams]


def handle_concurrently(app: Cqrs, batches: list[list[list[dict[str, Any]]]]) -> int:
    """Round by round, the sub-streams' batches in reverse order; failed records are
    retried from the first failure, as Lambda does. Returns the invocations."""
    calls = 0
    for r in range(max((len(b) for b in batches), default=0)):
        for stream in reversed(batches):
            if r >= len(stream):
                continue
            pending = stream[r]
            for _ in range(5):
                calls += 1
                failed = {f["itemIdentifier"] for f in
                          app.handle_event({"Records": pending})["batchItemFailures"]}  # fmt: skip
                if not failed:
                    break
                first = next(i for i, rec in enumerate(pending)
                             if rec["dynamodb"]["SequenceNumber"] in failed)  # fmt: skip
                pending = pending[first:]
    return calls


def parallel_sample(factor: int, handlers: bool, entities: int, batch: int) -> Measured:
    """Bursts of :data:`BURST` versions per entity, handled with ``factor`` sub-streams."""
    handler = NoOpHandler()
    app = new_app(f"par{factor}", handlers=(handler,) if handlers else ())
    driver = StreamDriver(app, batch)
    try:
        with CapacityMeter(app.clients.dynamodb) as meter, counting(app) as requests:
            for i in range(entities):
                for version in range(BURST):
                    publish(app, i, version)
            records = driver.follower.read_records()
            calls = handle_concurrently(app, sub_batches(records, factor, batch))
    finally:
        drop_app(app)
    out = Measured(entities * BURST, requests, meter.units, invocations=calls)
    out.up_calls = handler.calls
    return out


def run_parallel(entities: int, batch: int, default: int) -> Section:
    """Section 3."""
    section = Section(
        f"3. ParallelizationFactor: an entity's versions in concurrent batches ({entities} "
        f"entities x {BURST} versions published before the handler runs; batches of {batch})",
        ["ParallelizationFactor", "custom projection", "invocations", "DynamoDB req/cmd",
         "by operation (per command)", "RCU/cmd", "WCU/cmd", "failed cond. writes/cmd",
         "handler up() calls per version"],
    )  # fmt: skip
    first: Measured | None = None
    for factor in PARALLELIZATION:
        for handlers in (False, True):
            m = parallel_sample(factor, handlers, entities, batch)
            first = first or m
            label = f"{factor}" + (" (template default)" if factor == default else "")
            section.rows.append([
                label, "yes" if handlers else "no", str(m.invocations), f"{m.total:.2f}",
                ops(dict(m.requests.handler), m.commands), m.per(m.units.read),
                m.per(m.units.write), m.per(m.units.failed_writes),
                f"{m.up_calls / m.commands:.2f}" if handlers else "—",
            ])  # fmt: skip
    assert first is not None
    data_writes = first.requests.handler.get("UpdateItem", 0) / first.commands
    section.notes += [
        f"At P = 1 the {BURST} versions of an entity in one batch are coalesced: history gets "
        f"every version, the data row one write ({data_writes:.2f} UpdateItem per command), "
        "so a burst costs fewer units per command than single updates (section 1). Splitting "
        "the burst over concurrent batches undoes that.",
        "P > 1 stays correct (the projector fills gaps from the command table, its data "
        "write is conditional on the version it replaces, later records of an applied "
        "version are skipped), but out-of-order versions cost extra: gap fills read the "
        "command table, the batch that arrives second finds its versions applied (failed "
        "conditional writes, history re-put). Handled one after the other, as here, handlers "
        "see each version once; two batches truly racing on an entity may show a handler a "
        "version twice (handlers are at-least-once).",
        "Worst case: in each round the later sub-stream's batch runs first. With real "
        "concurrency the overlap is partial; with steady traffic (one version of an entity "
        "in flight at a time) P > 1 costs nothing extra but smaller batches.",
    ]
    return section
