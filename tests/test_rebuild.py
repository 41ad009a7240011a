"""rebuild: the read model is recomputed from the command log, exactly."""

from __future__ import annotations

import pytest

from cqrs import CommandInput, CommandPartialInput, InvokeContext
from cqrs.cli import main
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize

pytestmark = pytest.mark.engine

CTX = {t: InvokeContext(tenant_code=t, user_id=f"user-{t}") for t in ("acme", "globex")}


def order(tenant: str, code: str, version: int = 0, **attributes: object) -> CommandInput:
    return CommandInput(
        pk=f"ORDER#{tenant}", sk=f"ORDER#{code}", code=code, name=f"order {code}",
        tenant_code=tenant, type="ORDER", version=version, attributes=attributes,
    )  # fmt: skip


def snapshot(app, table: str) -> dict:
    items = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): deserialize(i) for i in items}


@pytest.fixture
def shop(cqrs_app, drain):
    """Two tenants, three orders, several versions each, synchronized."""
    orders = cqrs_app.entity("order")
    for tenant, code in [("acme", "1"), ("acme", "2"), ("globex", "1")]:
        orders.commands.publish_async(order(tenant, code, qty=1), CTX[tenant])
        for qty in (2, 3):
            orders.commands.publish_partial_update_async(
                CommandPartialInput(pk=f"ORDER#{tenant}", sk=f"ORDER#{code}",
                                    attributes={"qty": qty}), CTX[tenant])  # fmt: skip
    drain(cqrs_app)
    return cqrs_app


def test_rebuild_of_a_healthy_read_model_changes_nothing(shop):
    tables = shop.entity("order").tables
    before = snapshot(shop, tables.data), snapshot(shop, tables.history)
    report = shop.rebuild("order")
    assert (report.entities, report.commands) == (3, 9)
    assert not report.changed and report.orphans == []
    assert (snapshot(shop, tables.data), snapshot(shop, tables.history)) == before


def test_rebuild_restores_deleted_and_altered_rows_exactly(shop):
    tables = shop.entity("order").tables
    healthy_data, healthy_history = snapshot(shop, tables.data), snapshot(shop, tables.history)
    ddb = shop.clients.dynamodb
    ddb.delete_item(TableName=tables.data, Key=serialize({"pk": "ORDER#acme", "sk": "ORDER#1"}))
    ddb.delete_item(
        TableName=tables.history, Key=serialize({"pk": "ORDER#globex", "sk": "ORDER#1@2"})
    )
    ddb.update_item(
        TableName=tables.data,
        Key=serialize({"pk": "ORDER#acme", "sk": "ORDER#2"}),
        UpdateExpression="SET #n = :n, attributes.qty = :q REMOVE createdBy",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues=serialize({":n": "tampered", ":q": 99}),
    )

    report = shop.rebuild("order")

    assert (report.data_written, report.history_written) == (2, 1)
    assert snapshot(shop, tables.data) == healthy_data
    assert snapshot(shop, tables.history) == healthy_history
    assert not shop.rebuild("order").changed  # and now it is healthy


def test_dry_run_reports_without_writing(shop):
    tables = shop.entity("order").tables
    key = serialize({"pk": "ORDER#acme", "sk": "ORDER#1"})
    shop.clients.dynamodb.delete_item(TableName=tables.data, Key=key)
    report = shop.rebuild("order", dry_run=True)
    assert report.data_written == 1
    assert "Item" not in shop.clients.dynamodb.get_item(TableName=tables.data, Key=key)


def test_orphans_are_reported_and_pruned_only_when_asked(shop):
    tables = shop.entity("order").tables
    orphan = {"pk": "ORDER#acme", "sk": "ORDER#ghost", "version": 1}
    shop.clients.dynamodb.put_item(TableName=tables.data, Item=serialize(orphan))
    report = shop.rebuild("order")
    assert report.orphans == [(tables.data, "ORDER#acme", "ORDER#ghost")]
    assert ("ORDER#acme", "ORDER#ghost") in snapshot(shop, tables.data)
    assert shop.rebuild("order", prune=True).pruned == 1
    assert ("ORDER#acme", "ORDER#ghost") not in snapshot(shop, tables.data)


def test_rebuild_never_moves_a_newer_data_row_backwards(shop):
    """A row ahead of the scanned log (the synchronizer raced the rebuild) is left alone."""
    tables = shop.entity("order").tables
    key = {"pk": "ORDER#acme", "sk": "ORDER#1"}
    shop.clients.dynamodb.update_item(
        TableName=tables.data, Key=serialize(key), UpdateExpression="SET version = :v",
        ExpressionAttributeValues=serialize({":v": 7}),
    )  # fmt: skip
    report = shop.rebuild("order")
    assert report.skipped_newer == 1
    assert snapshot(shop, tables.data)[("ORDER#acme", "ORDER#1")]["version"] == 7


def test_cli_rebuild_prints_a_summary(shop, capsys):
    s = shop.settings
    args = ["rebuild", "order", "--tables-dir", str(s.tables_dir), "--prefix", s.table_prefix]
    if s.endpoint_url:
        args += ["--endpoint-url", s.endpoint_url]
    shop.clients.dynamodb.delete_item(
        TableName=shop.entity("order").tables.data,
        Key=serialize({"pk": "ORDER#globex", "sk": "ORDER#1"}),
    )
    assert main(args) == 0
    out = capsys.readouterr()
    assert "rebuild order: 9 command(s), 3 entit(ies); wrote 1 data row(s)" in out.out
    assert "data: 1/1" in out.err
