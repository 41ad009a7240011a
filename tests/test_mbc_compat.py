"""Tables shared with MBC CQRS Serverless: its commands project like ours, our items look like its.

MBC writes a command with one ``PutItem`` (camelCase attributes, ``createdAt`` as
ISO 8601 with ``Z``, a fresh ``createdAt`` on every version) and later sets
``status`` on it with ``UpdateItem``. Its data row keeps the first version's
``createdAt``/``createdBy``/``createdIp``.
"""

from __future__ import annotations

from typing import Any

import pytest

from cqrs import SYSTEM, Command, CommandInput, CommandPartialInput, Cqrs, InvokeContext
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize

#: Attribute names of MBC's DataModel (data and history items).
MBC_DATA_FIELDS = {
    "pk", "sk", "id", "code", "name", "version", "tenantCode", "type", "seq", "ttl",
    "isDeleted", "attributes", "requestId", "createdAt", "updatedAt", "createdBy",
    "updatedBy", "createdIp", "updatedIp", "cpk", "csk",
}  # fmt: skip
#: Attribute names of MBC's CommandModel.
MBC_COMMAND_FIELDS = (MBC_DATA_FIELDS - {"cpk", "csk"}) | {"source", "status", "taskToken"}

KEY = ("ORDER#acme", "ORDER#x")


def mbc_command(version: int, created_at: str, **overrides: Any) -> dict[str, Any]:
    """A command item as MBC's CommandService.publish writes it."""
    return {
        "pk": "ORDER#acme",
        "sk": f"ORDER#x@{version}",
        "id": "ORDER#acme#ORDER#x",
        "code": "x",
        "name": f"order x v{version}",
        "version": version,
        "tenantCode": "acme",
        "type": "ORDER",
        "attributes": {"amount": 100 * version, "lines": [{"sku": "A", "qty": version}]},
        "source": "POST /api/order",
        "requestId": f"req-{version}",
        "createdAt": created_at,
        "createdBy": f"mbc-user-{version}",
        "createdIp": f"10.0.0.{version}",
        "updatedAt": created_at,
        "updatedBy": f"mbc-user-{version}",
        "updatedIp": f"10.0.0.{version}",
        **overrides,
    }


def mbc_put(app: Cqrs, item: dict[str, Any]) -> None:
    app.clients.dynamodb.put_item(
        TableName=app.entity("order").tables.command,
        Item=serialize(item),
        ConditionExpression="attribute_not_exists(pk) AND attribute_not_exists(sk)",
    )


def mbc_set_status(app: Cqrs, sk: str, status: str) -> None:
    app.clients.dynamodb.update_item(
        TableName=app.entity("order").tables.command,
        Key=serialize({"pk": "ORDER#acme", "sk": sk}),
        UpdateExpression="SET #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":status": {"S": status}},
    )


def data_row(app: Cqrs) -> dict[str, Any]:
    row = app.entity("order").data.get_item(*KEY, consistent=True, context=SYSTEM)
    assert row is not None
    return row


def history(app: Cqrs) -> dict[int, dict[str, Any]]:
    table = app.entity("order").tables.history
    items = [deserialize(i) for i in app.clients.dynamodb.scan(TableName=table)["Items"]]
    return {i["version"]: i for i in items}


V1_AT, V2_AT = "2024-05-01T10:00:00.000Z", "2024-05-02T11:30:00.000Z"


@pytest.mark.engine
def test_an_mbc_command_is_projected_like_ours(cqrs_app, drain):
    mbc_put(cqrs_app, mbc_command(1, V1_AT))
    mbc_set_status(cqrs_app, "ORDER#x@1", "check_version:STARTED")
    drain(cqrs_app)

    command = {k: v for k, v in mbc_command(1, V1_AT).items() if k != "source"}
    assert data_row(cqrs_app) == {
        **command, "sk": "ORDER#x", "cpk": "ORDER#acme", "csk": "ORDER#x@1"
    }  # fmt: skip
    assert history(cqrs_app) == {1: {**data_row(cqrs_app), "sk": "ORDER#x@1"}}
    record = cqrs_app.entity("order").data.get(*KEY, context=SYSTEM)
    assert record.created_at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert record.attributes == {"amount": 100, "lines": [{"sku": "A", "qty": 1}]}


