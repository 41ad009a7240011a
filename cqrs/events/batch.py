"""Partial batch responses: a Lambda batch processed item by item, its failures reported.

In the spirit of AWS Lambda Powertools' ``BatchProcessor``: :func:`process_batch` hands
each item to a handler on its own and keeps its outcome as a typed result
(:class:`Succeeded`, :class:`Failed` or :class:`Skipped`); the response Lambda expects
with ``ReportBatchItemFailures`` is built in one place, :func:`partial_batch_response`::

    result = process_batch(event.records, handle, item_id=lambda m: m.message_id)
    return result.response()   # {"batchItemFailures": [{"itemIdentifier": "m1"}]}

In an *ordered* batch (a DynamoDB stream shard, a FIFO queue) the first failure stops
the batch: the items after it are not handled and are reported with it
(:class:`Skipped`), so Lambda delivers them again after the failed one. An item without
an id (an SNS notification, an EventBridge event) cannot be reported: its handler's
exception propagates, so Lambda retries the whole invocation.

Code that decides failures another way (the synchronizer reports the first record of a
failed entity) builds the response from the ids with :func:`partial_batch_response`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypedDict, TypeVar

__all__ = [
    "BatchItemFailure",
    "BatchResult",
    "Failed",
    "ItemResult",
    "PartialBatchResponse",
    "Skipped",
    "Succeeded",
    "partial_batch_response",
    "process_batch",
]

ItemT = TypeVar("ItemT")
ValueT = TypeVar("ValueT")


class BatchItemFailure(TypedDict):
    """One reported item of a partial batch response."""

    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    """Lambda's partial batch response (``ReportBatchItemFailures``)."""

    batchItemFailures: list[BatchItemFailure]


def partial_batch_response(failed_ids: Iterable[str]) -> PartialBatchResponse:
    """The partial batch response reporting ``failed_ids`` (SQS message ids, stream
    sequence numbers); no ids: the whole batch succeeded."""
    return {"batchItemFailures": [{"itemIdentifier": item_id} for item_id in failed_ids]}


@dataclass(frozen=True)
class Succeeded(Generic[ItemT, ValueT]):
    """An item its handler processed; ``value`` is what the handler returned."""

    item: ItemT
    item_id: str | None
    value: ValueT


@dataclass(frozen=True)
class Failed(Generic[ItemT]):
    """An item whose handler raised ``error``; it is reported, so Lambda delivers it again."""

    item: ItemT
    item_id: str
    error: Exception


@dataclass(frozen=True)
class Skipped(Generic[ItemT]):
    """An item of an ordered batch not handled because the item ``behind`` (its id) failed
    before it; it is reported too, so Lambda delivers it again after that one."""

    item: ItemT
    item_id: str
    behind: str


#: The outcome of one item.
ItemResult: TypeAlias = Succeeded[ItemT, ValueT] | Failed[ItemT] | Skipped[ItemT]


@dataclass(frozen=True)
class BatchResult(Generic[ItemT, ValueT]):
    """The outcome of every item of a batch, in batch order."""

    results: Sequence[ItemResult[ItemT, ValueT]]

    @property
    def succeeded(self) -> list[Succeeded[ItemT, ValueT]]:
        """The items processed."""
        return [r for r in self.results if isinstance(r, Succeeded)]

    @property
    def failures(self) -> list[Failed[ItemT]]:
        """The items whose handler raised."""
        return [r for r in self.results if isinstance(r, Failed)]

    @property
    def skipped(self) -> list[Skipped[ItemT]]:
        """The items of an ordered batch left behind a failure."""
        return [r for r in self.results if isinstance(r, Skipped)]

    @property
    def errors(self) -> list[Exception]:
        """The handlers' exceptions, in batch order."""
        return [r.error for r in self.failures]

    @property
    def failed_ids(self) -> list[str]:
        """The ids Lambda is told failed (failures and skipped items), in batch order."""
        return [r.item_id for r in self.results if not isinstance(r, Succeeded)]

    def response(self) -> PartialBatchResponse:
        """Lambda's partial batch response for this batch."""
        return partial_batch_response(self.failed_ids)


def process_batch(
    items: Iterable[ItemT],
    handle: Callable[[ItemT], ValueT],
    *,
    item_id: Callable[[ItemT], str | None],
    ordered: bool = False,
) -> BatchResult[ItemT, ValueT]:
    """Call ``handle`` on each item and collect the outcomes.

    ``item_id`` names an item in the response (``None``: it cannot be reported, and an
    exception of its handler propagates). A handler's :class:`Exception` fails its item;
    with ``ordered`` it also stops the batch, the remaining items being :class:`Skipped`
    (if one of them cannot be reported, the exception propagates instead). Exceptions
    that are not :class:`Exception` (``KeyboardInterrupt`` …) always propagate.
    """
    keyed = [(item, item_id(item)) for item in items]
    results: list[ItemResult[ItemT, ValueT]] = []
    for i, (item, key) in enumerate(keyed):
        try:
            value = handle(item)
        except Exception as exc:
            if key is None:
                raise
            results.append(Failed(item, key, exc))
            if ordered:
                results.extend(_skip(keyed[i + 1 :], key, exc))
                break
            continue
        results.append(Succeeded(item, key, value))
    return BatchResult(results)


def _skip(
    rest: Sequence[tuple[ItemT, str | None]], behind: str, error: Exception
) -> list[Skipped[ItemT]]:
    skipped: list[Skipped[ItemT]] = []
    for item, key in rest:
        if key is None:  # cannot be reported: fail the whole invocation instead
            raise error
        skipped.append(Skipped(item, key, behind))
    return skipped
