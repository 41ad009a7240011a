"""How many DynamoDB requests each write costs (request counts are deterministic).

Run with ``pytest -s tests/test_request_counts.py`` to print the table. The
stream follower's own requests (``DescribeTable`` on the DynamoDB client and the
Streams API) are reported separately from the command/data/history requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import cqrs
from cqrs import SYSTEM, CommandInput, CommandPartialInput, InvokeContext
from cqrs.testing import RequestCounter

TENANT = "acme"
PK = f"ORDER#{TENANT}"
CTX = InvokeContext(tenant_code=TENANT, user_id="alice")
FOLLOWER_OPS = {"DescribeTable"}  # the follower's own calls on the DynamoDB client

ROWS: list[tuple[str, str, str]] = []


def order_input(code: str = "1", version: int = 0, **kw: Any) -> CommandInput:
    fields: dict[str, Any] = {
        "pk": PK,
        "sk": f"ORDER#{code}",
        "code": code,
        "name": f"order {code}",
        "tenant_code": TENANT,
        "type": "ORDER",
        "version": version,
    }
    fields.update(kw)
    return CommandInput(**fields)


class Measured:
    """Requests counted while measuring: table operations, follower and Streams calls."""

    def __init__(self, app: cqrs.Cqrs) -> None:
        self.db = RequestCounter(app.clients.dynamodb)
        self.streams = RequestCounter(app.clients.streams)
        self.tables: Counter[tuple[str, str]] = Counter()  # (operation, table kind)

    @property
    def table_ops(self) -> dict[str, int]:
        """DynamoDB requests on entity tables, by operation (follower calls excluded)."""
        return {op: n for op, n in self.db.by_operation.items() if op not in FOLLOWER_OPS}

    @property
    def table_kinds(self) -> dict[tuple[str, str], int]:
        """Like :attr:`table_ops`, keyed by (operation, table kind)."""
        return {k: n for k, n in self.tables.items() if k[0] not in FOLLOWER_OPS}

    @property
    def follower_ops(self) -> dict[str, int]:
        ops = {op: n for op, n in self.db.by_operation.items() if op in FOLLOWER_OPS}
        return ops | dict(self.streams.by_operation)


@contextmanager
def measure(app: cqrs.Cqrs) -> Iterator[Measured]:
    """Count requests by operation (RequestCounter) and attribute each to a table kind."""
    kinds = {}
    for entity in app.schema.entities:
        tables = app.entity(entity).tables
        kinds.update({tables.command: "command", tables.data: "data", tables.history: "history"})

    measured = Measured(app)

    def attribute(params: dict[str, Any], model: Any, **_: Any) -> None:
        names = (
            [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", ()))
        )
        for name in names:
            measured.tables[(model.name, kinds.get(name, name))] += 1

    client = app.clients.dynamodb
    client.meta.events.register("before-parameter-build.dynamodb.*", attribute)
    try:
        with measured.db, measured.streams:
            yield measured
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.*", attribute)


def record(case: str, measured: Measured, per: int = 1) -> None:
    ops = measured.table_ops
    cell = ", ".join(f"{op} {n / per:g}" for op, n in sorted(ops.items()))
    cell += f"  (total {sum(ops.values()) / per:g})"
    follower = ", ".join(f"{op} {n}" for op, n in sorted(measured.follower_ops.items()))
    ROWS.append((case, cell, follower or "-"))


@pytest.fixture(scope="module", autouse=True)
def print_table() -> Iterator[None]:
    yield
    if not ROWS:
        return
    widths = [
        max(len(r[i]) for r in [*ROWS, ("case", "table requests", "follower")]) for i in (0, 1)
    ]
    print("\n\nDynamoDB requests per command")
    print(f"{'case':<{widths[0]}} | {'table requests':<{widths[1]}} | follower / streams")
    print(f"{'-' * widths[0]}-+-{'-' * widths[1]}-+-{'-' * 20}")
    for case, cell, follower in ROWS:
        print(f"{case:<{widths[0]}} | {cell:<{widths[1]}} | {follower}")


# -- publish -----------------------------------------------------------------------


def test_publish_async_create_is_one_put(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    with measure(cqrs_app) as m:
        commands.publish_async(order_input(), CTX)
    record("publish_async create (version 0)", m)
    assert m.table_ops == {"PutItem": 1}
    assert m.table_kinds == {("PutItem", "command"): 1}


def test_publish_async_explicit_version_is_get_and_put(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    with measure(cqrs_app) as m:
        commands.publish_async(order_input(version=1, name="v2"), CTX)
    record("publish_async update (version N)", m)
    assert m.table_ops == {"GetItem": 1, "PutItem": 1}
    assert m.table_kinds == {("GetItem", "command"): 1, ("PutItem", "command"): 1}


def test_publish_async_latest_is_three_requests(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    with measure(cqrs_app) as m:
        commands.publish_async(order_input(version=-1, name="v2"), CTX)
    record("publish_async update (version -1)", m)
    assert m.table_ops == {"GetItem": 1, "BatchGetItem": 1, "PutItem": 1}
    assert m.table_kinds == {
        ("GetItem", "data"): 1,
        ("BatchGetItem", "command"): 1,
        ("PutItem", "command"): 1,
    }


def test_publish_async_latest_caught_up_is_get_and_put(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    """The read model is caught up: the data row is the base; no version window."""
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    drain(cqrs_app)
    with measure(cqrs_app) as m:
        command = commands.publish_async(order_input(version=-1, name="v2"), CTX)
    record("publish_async update (version -1, caught up)", m)
    assert command is not None and command.version == 2
    assert m.table_ops == {"GetItem": 1, "PutItem": 1}
    assert m.table_kinds == {("GetItem", "data"): 1, ("PutItem", "command"): 1}
    with measure(cqrs_app) as m:
        drain(cqrs_app)
    assert m.table_ops == {"BatchWriteItem": 1, "UpdateItem": 1}  # 3 + 1/25 end to end
    row = cqrs_app.entity("order").data.get(PK, "ORDER#1", consistent=True, context=SYSTEM)
    assert row is not None and (row.version, row.name) == (2, "v2")
    assert row.created_at == commands.get(PK, "ORDER#1@1", context=SYSTEM).created_at  # type: ignore[union-attr]


def test_publish_async_latest_behind_falls_back_to_the_window(
    cqrs_app: cqrs.Cqrs, drain: Any
) -> None:
    """The read model lags the log: the guessed version exists, so its PutItem fails
    (billed); one window read finds the latest, and the command goes after it."""
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    drain(cqrs_app)
    commands.publish_async(order_input(version=1, name="v2"), CTX)  # not synced: data at 1
    with measure(cqrs_app) as m:
        command = commands.publish_async(order_input(version=-1, name="v3"), CTX)
    record("publish_async update (version -1, data behind)", m)
    assert command is not None and (command.version, command.name) == (3, "v3")
    assert m.table_kinds == {
        ("GetItem", "data"): 1,
        ("PutItem", "command"): 2,  # @2 refused (exists), then @3
        ("BatchGetItem", "command"): 1,
    }
    assert commands.latest_version(PK, "ORDER#1", context=SYSTEM) == 3


def test_publish_async_latest_behind_compares_with_the_latest(
    cqrs_app: cqrs.Cqrs, drain: Any
) -> None:
    """Dirty or not is decided against the latest command, never a lagging data row."""
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    drain(cqrs_app)
    commands.publish_async(order_input(version=1, name="v2"), CTX)  # not synced: data at 1
    # Equal to the latest, not to the lagging row: nothing written.
    with measure(cqrs_app) as m:
        assert commands.publish_async(order_input(version=-1, name="v2"), CTX) is None
    assert m.table_kinds == {
        ("GetItem", "data"): 1,
        ("PutItem", "command"): 1,  # @2 refused (exists)
        ("BatchGetItem", "command"): 1,
    }
    # Equal to the lagging row, not to the latest: written, after the latest.
    with measure(cqrs_app) as m:
        command = commands.publish_async(order_input(version=-1), CTX)
    assert command is not None and (command.version, command.name) == (3, "order 1")
    assert m.table_ops == {"GetItem": 1, "BatchGetItem": 1, "PutItem": 1}
    assert commands.latest_version(PK, "ORDER#1", context=SYSTEM) == 3


def test_partial_update_latest_is_three_requests(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    with measure(cqrs_app) as m:
        commands.publish_partial_update_async(CommandPartialInput(pk=PK, sk="ORDER#1", seq=1), CTX)
    record("partial update (version -1)", m)
    assert m.table_ops == {"GetItem": 1, "BatchGetItem": 1, "PutItem": 1}


def test_not_dirty_publish_writes_nothing(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input(), CTX)
    with measure(cqrs_app) as m:
        assert commands.publish_async(order_input(version=1), CTX) is None
    record("not dirty (version N)", m)
    assert m.table_ops == {"GetItem": 1}


def test_publish_sync_create_without_handlers(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    with measure(cqrs_app) as m:
        commands.publish_sync(order_input(), CTX)
    record("publish_sync create (no handlers)", m)
    assert m.table_ops == {"PutItem": 1, "BatchWriteItem": 1, "UpdateItem": 1}
    assert m.table_kinds == {
        ("PutItem", "command"): 1,
        ("BatchWriteItem", "history"): 1,
        ("UpdateItem", "data"): 1,
    }


def test_publish_sync_update_without_handlers(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_sync(order_input(), CTX)
    with measure(cqrs_app) as m:
        commands.publish_sync(order_input(version=1, name="v2"), CTX)
    record("publish_sync update (version N)", m)
    assert m.table_ops == {"GetItem": 1, "PutItem": 1, "BatchWriteItem": 1, "UpdateItem": 1}


def test_a_publish_sync_record_costs_sync_nothing(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    # Its command is marked syncMode "SYNC": the synchronizer skips the record (before:
    # a failed conditional UpdateItem and a history BatchWriteItem rewriting the item).
    commands = cqrs_app.entity("order").commands
    commands.publish_sync(order_input(), CTX)
    commands.publish_sync(order_input(version=1, name="v2"), CTX)
    with measure(cqrs_app) as m:
        report = drain(cqrs_app)
    record("sync 2 publish_sync records", m)
    assert report.records == 2
    assert m.table_ops == {}


def test_retention_adds_one_update_of_the_previous_version(cqrs_app: cqrs.Cqrs) -> None:
    from cqrs.write.retention import Retention

    commands = cqrs_app.entity("order").commands
    commands.retention = Retention(30)
    with measure(cqrs_app) as m:
        commands.publish_async(order_input(), CTX)  # version 1: nothing before it
    assert m.table_ops == {"PutItem": 1}
    with measure(cqrs_app) as m:
        commands.publish_async(order_input(version=1, name="v2"), CTX)
    record("publish_async update (version N), retention on", m)
    assert m.table_ops == {"GetItem": 1, "PutItem": 1, "UpdateItem": 1}
    assert m.table_kinds == {
        ("GetItem", "command"): 1,
        ("PutItem", "command"): 1,
        ("UpdateItem", "command"): 1,
    }


# -- synchronizer ------------------------------------------------------------------


def test_one_synced_command(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    cqrs_app.entity("order").commands.publish_async(order_input(), CTX)
    with measure(cqrs_app) as m:
        report = drain(cqrs_app)
    record("sync 1 command via drain", m)
    assert report.records == 1
    assert m.table_ops == {"BatchWriteItem": 1, "UpdateItem": 1}
    assert m.table_kinds == {("BatchWriteItem", "history"): 1, ("UpdateItem", "data"): 1}
    assert m.streams.by_operation["GetRecords"] >= 1
    assert cqrs_app.entity("order").data.get(PK, "ORDER#1", context=SYSTEM) is not None


def test_fifty_creates_synced_in_one_drain(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    n = 50
    commands = cqrs_app.entity("order").commands
    for i in range(n):
        commands.publish_async(order_input(str(i)), CTX)
    with measure(cqrs_app) as m:
        report = drain(cqrs_app)
    record(f"sync {n} creates in one drain (per command)", m, per=n)
    assert report.records == n
    # one conditional UpdateItem per entity, history batched 25 items per request
    assert m.table_ops == {"UpdateItem": n, "BatchWriteItem": 2}
    assert m.table_kinds == {("UpdateItem", "data"): n, ("BatchWriteItem", "history"): 2}
    assert len(cqrs_app.entity("order").data.list_by_pk(PK, context=SYSTEM).items) == n


def test_versions_of_one_entity_synced_together(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    commands = cqrs_app.entity("order").commands
    for v in range(5):
        commands.publish_async(order_input(version=v, name=f"n{v + 1}"), CTX)
    with measure(cqrs_app) as m:
        drain(cqrs_app)
    record("sync 5 versions of one entity", m)
    # all five history items in one batch, the data row moved once to @5
    assert m.table_ops == {"BatchWriteItem": 1, "UpdateItem": 1}
    data = cqrs_app.entity("order").data.get(PK, "ORDER#1", context=SYSTEM)
    assert data is not None and data.version == 5