@pytest.mark.engine
@pytest.mark.parametrize("drain_between", [True, False], ids=["one by one", "in one batch"])
def test_a_later_mbc_version_keeps_the_first_creation_fields(cqrs_app, drain, drain_between):
    mbc_put(cqrs_app, mbc_command(1, V1_AT))
    if drain_between:
        drain(cqrs_app)
    mbc_put(cqrs_app, mbc_command(2, V2_AT, status="finish:FINISHED"))
    drain(cqrs_app)

    row = data_row(cqrs_app)
    assert (row["version"], row["csk"], row["name"]) == (2, "ORDER#x@2", "order x v2")
    assert (row["createdAt"], row["createdBy"], row["createdIp"]) == (
        V1_AT, "mbc-user-1", "10.0.0.1"
    )  # fmt: skip
    assert (row["updatedAt"], row["updatedBy"], row["updatedIp"]) == (
        V2_AT, "mbc-user-2", "10.0.0.2"
    )  # fmt: skip
    assert "status" not in row and "source" not in row
    assert sorted(history(cqrs_app)) == [1, 2]
    assert history(cqrs_app)[2]["attributes"] == row["attributes"]


class Recorder:
    def __init__(self) -> None:
        self.commands: list[Command[Any]] = []

    def up(self, command: Command[Any]) -> None:
        self.commands.append(command)

    def down(self, command: Command[Any]) -> None:
        pass


def test_our_next_version_builds_on_an_mbc_command(cqrs_app, drain):
    recorder = Recorder()
    orders = cqrs_app.register("order", handlers=[recorder])
    mbc_put(cqrs_app, mbc_command(1, V1_AT))
    ctx = InvokeContext(tenant_code="acme", user_id="us", source_ip="192.0.2.1")
    orders.commands.publish_partial_update_async(
        CommandPartialInput(pk=KEY[0], sk=KEY[1], version=1, attributes={"amount": 150}), ctx
    )
    drain(cqrs_app)

    assert [(c.version, c.created_by) for c in recorder.commands] == [
        (1, "mbc-user-1"), (2, "mbc-user-1")
    ]  # fmt: skip
    assert recorder.commands[0].created_at.isoformat() == "2024-05-01T10:00:00+00:00"
    row = data_row(cqrs_app)
    assert row["attributes"] == {"amount": 150, "lines": [{"sku": "A", "qty": 1}]}
    assert (row["createdAt"], row["updatedBy"], row["updatedIp"]) == (V1_AT, "us", "192.0.2.1")


def test_our_items_carry_exactly_mbcs_attribute_names(cqrs_app, drain):
    orders = cqrs_app.entity("order")
    ctx = InvokeContext(tenant_code="acme", user_id="u1", source_ip="192.0.2.1", request_id="r1")
    orders.commands.publish_async(
        CommandInput(
            pk=KEY[0], sk=KEY[1], code="x", name="x", tenant_code="acme", type="ORDER",
            is_deleted=False, seq=7, ttl=4102444800, source="test",
            attributes={"nestedSnake": {"keep_me": 1}},
        ),
        ctx,
    )  # fmt: skip
    drain(cqrs_app)
    ddb = cqrs_app.clients.dynamodb
    tables = orders.tables

    (command,) = ddb.scan(TableName=tables.command)["Items"]
    (data,) = ddb.scan(TableName=tables.data)["Items"]
    (hist,) = ddb.scan(TableName=tables.history)["Items"]

    assert set(command) == MBC_COMMAND_FIELDS - {"status", "taskToken"}
    assert set(data) == MBC_DATA_FIELDS
    assert set(hist) == MBC_DATA_FIELDS
    assert deserialize(data)["attributes"] == {"nestedSnake": {"keep_me": 1}}  # user data as is
