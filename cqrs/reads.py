"""The read side: current state (:class:`DataService`), past versions (:class:`HistoryService`)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Generic

from .batch import paginate
from .clients import dynamo_errors
from .codec import Item, deserialize, serialize
from .commands import latest_command
from .errors import InterfaceError
from .items import CREATION_FIELDS, data_item
from .keys import (
    add_version,
    check_tenant,
    remove_version,
    validate_key,
    validate_part,
    version_of,
)
from .models import AttrT, Command, DataRecord, HistoryRecord, InvokeContext, Page
from .schema import CODE_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from .entity import EntitySpec
    from .schema import EntityTables

_NOT_DELETED = "attribute_not_exists(isDeleted) OR isDeleted = :false"


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """DynamoDB's LastEvaluatedKey → an opaque, URL-safe cursor."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(
    cursor: str, pk: str | None = None, sk_prefix: str | None = None
) -> dict[str, Any]:
    """The inverse of :func:`encode_cursor`; a tampered cursor is an :class:`InterfaceError`.

    The cursor must be a data-table key (``pk`` and ``sk`` strings); given ``pk``
    (and ``sk_prefix``), it must also lie inside that query, so a cursor can't
    be replayed against another partition (another tenant).
    """
    try:
        key: Any = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}") from exc
    valid = (
        isinstance(key, dict)
        and set(key) == {"pk", "sk"}
        and all(
            isinstance(v, dict) and isinstance(v.get("S"), str) and len(v) == 1
            for v in key.values()
        )
    )
    if valid and pk is not None:
        valid = key["pk"]["S"] == pk and key["sk"]["S"].startswith(sk_prefix or "")
    if not valid:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}")
    return dict(key)


