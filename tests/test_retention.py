"""Retention of superseded command versions (:mod:`cqrs.write.retention`), on moto.

Moto does not run TTL: an expired version is simulated by deleting it. Sync (with gap
filling) and rebuild keep working once old versions are gone: they are applied by then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cqrs import SYSTEM, CommandInput, CommandPartialInput, Cqrs, InvokeContext, Settings
from cqrs.store.codec import to_wire_item
from cqrs.testing import RequestCounter, stream_records, table_items
from cqrs.write.retention import SECONDS_PER_DAY, Retention

pytestmark = pytest.mark.engine  # also on DynamoDB Local in CI

CTX = InvokeContext(tenant_code="acme", user_id="alice")
NOW = 1_800_000_000.75
KEY = ("ORDER#acme", "ORDER#x")


def order(version: int, name: str, *, tenant: str = "acme", **kw: Any) -> CommandInput:
    return CommandInput(
        pk=f"ORDER#{tenant}", sk="ORDER#x", code="x", name=name, tenant_code=tenant,
        type="ORDER", version=version, **kw,
    )  # fmt: skip


def command_item(app: Cqrs, version: int, tenant: str = "acme") -> dict[str, Any]:
    items = table_items(app, app.entity("order").tables.command, pk=f"ORDER#{tenant}")
    (item,) = [i for i in items if i["sk"] == f"ORDER#x@{version}"]
    return item


def expire(app: Cqrs, *versions: int) -> None:
    """What DynamoDB's TTL does to expired versions: delete them."""
    for v in versions:
        app.clients.store.delete(
            app.entity("order").tables.command, {"pk": KEY[0], "sk": f"{KEY[1]}@{v}"}
        )


