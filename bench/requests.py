"""1. DynamoDB requests per accepted command, end to end (publish + sync), against the floor.

The floor is what any correct event-sourced write must spend: 1 command write
(conditional PutItem), 1 data write and the history write batched 25 per
BatchWriteItem (1/25 per command), plus one read of the base version for an
update. The follower's own requests (DescribeTable and the Streams API, done
by Lambda's event source mapping on AWS) are counted separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cqrs import Cqrs

from .engine import Requests, context, counting, drop_app, new_app, order, publish
from .report import Section, ops, per

CREATE_FLOOR = 1 + 1 + 1 / 25
UPDATE_FLOOR = CREATE_FLOOR + 1

#: MBC CQRS Serverless, per command, derived from its source (figures as given for this
#: benchmark, not measured here): its pipeline goes command table → stream → SQS/Step
#: Functions → data and history, with status notifications over SNS.
MBC_READS, MBC_WRITES, MBC_SNS = 7, 16, 12


@dataclass(frozen=True)
class Workload:
    """One kind of command, published for every entity, then synced."""

    label: str
    floor: float
    publish: Callable[[Cqrs, int], None]
    reason: str  # why it costs more than the floor, if it does


def _publish_sync(app: Cqrs, i: int) -> None:
    app.entity("order").commands.publish_sync(order(i, 3), context(i))


WORKLOADS = (
    Workload("create (version 0)", CREATE_FLOOR, lambda app, i: publish(app, i, 0), ""),
    Workload(
        "update (version N)",
        UPDATE_FLOOR,
        lambda app, i: publish(app, i, 1),
        "",
    ),
    Workload(
        "update (version -1: latest)",
        UPDATE_FLOOR,
        lambda app, i: publish(app, i, -1, revision=2),
        "version -1 has no base version to read: it reads the data row's version (GetItem), "
        "then a window of 10 command versions from there (BatchGetItem)",
    ),
    Workload(
        "publish_sync update (version N)",
        UPDATE_FLOOR,
        _publish_sync,
        "publish_sync projects one command at a time (its history write is not batched with "
        "others), and its stream record still reaches the handler, which re-puts the history "
        "item (batched) and finds the data row applied with a conditional UpdateItem",
    ),
)


def measure(app: Cqrs, workload: Workload, entities: int) -> Requests:
    """Publish one command per entity, then drain the streams; count everything."""
    with counting(app) as requests:
        for i in range(entities):
            workload.publish(app, i)
        app.sync()
    return requests


def run(entities: int) -> Section:
    """Measure every workload in order on one app (each builds on the previous versions)."""
    section = Section(
        f"1. DynamoDB requests per accepted command ({entities} entities, publish + sync)",
        [
            "Workload",
            "DynamoDB req/cmd",
            "by operation (per command)",
            "floor",
            "above floor",
            "follower only (local)",
        ],
    )
    app = new_app("requests")
    follower = ""
    try:
        for workload in WORKLOADS:
            requests = measure(app, workload, entities)
            section.rows.append(_row(workload, requests, entities))
            _explain(section, workload, measure_total=float(section.rows[-1][1]))
            follower = follower or ops(dict(requests.follower), entities)
    finally:
        drop_app(app)
    section.rows.append(_mbc_row())
    section.notes += _notes(entities, follower)
    return section


def _row(workload: Workload, requests: Requests, entities: int) -> list[str]:
    handler = requests.handler
    total = sum(handler.values())
    return [
        workload.label,
        per(total, entities),
        ops(dict(handler), entities),
        f"{workload.floor:.2f}",
        f"{total / entities - workload.floor:+.2f}",
        per(sum(requests.follower.values()), entities),
    ]


def _explain(section: Section, workload: Workload, measure_total: float) -> None:
    if measure_total - workload.floor > 0.005:
        reason = workload.reason or "unexpected: see the operations column"
        section.notes.append(f"**{workload.label}** is above the floor: {reason}.")


def _mbc_row() -> list[str]:
    return [
        "MBC CQRS Serverless (derived from its source, as given; not measured)",
        f"~{MBC_READS + MBC_WRITES}",
        f"~{MBC_READS} reads + ~{MBC_WRITES} writes, plus 1 Step Functions execution "
        f"and {MBC_SNS} SNS messages",
        "—",
        "—",
        "—",
    ]


def _notes(entities: int, follower: str) -> list[str]:
    return [
        "DynamoDB req/cmd counts every request on `app.clients.dynamodb` except the "
        "follower's DescribeTable, i.e. what the service plus the Lambda stream handler make "
        "on AWS. Floor: 1 conditional PutItem (command) + 1 data write + 1/25 BatchWriteItem "
        "(history), + 1 read of the base version for updates.",
        "Follower only: the local stream follower's DescribeTable (DynamoDB client) and "
        "DescribeStream/GetShardIterator/GetRecords (Streams client), per command. On AWS "
        "Lambda's event source mapping does this reading; they are not billed as table "
        f"requests there. Per command: {follower}.",
        f"Batches: the follower hands the handler up to 100 records (Lambda's default batch "
        f"size); {entities} entities → {max(1, -(-entities // 100))} batch(es) per workload.",
    ]
