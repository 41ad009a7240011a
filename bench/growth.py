"""6. Cost growth: requests and time per command as an entity's history and a table grow.

Each measured command is one ``publish_async`` followed by a drain of the
streams, so times include the local follower's polling. Versions: an entity
with 1, 100 and 1,000 versions gets K more updates (explicit base version).
Table size: K creates and K updates of random entities in tables prefilled with
N entities (a command item and a data row each). Histories and tables are
prefilled straight into the engine's backend, off the stream (see ``prefill_*``).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cqrs import Cqrs

from .engine import (
    REGION,
    OpTimer,
    Requests,
    attributes,
    counting,
    drop_app,
    median,
    new_app,
    publish,
    tenant,
)
from .raw_floor import data_row, wire
from .report import Section, ops

#: Above this ratio of median times within a group, the group is reported as growing.
GROWTH_TOLERANCE = 1.5


@dataclass
class Sample:
    """K commands measured on one setup."""

    label: str
    group: str
    requests: Requests = field(default_factory=Requests)
    seconds: list[float] = field(default_factory=list)
    ms_per_call: dict[str, float] = field(default_factory=dict)
    setup: str = ""

    @property
    def commands(self) -> int:
        """How many commands were measured."""
        return len(self.seconds)


def measure(app: Cqrs, sample: Sample, commands: list[Callable[[], None]]) -> Sample:
    """Run each command then drain the streams; count requests and time each.

    The first command only warms up (first-use costs of a fresh app) and is not measured.
    """
    warmup, *commands = commands
    warmup()
    app.sync()
    with OpTimer(app.clients.dynamodb, app.clients.streams) as timer:
        for command in commands:
            with counting(app) as requests:
                start = time.perf_counter()
                command()
                app.sync()
                sample.seconds.append(time.perf_counter() - start)
            sample.requests += requests
    sample.ms_per_call = timer.ms_per_call()
    return sample


def entity_with_versions(versions: int, k: int) -> Sample:
    """K updates of an entity that already has ``versions`` versions."""
    app = new_app("growth-v")
    try:
        start = time.perf_counter()
        prefill_versions(app, 0, versions)
        setup = f"{2 * versions + 1:,} items prefilled in {time.perf_counter() - start:.1f} s"
        commands = [_update(app, 0, versions + j) for j in range(k + 1)]
        label = f"entity with {versions:,} version(s)"
        return measure(app, Sample(label, "versions", setup=setup), commands)
    finally:
        drop_app(app)


def table_with_items(entities: int, k: int, seed: int = 11) -> Sample:
    """K creates and K updates in tables holding ``entities`` entities."""
    app = new_app("growth-t")
    try:
        start = time.perf_counter()
        targets = random.Random(seed).sample(range(entities), k)
        prefill_entities(app, entities, full=set(targets))
        setup = f"{2 * entities:,} items prefilled in {time.perf_counter() - start:.1f} s"
        commands = [_create(app, entities + j) for j in range(k + 1)]
        commands += [_update(app, i, 1) for i in targets]
        label = f"tables with {entities:,} entities"
        return measure(app, Sample(label, "table size", setup=setup), commands)
    finally:
        drop_app(app)


def _create(app: Cqrs, i: int) -> Callable[[], None]:
    return lambda: publish(app, i, 0)


def _update(app: Cqrs, i: int, base: int) -> Callable[[], None]:
    return lambda: publish(app, i, base, revision=base + 1)


# -- prefill -----------------------------------------------------------------------
#
# Items are written straight into moto's backend (``Table.put_item``), with the
# command table's stream detached meanwhile, so the prefill is neither parsed as
# HTTP-shaped requests nor re-projected by the follower. 100k entities take about a
# minute this way instead of most of an hour through the API.


def prefill_versions(app: Cqrs, i: int, versions: int) -> None:
    """Entity ``i`` at ``versions`` versions: every command and history item, the data row."""
    command, data, history = _moto_tables(app)
    stamp = _now()
    with _stream_detached(command):
        for version in range(1, versions + 1):
            item = _command_item(i, version, stamp)
            command.put_item(wire(item))
            history.put_item(wire({**data_row(item), "sk": item["sk"]}))
        data.put_item(wire(data_row(item)))


def prefill_entities(app: Cqrs, entities: int, full: set[int]) -> None:
    """Version 1 of ``entities`` entities: their command items and data rows.

    Entities in ``full`` get complete items and a history item (they are updated
    later); the others carry keys, version, code, name, tenant and type only, which
    keeps moto's per-attribute size checks from dominating the prefill. The history
    table only ever receives keyed puts, so it is not filled.
    """
    command, data, history = _moto_tables(app)
    stamp = _now()
    with _stream_detached(command):
        for i in range(entities):
            item = _command_item(i, 1, stamp)
            if i not in full:
                item = {k: item[k] for k in _LEAN}
            row = data_row(item)
            command.put_item(wire(item))
            data.put_item(wire(row))
            if i in full:
                history.put_item(wire({**row, "sk": item["sk"]}))


_LEAN = ("pk", "sk", "id", "code", "name", "version", "tenantCode", "type")


def _command_item(i: int, version: int, stamp: str) -> dict[str, Any]:
    pk, code = f"ORDER#{tenant(i)}", f"{i:07d}"
    return {
        "pk": pk, "sk": f"ORDER#{code}@{version}", "id": f"{pk}#ORDER#{code}", "code": code,
        "name": f"Order {code}", "version": version, "tenantCode": tenant(i), "type": "ORDER",
        "attributes": attributes(i, version - 1), "createdAt": stamp, "createdBy": "bench",
        "createdIp": "127.0.0.1", "updatedAt": stamp, "updatedBy": "bench",
        "updatedIp": "127.0.0.1",
    }  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _moto_tables(app: Cqrs) -> tuple[Any, Any, Any]:
    from moto.dynamodb.models import dynamodb_backends

    tables = app.entity("order").tables
    arn = app.clients.dynamodb.describe_table(TableName=tables.command)["Table"]["TableArn"]
    backend = dynamodb_backends[arn.split(":")[4]][REGION]
    get = backend.get_table
    return get(tables.command), get(tables.data), get(tables.history)


@contextmanager
def _stream_detached(table: Any) -> Iterator[None]:
    shard, table.stream_shard = table.stream_shard, None
    try:
        yield
    finally:
        table.stream_shard = shard


# -- report ------------------------------------------------------------------------


def run(k: int, versions: tuple[int, ...], sizes: tuple[int, ...], scaled_note: str) -> Section:
    """Measure every setup; say whether requests and time stay flat."""
    samples = [entity_with_versions(v, k) for v in versions]
    samples += [table_with_items(n, k) for n in sizes]
    section = Section(
        "6. Cost growth (per command: publish_async + drain of the streams)",
        ["Setup", "commands", "DynamoDB req/cmd", "by operation (per command)",
         "follower req/cmd", "ms/cmd (median)", "slowest ops (ms/call)", "setup"],
    )  # fmt: skip
    for s in samples:
        handler = s.requests.handler
        section.rows.append(
            [
                s.label,
                str(s.commands),
                f"{sum(handler.values()) / s.commands:.2f}",
                ops(dict(handler), s.commands),
                f"{sum(s.requests.follower.values()) / s.commands:.2f}",
                f"{1000 * median(s.seconds):.0f}",
                _slowest(s.ms_per_call),
                s.setup,
            ]
        )
    section.notes += [verdict(samples, group) for group in ("versions", "table size")]
    if scaled_note:
        section.notes.append(scaled_note)
    section.notes.append(
        "Each command is drained on its own, i.e. handled in a batch of 1 record: history "
        "costs one BatchWriteItem per command here (section 2 gives every batch size)."
    )
    section.notes.append(
        "Times include the follower's polls (2 per drain), the same for every setup; the "
        "requests themselves are keyed reads and writes, whose cost on DynamoDB does not "
        "depend on table size or history length."
    )
    return section


def _slowest(ms_per_call: dict[str, float], top: int = 3) -> str:
    worst = sorted(ms_per_call.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{op} {ms:.1f}" for op, ms in worst)


def verdict(samples: list[Sample], group: str) -> str:
    """One line: are requests and time flat across the group? If not, which operation grows."""
    members = [s for s in samples if s.group == group]
    per_cmd = [_rates(s) for s in members]
    flat_requests = all(r == per_cmd[0] for r in per_cmd)
    growth = median(members[-1].seconds) / median(members[0].seconds)
    text = f"**{group}**: requests per command {'flat' if flat_requests else 'NOT flat'}"
    if not flat_requests:
        grown = _grown_ops(per_cmd[0], per_cmd[-1])
        text += f" ({grown})"
    if growth <= GROWTH_TOLERANCE:
        return text + f"; median time per command x{growth:.2f} from first to last (flat)."
    first, last = members[0].ms_per_call, members[-1].ms_per_call
    op = max(last, key=lambda o: last[o] - first.get(o, 0.0))
    return (
        text + f"; time per command grows x{growth:.2f} from first to last, mostly in {op} "
        f"({first.get(op, 0.0):.1f} → {last[op]:.1f} ms/call)."
    )


def _rates(s: Sample) -> Counter[str]:
    return Counter({op: round(n / s.commands, 2) for op, n in s.requests.handler.items()})


def _grown_ops(before: Counter[str], after: Counter[str]) -> str:
    grown = [f"{op} {before[op]:.2f} → {after[op]:.2f}" for op in after if after[op] > before[op]]
    return ", ".join(grown) or "fewer requests"
