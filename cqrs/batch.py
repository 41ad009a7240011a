"""Batched and paginated reads and writes: DynamoDB's limits, unprocessed items, pages."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .clients import dynamo_errors
from .codec import Item, deserialize, serialize
from .errors import OperationalError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
_ATTEMPTS = 8


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 1.0))


def batch_put(
    client: DynamoDBClient,
    table: str,
    items: Sequence[Item],
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Put ``items`` with ``BatchWriteItem`` (25 per request); returns the request count."""
    requests = [{"PutRequest": {"Item": serialize(i)}} for i in items]
    return _batch_write(client, table, requests, on_chunk)


def batch_delete(client: DynamoDBClient, table: str, keys: Sequence[Item]) -> int:
    """Delete ``keys`` with ``BatchWriteItem`` (25 per request); returns the request count."""
    return _batch_write(client, table, [{"DeleteRequest": {"Key": serialize(k)}} for k in keys])


def _batch_write(
    client: DynamoDBClient,
    table: str,
    requests: Sequence[Any],
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    requests_made = 0
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending = list(requests[start : start + BATCH_WRITE_LIMIT])
        for attempt in range(_ATTEMPTS):
            with dynamo_errors(f"batch write {table}"):
                resp = client.batch_write_item(RequestItems={table: pending})
            requests_made += 1
            pending = list((resp.get("UnprocessedItems") or {}).get(table, []))
            if not pending:
                break
            _backoff(attempt)
        else:
            raise OperationalError(f"batch write {table}: items still unprocessed after retries")
        if on_chunk:
            on_chunk(min(start + BATCH_WRITE_LIMIT, len(requests)))
    return requests_made


def batch_get(
    client: DynamoDBClient,
    table: str,
    keys: Sequence[Item],
    *,
    projection: str | None = None,
    names: dict[str, str] | None = None,
    consistent: bool = True,
) -> list[Item]:
    """Get ``keys`` with ``BatchGetItem`` (100 per request); missing keys are simply absent."""
    out: list[Item] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": [serialize(k) for k in keys[start : start + BATCH_GET_LIMIT]],
            "ConsistentRead": consistent,
        }
        if projection:
            request["ProjectionExpression"] = projection
        if names:
            request["ExpressionAttributeNames"] = names
        pending: Any = {table: request}
        for attempt in range(_ATTEMPTS):
            with dynamo_errors(f"batch get {table}"):
                resp = client.batch_get_item(RequestItems=pending)
            out.extend(deserialize(i) for i in resp.get("Responses", {}).get(table, []))
            pending = resp.get("UnprocessedKeys") or None
            if not pending:
                break
            _backoff(attempt)
        else:
            raise OperationalError(f"batch get {table}: keys still unprocessed after retries")
    return out


def paginate(
    client: DynamoDBClient,
    operation: Literal["query", "scan"],
    request: Mapping[str, Any],
    on_page: Callable[[int], None] | None = None,
) -> Iterator[Item]:
    """Every item a ``Query`` or ``Scan`` returns, following ``LastEvaluatedKey`` page by
    page (one page in memory); ``on_page`` is told the running item count after each."""
    call: Callable[..., Any] = client.query if operation == "query" else client.scan
    kwargs = dict(request)
    seen = 0
    while True:
        with dynamo_errors(f"{operation} {kwargs['TableName']}"):
            resp = call(**kwargs)
        for wire in resp.get("Items", []):
            seen += 1
            yield deserialize(wire)
        if on_page:
            on_page(seen)
        if not resp.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
