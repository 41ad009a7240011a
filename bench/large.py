"""8. Large attributes: inline in DynamoDB, or in S3 as MBC keeps them, side by side.

For attributes of a few sizes, the same workload runs on an app without a bucket
(attributes inline, up to DynamoDB's 400 KB item limit) and on one with
``CQRS_S3_BUCKET`` at the default limit (100 KB of JSON): create (publish + sync),
update at N (publish + sync) and a read of the data row (``data.get``), per command:
DynamoDB requests and capacity units by DynamoDB's rules (:mod:`bench.capacity`;
the ``code-index`` GSI projects every attribute, so an inline data row is written
twice), and S3 requests by operation. S3 bills per request (and storage), not by size.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from cqrs import SYSTEM, Cqrs
from cqrs.core.large import DEFAULT_ATTRIBUTE_LIMIT
from cqrs.testing import RequestCounter

from .capacity import CapacityMeter, Units
from .engine import REGION, StreamDriver, context, drop_app, new_app, order
from .report import Section, ops

#: Bytes of the attributes' "note". moto refuses an UpdateItem when the old and the new
#: item together pass 405,000 bytes (``LimitedSizeDict`` counts the replaced value too),
#: so inline data rows above about 200 KB cannot be updated there; DynamoDB can.
SIZES = (50_000, 150_000, 190_000)


@dataclass
class Cost:
    """What one operation cost, summed over the entities."""

    dynamodb: Counter[str] = field(default_factory=Counter)
    s3: Counter[str] = field(default_factory=Counter)
    units: Units = field(default_factory=Units)


def _app(size: int, bucket: str | None) -> Cqrs:
    app = new_app(f"large{size // 1000}", s3_bucket=bucket)
    app.clients.store.objects.ensure_bucket(REGION)
    return app


def _measured(app: Cqrs, driver: StreamDriver, step: object) -> Cost:
    cost = Cost()
    s3 = app.clients.store.objects.client
    with (
        RequestCounter(app.clients.dynamodb) as db,
        RequestCounter(s3) as objects,
        CapacityMeter(app.clients.dynamodb) as meter,
    ):
        step()  # type: ignore[operator]
        driver.drain()
    cost.dynamodb = Counter({k: v for k, v in db.by_operation.items() if k != "DescribeTable"})
    cost.s3, cost.units = Counter(objects.by_operation), meter.units
    return cost


def _variant(size: int, bucket: str | None, entities: int) -> dict[str, Cost]:
    app = _app(size, bucket)
    driver = StreamDriver(app, 100)
    commands, data = app.entity("order").commands, app.entity("order").data

    def publish(version: int) -> None:
        for i in range(entities):
            command = order(i, version)
            note = {**(command.attributes or {}), "note": "n" * size, "v": version}
            commands.publish_async(command.model_copy(update={"attributes": note}), context(i))

    def read() -> None:
        for i in range(entities):
            data.get(f"ORDER#t{i % 10}", f"ORDER#{i:07d}", context=SYSTEM)

    try:
        return {
            "create": _measured(app, driver, lambda: publish(0)),
            "update at N": _measured(app, driver, lambda: publish(1)),
            "read (data.get)": _measured(app, driver, read),
        }
    finally:
        drop_app(app)


def run(entities: int) -> Section:
    """Section 8: every size, inline and in S3, every operation, per command."""
    section = Section(
        title="8. Large attributes: inline vs in S3 (per command)",
        headers=["attributes", "where", "operation", "DynamoDB requests", "WCU", "RCU",
                 "S3 requests"],
    )  # fmt: skip
    bucket = f"bench-large-{uuid.uuid4().hex[:8]}"
    for size in SIZES:
        for where, name in (("inline", None), (f"S3 over {DEFAULT_ATTRIBUTE_LIMIT:,} B", bucket)):
            for operation, cost in _variant(size, name, entities).items():
                section.rows.append([
                    f"{size // 1000} KB", where, operation, ops(dict(cost.dynamodb), entities),
                    f"{cost.units.write / entities:.1f}", f"{cost.units.read / entities:.1f}",
                    ops(dict(cost.s3), entities),
                ])  # fmt: skip
    section.notes += [
        "Inline, each write of the entity is billed by its size: the command, the data row, "
        "its code-index entry (the index projects every attribute) and the history item, "
        "1 WCU per KB each; a strongly consistent read of the base is 1 RCU per 4 KB.",
        "In S3, the items keep a pointer (about 120 bytes): a publish makes one PutObject "
        "(a new object per version), sync none (the data row and history item share the "
        "command's object), and every read that returns attributes one GetObject, the "
        "update's read of its base command included (the dirty check and a partial "
        "update's merge need them).",
        "Below the limit (50 KB here) attributes stay inline either way. Above about 200 KB "
        "inline rows are not measured: moto refuses to update them (it counts the old and "
        "the new value together against the item limit), DynamoDB does not; they cost in "
        "proportion, and above the 400 KB item limit attributes can only go to S3.",
    ]
    return section
