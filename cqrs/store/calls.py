"""Calling boto3 for the gateway: errors classified, a failed condition caught as a value."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .classify import classify, error_code
from .codec import from_wire_item
from .expressions import Condition, Placeholders, projection
from .results import CancellationReason, Cancelled, Conflict


class ConflictBox:
    value: Conflict | None = None


@contextmanager
def calling(what: str, *, conflicts: bool = False) -> Iterator[ConflictBox]:
    """Classify botocore errors raised inside; with ``conflicts``, a failed condition is
    stored in the box instead of raised."""
    box = ConflictBox()
    try:
        yield box
    except Exception as exc:
        if conflicts and error_code(exc) == "ConditionalCheckFailedException":
            old = getattr(exc, "response", {}).get("Item")
            box.value = Conflict(from_wire_item(old) if old else None)
            return
        raise classify(exc, what) from exc


def read_request(
    table: str,
    key_condition: Condition,
    index: str | None,
    filter: Condition | None,
    consistent: bool,
    attributes: Sequence[str] | None,
) -> dict[str, Any]:
    p = Placeholders()
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": key_condition.render(p),
    }
    if index is not None:
        request["IndexName"] = index
    else:
        request["ConsistentRead"] = consistent
    if filter is not None:
        request["FilterExpression"] = filter.render(p)
    if attributes:
        request["ProjectionExpression"] = projection(attributes, p)
    request.update(p.request_parts())
    return request


def cancelled(exc: BaseException) -> Cancelled:
    raw = getattr(exc, "response", {}).get("CancellationReasons") or []
    reasons = tuple(
        CancellationReason(
            code=str(r.get("Code") or "None"),
            message=str(r.get("Message") or ""),
            item=from_wire_item(r["Item"]) if r.get("Item") else None,
        )
        for r in raw
    )
    return Cancelled(reasons)
