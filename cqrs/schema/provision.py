"""Create and update tables from their definitions: never deletes, idempotent.

:func:`migrate_tables` compares every :class:`~cqrs.schema.definitions.TableDefinition`
with what DynamoDB describes and applies only the difference: a missing table
is created; a missing GSI, a disabled or different stream, or disabled TTL is
fixed. Indexes and tables that are not in the definitions are left alone.

Every call goes through :class:`~cqrs.store.tables.TableAdmin`, so a failure is
classified: a denied permission is an :class:`~cqrs.core.errors.AccessDeniedError`
(permanent: fix IAM first), throttling or a busy table a
:class:`~cqrs.core.errors.TransientError` (rerunning ``migrate`` is safe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import CreateTableInputTypeDef, TableDescriptionTypeDef

    from ..store.tables import TableAdmin
    from .definitions import TableDefinition

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
    admin: TableAdmin,
    definitions: Iterable[TableDefinition],
    *,
    dry_run: bool = False,
    echo: Printer | None = None,
) -> list[TableChange]:
    """Bring every table in line with its definition; return what changed.

    ``admin`` is a :class:`~cqrs.store.tables.TableAdmin` (``TableAdmin(client)``).
    Errors are the classified ones it raises (:mod:`cqrs.store.classify`).
    """
    say = echo or (lambda _msg: None)
    changes: list[TableChange] = []
    for definition in definitions:
        table_changes = _plan_and_apply(admin, definition, dry_run)
        for change in table_changes:
            say(("would " if dry_run else "") + str(change))
        if not table_changes:
            say(f"{'up to date':<12} {definition.name}")
        changes.extend(table_changes)
    return changes


def _plan_and_apply(
    admin: TableAdmin, definition: TableDefinition, dry_run: bool
) -> list[TableChange]:
    described = admin.describe(definition.name)
    if described is None:
        return _create_table(admin, definition, dry_run)
    current = cast("TableDescriptionTypeDef", described)  # DescribeTable's ``Table``
    changes: list[TableChange] = []
    changes += _fix_indexes(admin, definition, current, dry_run)
    changes += _fix_stream(admin, definition, current, dry_run)
    changes += _fix_ttl(admin, definition, dry_run)
    return changes


def _create_table(admin: TableAdmin, d: TableDefinition, dry_run: bool) -> list[TableChange]:
    changes = [TableChange(d.name, "create-table", _summary(d))]
    if not dry_run:
        admin.create(_create_spec(d))
    if d.ttl_attribute:
        changes.append(TableChange(d.name, "enable-ttl", d.ttl_attribute))
        if not dry_run:
            admin.enable_ttl(d.name, d.ttl_attribute)
    return changes


def _summary(d: TableDefinition) -> str:
    parts = [f"index {i['IndexName']}" for i in d.indexes]
    if d.stream_view_type:
        parts.append(f"stream {d.stream_view_type}")
    return ", ".join(parts)


def _create_spec(d: TableDefinition) -> CreateTableInputTypeDef:
    """The ``CreateTable`` request of a definition."""
    spec = d.spec
    request: CreateTableInputTypeDef = {
        "TableName": d.name,
        "KeySchema": spec["KeySchema"],
        "AttributeDefinitions": spec["AttributeDefinitions"],
        "BillingMode": spec.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if d.indexes:
        request["GlobalSecondaryIndexes"] = d.indexes
    if d.stream_view_type:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": d.stream_view_type,
        }
    return request


def _fix_indexes(
    admin: TableAdmin, d: TableDefinition, current: TableDescriptionTypeDef, dry_run: bool
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
        admin.update(
            {
                "TableName": d.name,
                "AttributeDefinitions": [attribute_types[n] for n in sorted(names)],
                "GlobalSecondaryIndexUpdates": [{"Create": index}],
            }
        )
    return changes


def _fix_stream(
    admin: TableAdmin, d: TableDefinition, current: TableDescriptionTypeDef, dry_run: bool
) -> list[TableChange]:
    wanted = d.stream_view_type
    if not wanted:
        return []  # never disable a stream someone else may consume
    stream = current.get("StreamSpecification")
    have = stream.get("StreamViewType") if stream and stream.get("StreamEnabled") else None
    if have == wanted:
        return []
    change = TableChange(d.name, "set-stream", f"{have or 'none'} -> {wanted}")
    if not dry_run:
        if have:  # the view type cannot change in place: disable, then enable
            admin.update({"TableName": d.name, "StreamSpecification": {"StreamEnabled": False}})
        admin.update(
            {
                "TableName": d.name,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": wanted},
            }
        )
    return [change]


def _fix_ttl(admin: TableAdmin, d: TableDefinition, dry_run: bool) -> list[TableChange]:
    if not d.ttl_attribute or admin.ttl_enabled(d.name):
        return []
    if not dry_run:
        admin.enable_ttl(d.name, d.ttl_attribute)
    return [TableChange(d.name, "enable-ttl", d.ttl_attribute)]
