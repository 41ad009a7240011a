"""The storage gateway: the only code in ``cqrs`` that calls DynamoDB's item API.

Everything above it speaks plain items (``dict`` with camelCase names) and
:mod:`~cqrs.store.expressions` parts; here they become requests. What the
gateway guarantees:

- values are checked before any request (:mod:`~cqrs.store.codec`), and an item
  over 400 KB is refused with :class:`~cqrs.core.errors.ItemTooLargeError`;
- a failed condition is a value, not an exception: :class:`Conflict` carries the
  item as it was (when DynamoDB returns it), a cancelled transaction
  :class:`Cancelled` with its reasons by name;
- every other failure is classified by AWS error code
  (:func:`~cqrs.store.classify.classify`): transient or permanent, cause kept;
- batches retry unprocessed items with backoff; pages follow
  ``LastEvaluatedKey`` one page in memory at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from ..core.errors import ItemTooLargeError, TransactionConflictError, TransientError
from .calls import calling, cancelled, read_request
from .classify import classify, error_code
from .codec import MAX_ITEM_BYTES, Item, WireItem, from_wire_item, item_size, to_wire_item
from .expressions import Condition, Placeholders, Update, projection
from .objects import AttributeObjects
from .results import Cancelled, Conflict, Key, Page, TxUpdate, Written

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        DeleteItemInputTypeDef,
        GetItemInputTypeDef,
        KeysAndAttributesTypeDef,
        KeysAndAttributesUnionTypeDef,
        PutItemInputTypeDef,
        QueryInputPaginateTypeDef,
        QueryInputTypeDef,
        QueryOutputTypeDef,
        ScanInputPaginateTypeDef,
        ScanOutputTypeDef,
        TransactWriteItemTypeDef,
        UpdateItemInputTypeDef,
        UpdateTypeDef,
        WriteRequestUnionTypeDef,
    )

    #: An ``UpdateItem``, alone or inside a transaction.
    UpdateRequest = TypeVar("UpdateRequest", UpdateItemInputTypeDef, UpdateTypeDef)

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
_BATCH_ATTEMPTS = 8
_CONFLICT_ATTEMPTS = 5


class Store:
    """DynamoDB's item API for plain items. One per app; safe to share across threads.

    ``objects``: where large ``attributes`` are kept (:mod:`~cqrs.store.objects`); by
    default nothing is offloaded and a pointer met is a configuration error.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        objects: AttributeObjects | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.objects = objects if objects is not None else AttributeObjects()
        self._sleep = sleep

    # -- single items --------------------------------------------------------------------

    def get(
        self,
        table: str,
        key: Key,
        *,
        consistent: bool = False,
        attributes: Sequence[str] | None = None,
    ) -> Item | None:
        """One item, or ``None``; ``attributes`` limits what is read."""
        request: GetItemInputTypeDef = {
            "TableName": table,
            "Key": to_wire_item(key, "key"),
            "ConsistentRead": consistent,
        }
        if attributes:
            p = Placeholders()
            request["ProjectionExpression"] = projection(attributes, p)
            request["ExpressionAttributeNames"] = dict(p.names)
        with calling(f"get {table}"):
            response = self.client.get_item(**request)
        item = response.get("Item")
        return from_wire_item(item) if item is not None else None

    def put(
        self, table: str, item: Mapping[str, object], *, condition: Condition | None = None
    ) -> Conflict | None:
        """Write ``item`` (if ``condition`` holds); a :class:`Conflict` when it does not."""
        return self.put_wire(table, self.wire(table, item), condition=condition)

    def put_wire(
        self, table: str, wire: WireItem, *, condition: Condition | None = None
    ) -> Conflict | None:
        """:meth:`put` of an item already in wire form, checked by the caller (:meth:`wire`)."""
        request: PutItemInputTypeDef = {"TableName": table, "Item": wire}
        if condition is not None:
            p = Placeholders()
            request["ConditionExpression"] = condition.render(p)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            p.fill(request)
        with calling(f"put {table}", conflicts=True) as conflict:
            self.client.put_item(**request)
        return conflict.value

    def update(
        self,
        table: str,
        key: Key,
        update: Update,
        *,
        condition: Condition | None = None,
        returns: Literal["NONE", "ALL_NEW", "UPDATED_NEW"] = "NONE",
    ) -> Written | Conflict:
        """Apply ``update`` to one item (if ``condition`` holds)."""
        start: UpdateItemInputTypeDef = {"TableName": table, "Key": to_wire_item(key, "key")}
        request = _update_request(start, update, condition)
        request["ReturnValues"] = returns
        with calling(f"update {table}", conflicts=True) as conflict:
            response = self.client.update_item(**request)
        if conflict.value is not None:
            return conflict.value
        return Written(from_wire_item(response.get("Attributes") or {}))

    def delete(
        self, table: str, key: Key, *, condition: Condition | None = None
    ) -> Conflict | None:
        """Delete one item (if ``condition`` holds)."""
        request: DeleteItemInputTypeDef = {"TableName": table, "Key": to_wire_item(key, "key")}
        if condition is not None:
            p = Placeholders()
            request["ConditionExpression"] = condition.render(p)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            p.fill(request)
        with calling(f"delete {table}", conflicts=True) as conflict:
            self.client.delete_item(**request)
        return conflict.value

    def wire(self, table: str, item: Mapping[str, object]) -> WireItem:
        """``item`` in wire form, refused if DynamoDB would refuse it (values, 400 KB)."""
        return self.sized(table, to_wire_item(item, f"{table} item"))

    @staticmethod
    def sized(table: str, wire: WireItem) -> WireItem:
        """``wire`` if it fits DynamoDB's item limit, else
        :class:`~cqrs.core.errors.ItemTooLargeError` (values are not checked here)."""
        size = item_size(wire)
        if size > MAX_ITEM_BYTES:
            pk, sk = (wire.get(k, {}).get("S") for k in ("pk", "sk"))
            raise ItemTooLargeError(
                f"{table}: item {pk!r} / {sk!r} is about {size} bytes; "
                f"DynamoDB's item limit is {MAX_ITEM_BYTES}: keep large payloads in S3 and "
                "store a reference"
            )
        return wire

    # -- reading many ----------------------------------------------------------------------

    def query(
        self,
        table: str,
        key_condition: Condition,
        *,
        index: str | None = None,
        filter: Condition | None = None,
        descending: bool = False,
        consistent: bool = False,
        attributes: Sequence[str] | None = None,
        on_page: Callable[[int], None] | None = None,
    ) -> Iterator[Item]:
        """Every item of a ``Query``, page by page (one page in memory)."""
        start: QueryInputPaginateTypeDef = {"TableName": table}
        request = read_request(start, key_condition, index, filter, consistent, attributes)
        request["ScanIndexForward"] = not descending
        return self._paginate(
            f"query {table}",
            lambda: self.client.get_paginator("query").paginate(**request),
            on_page,
        )

    def query_page(
        self,
        table: str,
        key_condition: Condition,
        *,
        limit: int | None,
        start: WireItem | None = None,
        index: str | None = None,
        filter: Condition | None = None,
        descending: bool = False,
        consistent: bool = False,
    ) -> Page:
        """Up to ``limit`` items that pass ``filter``, from ``start``; with the key to go on."""
        first: QueryInputTypeDef = {"TableName": table}
        request = read_request(first, key_condition, index, filter, consistent, None)
        request["ScanIndexForward"] = not descending
        items: list[Item] = []
        while True:
            page: QueryInputTypeDef = {**request}
            if start:
                page["ExclusiveStartKey"] = start
            if limit is not None:
                page["Limit"] = limit - len(items)
            with calling(f"query {table}"):
                response = self.client.query(**page)
            items.extend(from_wire_item(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return Page(items, start or None)

    def scan(
        self,
        table: str,
        *,
        consistent: bool = False,
        filter: Condition | None = None,
        page_size: int | None = None,
        on_page: Callable[[int], None] | None = None,
    ) -> Iterator[Item]:
        """Every item of a table, page by page (``on_page``: running count after each;
        ``page_size``: items read per request, else DynamoDB's 1 MB pages)."""
        request: ScanInputPaginateTypeDef = {"TableName": table, "ConsistentRead": consistent}
        if page_size is not None:
            request["PaginationConfig"] = {"PageSize": page_size}
        if filter is not None:
            p = Placeholders()
            request["FilterExpression"] = filter.render(p)
            p.fill(request)
        return self._paginate(
            f"scan {table}", lambda: self.client.get_paginator("scan").paginate(**request), on_page
        )

    def _paginate(
        self,
        what: str,
        pages: Callable[[], Iterable[QueryOutputTypeDef | ScanOutputTypeDef]],
        on_page: Callable[[int], None] | None,
    ) -> Iterator[Item]:
        seen = 0
        with calling(what):
            for response in pages():
                for wire in response.get("Items", []):
                    seen += 1
                    yield from_wire_item(wire)
                if on_page is not None:
                    on_page(seen)

    def batch_get(
        self,
        table: str,
        keys: Sequence[Key],
        *,
        consistent: bool = True,
        attributes: Sequence[str] | None = None,
    ) -> list[Item]:
        """Items by key (100 per request, unprocessed keys retried); missing keys are absent."""
        out: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: KeysAndAttributesTypeDef = {
                "Keys": [to_wire_item(k, "key") for k in keys[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": consistent,
            }
            if attributes:
                p = Placeholders()
                request["ProjectionExpression"] = projection(attributes, p)
                request["ExpressionAttributeNames"] = dict(p.names)
            pending: Mapping[str, KeysAndAttributesUnionTypeDef] = {table: request}
            for attempt in range(_BATCH_ATTEMPTS):
                with calling(f"batch get {table}"):
                    response = self.client.batch_get_item(RequestItems=pending)
                out.extend(from_wire_item(i) for i in response.get("Responses", {}).get(table, []))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                self._backoff(attempt)
            else:
                raise TransientError(f"batch get {table}: keys still unprocessed after retries")
        return out

    # -- writing many ------------------------------------------------------------------------

    def batch_write(
        self,
        table: str,
        *,
        puts: Sequence[Mapping[str, object]] = (),
        deletes: Sequence[Key] = (),
        on_chunk: Callable[[int], None] | None = None,
        wire_puts: Sequence[WireItem] = (),
    ) -> int:
        """Put and delete items (25 per request, unprocessed ones retried with backoff).

        Every item is checked before the first request, so a refused item fails the
        call before anything is written. ``wire_puts``: items already in wire form whose
        values are known to be valid (such as :func:`~cqrs.store.codec.written_form` of a
        stream image); only their size is checked. Returns the number of requests made.
        """
        requests: list[WriteRequestUnionTypeDef] = [
            {"PutRequest": {"Item": self.wire(table, i)}} for i in puts
        ]
        requests += [{"PutRequest": {"Item": self.sized(table, w)}} for w in wire_puts]
        requests += [{"DeleteRequest": {"Key": to_wire_item(k, "key")}} for k in deletes]
        made = 0
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = requests[start : start + BATCH_WRITE_LIMIT]
            for attempt in range(_BATCH_ATTEMPTS):
                with calling(f"batch write {table}"):
                    response = self.client.batch_write_item(RequestItems={table: pending})
                made += 1
                pending = list((response.get("UnprocessedItems") or {}).get(table, []))
                if not pending:
                    break
                self._backoff(attempt)
            else:
                raise TransientError(f"batch write {table}: items still unprocessed after retries")
            if on_chunk is not None:
                on_chunk(min(start + BATCH_WRITE_LIMIT, len(requests)))
        return made

    def transact_write(self, operations: Sequence[TxUpdate]) -> Cancelled | None:
        """All ``operations`` or none. A failed condition returns :class:`Cancelled`; a lost
        race (``TransactionConflict``, which botocore does not retry) is retried a few times
        with backoff, then raised as :class:`~cqrs.core.errors.TransactionConflictError`."""
        items = [_transact_item(op) for op in operations]
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=items)
                return None
            except Exception as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise classify(exc, "transact write") from exc
                refused = cancelled(exc)
                if any(r.condition_failed for r in refused.reasons):
                    return refused
                codes = [r.code for r in refused.reasons]
                if "TransactionConflict" not in codes or attempt == _CONFLICT_ATTEMPTS - 1:
                    raise TransactionConflictError(
                        f"transact write cancelled: {codes}", cause=exc
                    ) from exc
                self._backoff(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- helpers ------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(0.05 * 2**attempt, 1.0))


# -- module helpers ---------------------------------------------------------------------------


def _update_request(
    request: UpdateRequest, update: Update, condition: Condition | None
) -> UpdateRequest:
    """``request`` (table and key) with the update and condition expressions."""
    p = Placeholders()
    request["UpdateExpression"] = update.render(p)
    if condition is not None:
        request["ConditionExpression"] = condition.render(p)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return p.fill(request)


def _transact_item(op: TxUpdate) -> TransactWriteItemTypeDef:
    start: UpdateTypeDef = {
        "TableName": op.table,
        "Key": to_wire_item(op.key, "key"),
        "UpdateExpression": "",
    }
    return {"Update": _update_request(start, op.update, op.condition)}
