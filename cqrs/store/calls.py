"""Calling boto3 for the gateway: errors classified, a failed condition caught as a value."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from .classify import classify, error_code
from .codec import Item, from_wire_item
from .expressions import Condition, Placeholders, projection
from .results import CancellationReason, Cancelled, Conflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import QueryInputPaginateTypeDef, QueryInputTypeDef

    #: A ``Query`` request: one page (``client.query``) or every page (the paginator).
    QueryRequest = TypeVar("QueryRequest", QueryInputTypeDef, QueryInputPaginateTypeDef)


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
            box.value = Conflict(_item(_response(exc).get("Item")))
            return
        raise classify(exc, what) from exc


def read_request(
    request: QueryRequest,
    key_condition: Condition,
    index: str | None,
    filter: Condition | None,
    consistent: bool,
    attributes: Sequence[str] | None,
) -> QueryRequest:
    """``request`` (naming the table) with its key condition, index, filter, projection."""
    p = Placeholders()
    request["KeyConditionExpression"] = key_condition.render(p)
    if index is not None:
        request["IndexName"] = index
    else:
        request["ConsistentRead"] = consistent
    if filter is not None:
        request["FilterExpression"] = filter.render(p)
    if attributes:
        request["ProjectionExpression"] = projection(attributes, p)
    return p.fill(request)


def cancelled(exc: BaseException) -> Cancelled:
    """The reasons of a ``TransactionCanceledException``, one per operation."""
    raw = _response(exc).get("CancellationReasons") or []
    reasons = tuple(
        CancellationReason(
            code=str(r.get("Code") or "None"),
            message=str(r.get("Message") or ""),
            item=_item(r.get("Item")),
        )
        for r in (raw if isinstance(raw, list) else [])
        if isinstance(r, Mapping)
    )
    return Cancelled(reasons)


def _response(exc: BaseException) -> Mapping[str, object]:
    """The parsed error response of a botocore ``ClientError`` (``{}`` for other errors)."""
    response = getattr(exc, "response", None)
    return response if isinstance(response, Mapping) else {}


def _item(wire: object) -> Item | None:
    """An item an error response carries (the current item of a failed condition)."""
    return from_wire_item(wire) if isinstance(wire, Mapping) and wire else None
