"""1. Cost per command, every variant side by side: requests, capacity units, client CPU.

Each cqrs variant publishes one command per entity, then the stream is handed to
the handler in batches of ``batch`` records (what Lambda's event source mapping
does with a full batch: :class:`~bench.engine.StreamDriver`). Variants run in
order on one app (each builds on the versions the previous one wrote), once on an
app without custom projections and once on an app with a no-op ``DataSyncHandler``;
then an update with notifications on (an SNS topic set); then the raw boto3
scripts making only the floor's requests (:mod:`bench.raw_floor`), projecting in
batches of the same size. Nothing is picked as a headline: every row is measured
the same way.

Per command: DynamoDB requests (the service's and the stream handler's; the local
follower's stream reading is counted apart: Lambda does it on AWS), capacity units
computed by DynamoDB's rules (:mod:`bench.capacity`; the engine's own report is
shown too), conditional writes that failed (billed like any write), and client
CPU time (:mod:`bench.cpu`: process time minus the engine's), for the service
(publish) and for the handler (sync, minus the follower's stream reading). Counts
and units come from the first round and are checked equal in the others; CPU is
the median over the rounds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cqrs import CommandPartialInput, Cqrs

from .capacity import CapacityMeter, Units
from .cpu import CallCpu, ClientCpu, EngineCpu
from .engine import (
    REGION,
    Requests,
    StreamDriver,
    attributes,
    context,
    counting,
    drop_app,
    median,
    new_app,
    order,
    publish,
)
from .raw_floor import DataWrite, RawFloor, entity_fields, entity_key
from .report import Section, ops

CREATE_FLOOR = 1 + 1 + 1 / 25
UPDATE_FLOOR = CREATE_FLOOR + 1

#: MBC CQRS Serverless, per command, derived from its source (figures as given for this
#: benchmark, not measured here): its pipeline goes command table → stream → SQS/Step
#: Functions → data and history, with status notifications over SNS.
MBC_READS, MBC_WRITES, MBC_SNS = 7, 16, 12


class NoOpHandler:
    """A custom projection that does nothing but count (the cost of having one)."""

    def __init__(self) -> None:
        self.calls = 0

    def up(self, command: object) -> None:
        self.calls += 1

    def down(self, command: object) -> None:
        pass


@dataclass(frozen=True)
class Variant:
    """One kind of command, published once for every entity, then synced."""

    label: str
    floor: float
    publish: Callable[[Cqrs, int], None]
    reason: str = ""  # why it costs more than the floor, if it does
    handled: str = ""  # ... with a custom projection, if that differs


#: Why a custom projection costs more (every variant but publish_sync's).
HANDLER_REASON = (
    "with a custom projection the handler reads the data versions of its batch first (one "
    "BatchGetItem of up to 100 keys per batch; each key 1 RCU) so that handlers see every "
    "version once, in order"
)


def _partial(app: Cqrs, i: int) -> None:
    pk, sk = entity_key(i)
    update = CommandPartialInput(pk=pk, sk=sk, version=3, attributes={"status": "paid"})
    app.entity("order").commands.publish_partial_update_async(update, context(i))


def _publish_sync(app: Cqrs, i: int) -> None:
    app.entity("order").commands.publish_sync(order(i, 4), context(i))


LATEST_REASON = (
    "version -1 bases the command on the data row (one consistent GetItem); here the read "
    "model was behind the command log, so the PutItem after the row failed (billed), a "
    "window of 10 command versions was read (BatchGetItem: 10 strongly consistent reads, "
    "each billed at least 1 RCU even when the item is missing) and the PutItem repeated"
)
VARIANTS = (
    Variant("create (version 0)", CREATE_FLOOR, lambda app, i: publish(app, i, 0)),
    Variant("update (version N)", UPDATE_FLOOR, lambda app, i: publish(app, i, 1)),
    Variant(
        "update (version -1: latest)",
        UPDATE_FLOOR,
        lambda app, i: publish(app, i, -1, revision=2),
        LATEST_REASON,  # shown only when above the floor: the read model was behind
    ),
    Variant("partial update (version N)", UPDATE_FLOOR, _partial),
    Variant(
        "publish_sync update (version N)",
        UPDATE_FLOOR,
        _publish_sync,
        "publish_sync projects one command at a time (its history write is a BatchWriteItem "
        "of 1); its stream record is marked syncMode SYNC and the handler skips it",
        "publish_sync projects one command at a time: it reads the data version (BatchGetItem "
        "of 1) and writes history alone (BatchWriteItem of 1); its stream record is marked "
        "syncMode SYNC and the handler skips it",
    ),
)


@dataclass
class Sample:
    """One row, one round."""

    commands: int = 0
    requests: Requests = field(default_factory=Requests)
    units: Units = field(default_factory=Units)
    sns: Counter[str] = field(default_factory=Counter)
    service_cpu: float = 0.0
    handler_cpu: float = 0.0
    reading_cpu: float = 0.0
    invocations: int = 0
    records: int = 0


@dataclass
class Row:
    """A row over every round."""

    label: str
    floor: float | None
    batch: str
    samples: list[Sample] = field(default_factory=list)
    reason: str = ""


# -- cqrs ----------------------------------------------------------------------------------


def measure(driver: StreamDriver, publish: Callable[[int], None], entities: int,
            engine: EngineCpu, sns: Any = None) -> Sample:  # fmt: skip
    """Publish one command per entity, then drain the streams; count everything."""
    app = driver.app
    sample = Sample(commands=entities)
    calls, records = driver.calls, driver.records
    reading = CallCpu(
        engine, (app.clients.streams, None), (app.clients.dynamodb, frozenset({"DescribeTable"}))
    )
    with CapacityMeter(app.clients.dynamodb) as meter, counting(app) as requests, reading:
        sns_counter = _SnsCounter(sns)
        overheads = lambda: meter.overhead + reading.overhead  # noqa: E731
        with ClientCpu(engine, overheads) as service, sns_counter:
            for i in range(entities):
                publish(i)
        with ClientCpu(engine, overheads) as sync, sns_counter:
            driver.drain()
    sample.requests, sample.units, sample.sns = requests, meter.units, sns_counter.by_op
    sample.service_cpu, sample.reading_cpu = service.seconds, reading.seconds
    sample.handler_cpu = sync.seconds - reading.seconds
    sample.invocations, sample.records = driver.calls - calls, driver.records - records
    return sample


class _SnsCounter:
    """Requests on the notifier's SNS client, if there is one."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.by_op: Counter[str] = Counter()

    def _count(self, model: Any, **_: Any) -> None:
        self.by_op[model.name] += 1

    def __enter__(self) -> _SnsCounter:
        if self._client is not None:
            self._client.meta.events.register("before-call.*.*", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.meta.events.unregister("before-call.*.*", self._count)


def cqrs_round(entities: int, batch: int, engine: EngineCpu) -> list[tuple[str, Sample]]:
    """Every variant without and with a custom projection, then notifications on."""
    out: list[tuple[str, Sample]] = []
    for handlers in (False, True):
        app = new_app("cost", handlers=[NoOpHandler()] if handlers else ())
        driver = StreamDriver(app, batch)
        try:
            for v in VARIANTS:
                sample = measure(driver, _bound(v, app), entities, engine)
                out.append((_label(v.label, handlers), sample))
        finally:
            drop_app(app)
    out.append((NOTIFY_LABEL, _notifications_sample(entities, batch, engine)))
    return out


NOTIFY_LABEL = "update (version N), notifications on (CQRS_SNS_TOPIC_ARN set)"


def _notifications_sample(entities: int, batch: int, engine: EngineCpu) -> Sample:
    import boto3

    sns = boto3.session.Session(region_name=REGION).client("sns")
    topic = sns.create_topic(Name="bench-notifications")["TopicArn"]
    app = new_app("cost-sns", sns_topic_arn=topic)
    driver = StreamDriver(app, batch)
    try:
        for i in range(entities):
            publish(app, i, 0)
        driver.drain()
        return measure(driver, lambda i: publish(app, i, 1), entities, engine, app.notifier.sns)
    finally:
        drop_app(app)
        sns.delete_topic(TopicArn=topic)


def _bound(variant: Variant, app: Cqrs) -> Callable[[int], None]:
    return lambda i: variant.publish(app, i)


def _label(label: str, handlers: bool) -> str:
    return f"{label}, with a handler" if handlers else label


# -- raw floor -----------------------------------------------------------------------------


def raw_round(
    entities: int, batch: int, engine: EngineCpu, shapes: Sequence[DataWrite] = ("update", "put")
) -> list[tuple[str, Sample]]:
    """The raw scripts: creates, then updates, projected ``batch`` commands at a time."""
    import boto3
    from botocore.config import Config

    out: list[tuple[str, Sample]] = []
    for data_write in shapes:
        app = new_app(f"cost-raw-{data_write}")  # only for its tables
        tables = app.entity("order").tables
        # Without botocore's parameter validation, like cqrs's own clients: the floor.
        unvalidated = Config(parameter_validation=False)
        client = boto3.session.Session(region_name=REGION).client("dynamodb", config=unvalidated)
        raw = RawFloor(client, tables.command, tables.data, tables.history, data_write)
        try:
            for phase, write in _raw_writes(raw):
                sample = _raw_phase(raw, client, write, entities, batch, engine)
                out.append((_raw_label(phase, data_write), sample))
        finally:
            drop_app(app)
    return out


def _raw_writes(raw: RawFloor) -> list[tuple[str, Callable[[int], dict[str, Any]]]]:
    return [
        ("create", lambda i: raw.create(entity_fields(i))),
        ("update (version N)", lambda i: raw.update(*entity_key(i), 1, attributes(i, 1))),
    ]


def _raw_phase(raw: RawFloor, client: Any, write: Callable[[int], dict[str, Any]],
               entities: int, batch: int, engine: EngineCpu) -> Sample:  # fmt: skip
    sample = Sample(commands=entities)
    from cqrs.testing import RequestCounter

    with CapacityMeter(client) as meter, RequestCounter(client) as requests:
        with ClientCpu(engine, lambda: meter.overhead) as service:
            commands = [write(i) for i in range(entities)]
        with ClientCpu(engine, lambda: meter.overhead) as project:
            for start in range(0, entities, batch):
                raw.project(commands[start : start + batch])
                sample.invocations += 1
    sample.requests = Requests(requests.by_operation, Counter())
    sample.units, sample.records = meter.units, entities
    sample.service_cpu, sample.handler_cpu = service.seconds, project.seconds
    return sample


def _raw_label(phase: str, data_write: DataWrite) -> str:
    how = "UpdateItem (cqrs's expression shape)" if data_write == "update" else "PutItem"
    return f"raw boto3 floor: {phase}, data via conditional {how}"


# -- report --------------------------------------------------------------------------------


def run(entities: int, batch: int, rounds: int) -> Section:
    """Every variant, ``rounds`` times; counts from the first round, CPU medians."""
    rows: dict[str, Row] = {}
    with EngineCpu() as engine:
        for _ in range(rounds):
            for label, sample in cqrs_round(entities, batch, engine):
                rows.setdefault(label, _row(label, entities, batch)).samples.append(sample)
            for label, sample in raw_round(entities, batch, engine):
                row = rows.setdefault(label, Row(label, None, f"{min(batch, entities)} in memory"))
                row.samples.append(sample)
    section = Section(
        f"1. Cost per command, every variant ({entities} entities, handler batches of "
        f"{batch} records; CPU: median of {rounds} rounds); in brackets, the raw floor",
        ["Variant", "records per handler call", "DynamoDB req/cmd", "(floor)",
         "by operation (per command)", "RCU/cmd", "(raw)", "WCU/cmd (of which GSI)", "(raw)",
         "failed cond. writes/cmd", "moto-reported CU/cmd", "client CPU ms/cmd: service",
         "(raw)", "client CPU ms/cmd: handler", "(raw)"],
    )  # fmt: skip
    for row in rows.values():
        section.rows.append(_cells(row, rows.get(_floor_label(row.label))))
    section.rows.append(_mbc_row(len(section.headers)))
    section.notes += _notes(list(rows.values()), batch)
    return section


def _row(label: str, entities: int, batch: int) -> Row:
    variant = next((v for v in VARIANTS if label.startswith(v.label)), None)
    floor = variant.floor if variant else UPDATE_FLOOR
    per_call = str(min(batch, entities))
    if label.startswith("publish_sync"):
        per_call = "1 in-process (its stream record is skipped)"
    reason = ""
    if variant is not None:
        handled = label.endswith(", with a handler")
        reason = (variant.handled or HANDLER_REASON) if handled else variant.reason
    return Row(label, floor, per_call, reason=reason)


def _floor_label(label: str) -> str:
    """The raw script's row each cqrs row is compared with (same data-write shape)."""
    phase = "create" if label.startswith("create") else "update (version N)"
    return _raw_label(phase, "update")


def _cells(row: Row, floor: Row | None) -> list[str]:
    first = row.samples[0]
    n = first.commands
    handler = first.requests.handler
    sns = f"; SNS {ops(dict(first.sns), n)}" if first.sns else ""
    mine = _figures(row)
    compared = floor is not None and not row.label.startswith("raw")
    bracket = [f"({x})" for x in _figures(floor)] if floor and compared else [""] * 4
    return [
        row.label,
        row.batch,
        f"{sum(handler.values()) / n:.2f}",
        f"({row.floor:.2f})" if row.floor is not None else "",
        ops(dict(handler), n) + sns,
        mine[0], bracket[0],
        f"{mine[1]} ({first.units.index_write / n:.2f})", bracket[1],
        f"{first.units.failed_writes / n:.2f}",
        f"{first.units.reported / n:.2f}",
        mine[2], bracket[2],
        mine[3], bracket[3],
    ]  # fmt: skip


def _figures(row: Row) -> tuple[str, str, str, str]:
    """RCU/cmd, WCU/cmd, service and handler CPU ms/cmd (medians) of a row."""
    first = row.samples[0]
    n = first.commands
    return (
        f"{first.units.read / n:.2f}",
        f"{first.units.write / n:.2f}",
        f"{1000 * median([s.service_cpu / s.commands for s in row.samples]):.2f}",
        f"{1000 * median([s.handler_cpu / s.commands for s in row.samples]):.2f}",
    )


def _mbc_row(width: int) -> list[str]:
    cells = [
        "MBC CQRS Serverless (derived from its source, as given; not measured)",
        "—",
        f"~{MBC_READS + MBC_WRITES}",
        "",
        f"~{MBC_READS} reads + ~{MBC_WRITES} writes, plus 1 Step Functions execution "
        f"and {MBC_SNS} SNS messages",
    ]
    return cells + ["—"] * (width - len(cells))


def _notes(rows: Sequence[Row], batch: int) -> list[str]:
    notes = []
    for row in rows:
        first = row.samples[0]
        total = sum(first.requests.handler.values()) / first.commands
        if row.floor is not None and total - row.floor > 0.005 and row.reason:
            notes.append(f"**{row.label}** is above the floor: {row.reason}.")
    unstable = [r.label for r in rows if len({_fingerprint(s) for s in r.samples}) > 1]
    reading = median([s.reading_cpu / s.commands for r in rows for s in r.samples
                      if s.reading_cpu])  # fmt: skip
    follower = next(r for r in rows if r.samples[0].requests.follower)
    return [
        *notes,
        "DynamoDB req/cmd: every request on the app's DynamoDB client except the local "
        "follower's DescribeTable, i.e. what the service plus the Lambda stream handler make "
        "on AWS. Floor: 1 conditional PutItem (command) + 1 data write + 1/25 BatchWriteItem "
        "(history), + 1 read of the base version for updates.",
        "In brackets: the floor's request count, and the raw boto3 script's figures for the "
        "same kind of command (create, else update at version N; its data write the "
        "UpdateItem shape cqrs uses), measured in the same run, round by round with cqrs's; "
        "its rows are below. Its client skips botocore's parameter validation, as cqrs's "
        "clients do.",
        "Records per handler call: the Lambda batch each figure assumes (a full batch of "
        f"{batch}, or every command of the row when fewer). Section 2 gives the same figures "
        "at other batch sizes.",
        "RCU/WCU: computed from the item sizes before and after each request by DynamoDB's "
        "rules (bench/capacity.py): 1 WCU per KB written (the larger of old and new item), "
        "per item also inside BatchWriteItem, plus the data table's code-index (projection "
        "ALL) for every data row written; 1 RCU per 4 KB strongly consistent read, at least "
        "1 per item even when it is missing. The on-demand bill is these units "
        "(write and read request units); request counts are not billed.",
        "Failed cond. writes: conditional writes whose condition failed; DynamoDB bills "
        "them (1 WCU per KB of the existing item, at least 1), included in WCU.",
        "moto-reported CU: the ConsumedCapacity moto returns when asked (via a "
        "provide-client-params hook adding ReturnConsumedCapacity=TOTAL): fixed "
        "placeholders (1.0 per PutItem, 0.5 per GetItem, one per key of a BatchGetItem, "
        "nothing for UpdateItem, BatchWriteItem or a failed write), not DynamoDB's figures.",
        "Client CPU: time.process_time() of the service's publishes and of the handler's "
        "batches, minus what the in-process engine (moto) spent answering, minus the "
        "benchmark's own hooks (bench/cpu.py); it includes botocore's serialization and "
        "parsing, not the network. Handler CPU excludes the local follower's stream reading "
        f"({1000 * reading:.2f} ms per command here), which Lambda does on AWS. Medians of "
        "the rounds; this machine's cores are shared and noisy.",
        "Notifications on: one SNS message per applied command, sent 10 per PublishBatch "
        "(SNS bills a batch of small messages about as one publish; deliveries are billed per "
        "subscription by protocol); the rest is unchanged.",
        "Follower only (not in DynamoDB req/cmd): the local follower's DescribeTable and "
        "DescribeStream/GetShardIterator/GetRecords, per command: "
        f"{ops(dict(follower.samples[0].requests.follower), follower.samples[0].commands)}.",
        "Request counts and units were identical in every round."
        if not unstable
        else f"Request counts or units differed between rounds for: {', '.join(unstable)}.",
    ]


def _fingerprint(sample: Sample) -> tuple[object, ...]:
    u = sample.units
    return (
        tuple(sorted(sample.requests.handler.items())),
        round(u.read, 3),
        round(u.write, 3),
        u.failed_writes,
    )