def test_no_retention_unless_configured(cqrs_app: Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    assert commands.retention is None
    assert Retention.from_settings(cqrs_app.settings) is None
    commands.publish_async(order(0, "v1"), CTX)
    commands.publish_async(order(1, "v2"), CTX)
    assert "ttl" not in command_item(cqrs_app, 1)


def test_settings_configure_it() -> None:
    settings = Settings(table_prefix="dev-shop-", command_ttl_days=30)
    assert Retention.from_settings(settings) == Retention(30, None)
    both = settings.model_copy(update={"command_ttl_master_data": True})
    assert Retention.from_settings(both) == Retention(30, "dev-shop-master-data")


def test_the_apps_settings_reach_its_command_services(cqrs_app: Cqrs) -> None:
    app = Cqrs(cqrs_app.settings.replace(command_ttl_days=2), clients=cqrs_app.clients)
    commands = app.entity("order").commands
    assert commands.retention == Retention(2, None)
    commands.publish_async(order(0, "v1"), CTX)
    commands.publish_async(order(1, "v2"), CTX)
    assert command_item(app, 1)["ttl"] > 0 and "ttl" not in command_item(app, 2)


def test_the_superseded_version_gets_a_ttl_not_projected(cqrs_app: Cqrs, drain: Any) -> None:
    commands = cqrs_app.entity("order").commands
    commands.retention = Retention(30, clock=lambda: NOW)
    commands.publish_async(order(0, "v1"), CTX)
    assert "ttl" not in command_item(cqrs_app, 1)
    commands.publish_sync(order(1, "v2"), CTX)
    commands.publish_async(order(2, "v3"), CTX)
    expected = int(NOW) + 30 * SECONDS_PER_DAY  # MBC: floor(now) + days * 86400
    for v in (1, 2):
        assert command_item(cqrs_app, v)["ttl"] == expected
        assert command_item(cqrs_app, v)["ttlRetention"] == expected
    assert "ttl" not in command_item(cqrs_app, 3)
    drain(cqrs_app)

    tables = cqrs_app.entity("order").tables
    assert all("ttl" not in i for i in table_items(cqrs_app, tables.history))
    assert all("ttl" not in i for i in table_items(cqrs_app, tables.data))
    assert cqrs_app.rebuild("order").changed is False  # retention's ttl is not state
    latest = commands.get(*KEY, 1, context=SYSTEM)
    assert latest is not None and latest.ttl is None
    copy = commands.duplicate(KEY[0], f"{KEY[1]}@1", CTX)  # the copy is not retained
    assert copy.ttl is None and "ttlRetention" not in command_item(cqrs_app, 4)


def test_a_version_with_a_ttl_of_its_own_keeps_it(cqrs_app: Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.retention = Retention(30, clock=lambda: NOW)
    commands.publish_async(order(0, "v1", ttl=2_000_000_000), CTX)
    commands.publish_async(order(1, "v2"), CTX)
    assert command_item(cqrs_app, 1)["ttl"] == 2_000_000_000
    assert "ttlRetention" not in command_item(cqrs_app, 1)


@pytest.fixture
def master_data(cqrs_app: Cqrs) -> Iterator[str]:
    """MBC's master data table (``<prefix>master-data``), created raw as MBC's stack does."""
    name = cqrs_app.settings.table_prefix + "master-data"
    client = cqrs_app.clients.dynamodb
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    client.delete_table(TableName=name)


def test_mbcs_master_data_row_wins_for_its_tenant(cqrs_app: Cqrs, master_data: str) -> None:
    commands = cqrs_app.entity("order").commands
    commands.retention = Retention(30, master_data, clock=lambda: NOW)
    row = {"pk": "MASTER#acme", "sk": f"TTL#{commands.tables.command}", "attributes": {"days": 7}}
    cqrs_app.clients.dynamodb.put_item(TableName=master_data, Item=to_wire_item(row))
    for tenant in ("acme", "beta"):
        ctx = InvokeContext(tenant_code=tenant, user_id="alice")
        commands.publish_async(order(0, "v1", tenant=tenant), ctx)
        with RequestCounter(cqrs_app.clients.dynamodb) as counter:
            commands.publish_async(order(1, "v2", tenant=tenant), ctx)
        # GetItem base + PutItem + GetItem master data row + UpdateItem of @1
        assert counter.by_operation == {"GetItem": 2, "PutItem": 1, "UpdateItem": 1}
    assert command_item(cqrs_app, 1)["ttl"] == int(NOW) + 7 * SECONDS_PER_DAY
    assert command_item(cqrs_app, 1, "beta")["ttl"] == int(NOW) + 30 * SECONDS_PER_DAY


@pytest.mark.parametrize("days", [0, -3, "soon", None])
def test_a_master_data_row_without_positive_days_is_no_row(
    cqrs_app: Cqrs, master_data: str, days: object
) -> None:
    commands = cqrs_app.entity("order").commands
    commands.retention = Retention(None, master_data, clock=lambda: NOW)
    row = {
        "pk": "MASTER#acme",
        "sk": f"TTL#{commands.tables.command}",
        "attributes": {"days": days},
    }
    cqrs_app.clients.dynamodb.put_item(TableName=master_data, Item=to_wire_item(row))
    commands.publish_async(order(0, "v1"), CTX)
    commands.publish_async(order(1, "v2"), CTX)
    assert "ttl" not in command_item(cqrs_app, 1)


def test_sync_and_rebuild_work_once_old_versions_expired(cqrs_app: Cqrs, drain: Any) -> None:
    entity = cqrs_app.entity("order")
    commands = entity.commands
    for v in range(3):
        commands.publish_async(order(v, f"v{v + 1}"), CTX)
    drain(cqrs_app)
    expire(cqrs_app, 1, 2)

    # the write path finds the latest from the data row on
    commands.publish_async(order(-1, "v4"), CTX)
    commands.publish_partial_update_async(
        CommandPartialInput(pk=KEY[0], sk=KEY[1], version=-1, name="v5"), CTX
    )
    records = stream_records(cqrs_app)
    assert [r["dynamodb"]["NewImage"]["version"]["N"] for r in records[-2:]] == ["4", "5"]
    # @5 alone: the projector fills the gap (@4) from the command table, not older
    report = cqrs_app.synchronizer.handle_event({"Records": [records[-1]]})
    assert (report.applied, report.failed) == (1, [])
    # every record again (a redelivery): nothing fails, nothing moves back
    report = cqrs_app.synchronizer.handle_event({"Records": records})
    assert (report.failed, report.errors) == ([], [])
    drain(cqrs_app)
    data = entity.data.get(*KEY, context=SYSTEM)
    assert data is not None and data.version == 5 and data.name == "v5"
    assert [h.version for h in entity.history.list(*KEY, context=SYSTEM)] == [1, 2, 3, 4, 5]

    report = cqrs_app.rebuild("order")  # the read model the log still implies: unchanged
    assert report.changed is False
    orphans = sorted(sk for table, _, sk in report.orphans if table == entity.tables.history)
    assert orphans == ["ORDER#x@1", "ORDER#x@2"]  # history of expired versions: kept


def test_publishing_on_the_latest_skips_expired_versions(cqrs_app: Cqrs, drain: Any) -> None:
    # The read model stuck at @3 longer than the retention: @1..@3 expired, @4 is not applied.
    commands = cqrs_app.entity("order").commands
    for v in range(3):
        commands.publish_async(order(v, f"v{v + 1}"), CTX)
    drain(cqrs_app)
    commands.publish_async(order(3, "v4"), CTX)
    expire(cqrs_app, 1, 2, 3)

    assert commands.latest_version(*KEY, context=SYSTEM) == 4
    stored = commands.publish_async(order(-1, "v3"), CTX)  # not dirty against the data row
    assert stored is not None and stored.version == 5  # never a new @1
    patched = commands.publish_partial_update_async(
        CommandPartialInput(pk=KEY[0], sk=KEY[1], version=-1, name="v6"), CTX
    )
    assert patched is not None and patched.version == 6
    drain(cqrs_app)
    data = cqrs_app.entity("order").data.get(*KEY, context=SYSTEM)
    assert data is not None and data.version == 6 and data.name == "v6"