class DataService(Generic[AttrT]):
    """Reads the current state of an entity type (``<entity>-data``)."""

    def __init__(self, client: DynamoDBClient, tables: EntityTables, spec: EntitySpec[AttrT]):
        self._client = client
        self.tables = tables
        self._spec = spec

    def get(
        self,
        pk: str,
        sk: str,
        *,
        include_deleted: bool = False,
        consistent: bool = False,
        context: InvokeContext | None = None,
    ) -> DataRecord[AttrT] | None:
        """The current state of one entity, or ``None`` (also when soft-deleted, by default)."""
        validate_key(pk, sk)
        check_tenant(pk, context)
        item = self.get_item(pk, sk, consistent=consistent)
        if item is None or (item.get("isDeleted") and not include_deleted):
            return None
        return self._spec.data_model(item)

    def get_item(
        self,
        pk: str,
        sk: str,
        *,
        consistent: bool = False,
        context: InvokeContext | None = None,
    ) -> Item | None:
        """The raw stored data row (camelCase dict), or ``None``."""
        check_tenant(pk, context)  # public too: it must honour a context like get() does
        with dynamo_errors(f"get {self.tables.data}"):
            resp = self._client.get_item(
                TableName=self.tables.data,
                Key=serialize({"pk": pk, "sk": sk}),
                ConsistentRead=consistent,
            )
        return deserialize(resp["Item"]) if "Item" in resp else None

    def get_fresh(
        self,
        pk: str,
        sk: str,
        *,
        after: Command[Any] | None = None,
        include_deleted: bool = False,
        context: InvokeContext | None = None,
    ) -> DataRecord[AttrT] | None:
        """Read your writes: the data row, or the newest accepted command while sync is behind.

        The command is projected exactly as the synchronizer will project it
        (:func:`~cqrs.items.data_item`, first ``createdAt/By/Ip`` kept), so the
        result equals the data row the caller will see once sync catches up.
        With ``after`` (the command a publish returned) this costs one read;
        without it, one more ``BatchGetItem`` looks for newer commands. Nothing
        is written: no session table on the publish path.
        """
        validate_key(pk, sk)
        check_tenant(pk, context)
        if after is not None and (after.pk, remove_version(after.sk)) != (pk, sk):
            raise InterfaceError(
                f"'after' is a command of {after.pk} / {after.sk}, not {pk} / {sk}"
            )
        row = self.get_item(pk, sk, consistent=True)
        version = int(row["version"]) if row else 0
        if after is not None:
            newer = None if version >= after.version else after.model_dump(by_alias=True)
        else:
            newer = latest_command(self._client, self.tables.command, pk, sk, version + 1)
        if newer is not None:
            projected = data_item(newer)
            for name in CREATION_FIELDS:  # as the projector's if_not_exists does
                if row and row.get(name) is not None:
                    projected[name] = row[name]
            row = projected
        if row is None or (row.get("isDeleted") and not include_deleted):
            return None
        return self._spec.data_model(row)

    def list_by_pk(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        descending: bool = False,
        include_deleted: bool = False,
        context: InvokeContext | None = None,
    ) -> Page[AttrT]:
        """One page of the entities under ``pk``, ordered by sk; pass ``cursor`` back for more."""
        if not pk or "#" not in pk:
            raise InterfaceError(f"pk {pk!r} must look like '<TYPE>#<tenantCode>'")
        check_tenant(pk, context)
        if limit is not None and limit < 1:
            raise InterfaceError(f"limit must be >= 1, got {limit}")
        values: dict[str, Any] = {":pk": pk}
        condition = "pk = :pk"
        if sk_prefix:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = sk_prefix
        kwargs: dict[str, Any] = {
            "TableName": self.tables.data,
            "KeyConditionExpression": condition,
            "ScanIndexForward": not descending,
        }
        if not include_deleted:
            kwargs["FilterExpression"] = _NOT_DELETED
            values[":false"] = False
        kwargs["ExpressionAttributeValues"] = serialize(values)
        start = decode_cursor(cursor, pk, sk_prefix) if cursor is not None else None
        items, last = self._query(kwargs, limit, start)
        return Page[Any](
            items=[self._spec.data_model(i) for i in items], cursor=encode_cursor(last)
        )

    def find_by_code(
        self,
        tenant_code: str,
        code: str,
        *,
        include_deleted: bool = False,
        context: InvokeContext | None = None,
    ) -> DataRecord[AttrT] | None:
        """The entity with ``code`` in ``tenant_code``, via the ``code-index`` GSI."""
        validate_part("tenant code", tenant_code)
        validate_part("code", code)
        check_tenant(tenant_code, context, is_pk=False)
        kwargs: dict[str, Any] = {
            "TableName": self.tables.data,
            "IndexName": CODE_INDEX,
            "KeyConditionExpression": "tenantCode = :t AND code = :c",
        }
        values: dict[str, Any] = {":t": tenant_code, ":c": code}
        if not include_deleted:
            kwargs["FilterExpression"] = _NOT_DELETED
            values[":false"] = False
        kwargs["ExpressionAttributeValues"] = serialize(values)
        items, _ = self._query(kwargs, 1, None)
        return self._spec.data_model(items[0]) if items else None

    def _query(
        self, kwargs: dict[str, Any], limit: int | None, start: dict[str, Any] | None
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """Query until ``limit`` items pass the filter (or the end); return them, the last key."""
        items: list[Item] = []
        while True:
            page_kwargs = dict(kwargs)
            if start:
                page_kwargs["ExclusiveStartKey"] = start
            if limit is not None:
                page_kwargs["Limit"] = limit - len(items)
            with dynamo_errors(f"query {kwargs['TableName']}"):
                resp = self._client.query(**page_kwargs)
            items.extend(deserialize(i) for i in resp.get("Items", []))
            start = resp.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return items, start


class HistoryService(Generic[AttrT]):
    """Reads past versions of an entity type (``<entity>-history``)."""

    def __init__(self, client: DynamoDBClient, tables: EntityTables, spec: EntitySpec[AttrT]):
        self._client = client
        self.tables = tables
        self._spec = spec

    def get(
        self, pk: str, sk: str, version: int, *, context: InvokeContext | None = None
    ) -> HistoryRecord[AttrT] | None:
        """The state right after ``version``, or ``None``."""
        validate_key(pk, remove_version(sk))
        check_tenant(pk, context)
        with dynamo_errors(f"get {self.tables.history}"):
            resp = self._client.get_item(
                TableName=self.tables.history,
                Key=serialize({"pk": pk, "sk": add_version(sk, version)}),
            )
        return self._spec.history_model(deserialize(resp["Item"])) if "Item" in resp else None

    def list(
        self, pk: str, sk: str, *, context: InvokeContext | None = None
    ) -> list[HistoryRecord[AttrT]]:
        """Every stored version of one entity, oldest first."""
        base = remove_version(sk)
        validate_key(pk, base)
        check_tenant(pk, context)
        request = {
            "TableName": self.tables.history,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": serialize({":pk": pk, ":prefix": base + "@"}),
        }
        items = list(paginate(self._client, "query", request))
        # Sort keys order versions as text ("@10" < "@9"): sort by number.
        own = [i for i in items if remove_version(i["sk"]) == base]
        own.sort(key=lambda i: version_of(i["sk"]) or 0)
        return [self._spec.history_model(i) for i in own]
