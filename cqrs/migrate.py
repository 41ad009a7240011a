"""Create and update tables from their definitions: never deletes, idempotent.

:func:`migrate_tables` compares every :class:`~cqrs.schema.TableDefinition`
with what DynamoDB describes and applies only the difference: a missing table
is created; a missing GSI, a disabled or different stream, or disabled TTL is
fixed. Indexes and tables that are not in the definitions are left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clients import dynamo_errors, error_code
from .errors import OperationalError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from .schema import TableDefinition

Printer = Callable[[str], None]


@dataclass(frozen=True)
class TableChange:
    """One change migrate made (or would make, with ``dry_run``)."""

    table: str
    action: str  # create-table | add-index | set-stream | enable-ttl
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:<12} {self.table}" + (f"  ({self.detail})" if self.detail else "")


def migrate_tables(
    client: DynamoDBClient,
    definitions: Iterable[TableDefinition],
    *,
    dry_run: bool = False,
    echo: Printer | None = None,
) -> list[TableChange]:
    """Bring every table in line with its definition; return what changed."""
    say = echo or (lambda _msg: None)
    changes: list[TableChange] = []
    for definition in definitions:
        table_changes = _plan_and_apply(client, definition, dry_run)
        for change in table_changes:
            say(("would " if dry_run else "") + str(change))
        if not table_changes:
            say(f"{'up to date':<12} {definition.name}")
        changes.extend(table_changes)
    return changes


def _describe(client: DynamoDBClient, name: str) -> Mapping[str, Any] | None:
    try:
        return client.describe_table(TableName=name)["Table"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _plan_and_apply(
    client: DynamoDBClient, definition: TableDefinition, dry_run: bool
) -> list[TableChange]:
    with dynamo_errors(f"migrate {definition.name}"):
        current = _describe(client, definition.name)
        if current is None:
            changes = [TableChange(definition.name, "create-table", _summary(definition))]
            if not dry_run:
                _create(client, definition)
            if definition.ttl_attribute:
                changes.append(TableChange(definition.name, "enable-ttl", definition.ttl_attribute))
                if not dry_run:
                    _enable_ttl(client, definition)
            return changes
        changes = []
        changes += _fix_indexes(client, definition, current, dry_run)
        changes += _fix_stream(client, definition, current, dry_run)
        changes += _fix_ttl(client, definition, dry_run)
        return changes


def _summary(d: TableDefinition) -> str:
    parts = [f"index {i['IndexName']}" for i in d.indexes]
    if d.stream_view_type:
        parts.append(f"stream {d.stream_view_type}")
    return ", ".join(parts)


def _create(client: DynamoDBClient, d: TableDefinition) -> None:
    spec = d.spec
    kwargs: dict[str, Any] = {
        "TableName": d.name,
        "KeySchema": spec["KeySchema"],
        "AttributeDefinitions": spec["AttributeDefinitions"],
        "BillingMode": spec.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if d.indexes:
        kwargs["GlobalSecondaryIndexes"] = d.indexes
    if d.stream_view_type:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": d.stream_view_type,
        }
    client.create_table(**kwargs)
    _wait_active(client, d.name)


def _wait_active(client: DynamoDBClient, name: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = client.describe_table(TableName=name)["Table"]
        busy = table["TableStatus"] != "ACTIVE" or any(
            i.get("IndexStatus", "ACTIVE") != "ACTIVE"
            for i in table.get("GlobalSecondaryIndexes", [])
        )
        if not busy:
            return
        time.sleep(0.5)
    raise OperationalError(f"table {name} did not become ACTIVE within {timeout:.0f}s")


def _fix_indexes(
    client: DynamoDBClient, d: TableDefinition, current: Mapping[str, Any], dry_run: bool
) -> list[TableChange]:
    existing = {i["IndexName"] for i in current.get("GlobalSecondaryIndexes", [])}
    changes = []
    attribute_types = {a["AttributeName"]: a for a in d.spec["AttributeDefinitions"]}
    for index in d.indexes:
        if index["IndexName"] in existing:
            continue
        changes.append(TableChange(d.name, "add-index", index["IndexName"]))
        if dry_run:
            continue
        names = {k["AttributeName"] for k in index["KeySchema"]}
        # DynamoDB takes one GSI creation per UpdateTable call.
        client.update_table(
            TableName=d.name,
            AttributeDefinitions=[attribute_types[n] for n in sorted(names)],
            GlobalSecondaryIndexUpdates=[{"Create": index}],  # type: ignore[typeddict-item]
        )
        _wait_active(client, d.name)
    return changes


def _fix_stream(
    client: DynamoDBClient, d: TableDefinition, current: Mapping[str, Any], dry_run: bool
) -> list[TableChange]:
    wanted = d.stream_view_type
    if not wanted:
        return []  # never disable a stream someone else may consume
    stream = current.get("StreamSpecification") or {}
    have = stream.get("StreamViewType") if stream.get("StreamEnabled") else None
    if have == wanted:
        return []
    change = TableChange(d.name, "set-stream", f"{have or 'none'} -> {wanted}")
    if not dry_run:
        if have:  # the view type cannot change in place: disable, then enable
            client.update_table(TableName=d.name, StreamSpecification={"StreamEnabled": False})
            _wait_active(client, d.name)
        client.update_table(
            TableName=d.name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": wanted},  # type: ignore[typeddict-item]
        )
        _wait_active(client, d.name)
    return [change]


def _fix_ttl(client: DynamoDBClient, d: TableDefinition, dry_run: bool) -> list[TableChange]:
    if not d.ttl_attribute:
        return []
    desc = client.describe_time_to_live(TableName=d.name).get("TimeToLiveDescription", {})
    if desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return []
    if not dry_run:
        _enable_ttl(client, d)
    return [TableChange(d.name, "enable-ttl", d.ttl_attribute)]


def _enable_ttl(client: DynamoDBClient, d: TableDefinition) -> None:
    assert d.ttl_attribute
    client.update_time_to_live(
        TableName=d.name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": d.ttl_attribute},
    )
