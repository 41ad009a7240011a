"""Tasks-table stream records → state machine steps, with the error policy of a shard.

Only an error retrying can cure (:func:`cqrs.core.errors.is_retryable`) reports its
record as failed, so that Lambda redelivers it; any other error is logged at
ERROR with the record's sequence number and task key and the record is
acknowledged, so a record no retry can fix never holds the shard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ...core.errors import is_retryable
from ...store import Item
from .records import Attr, is_task_item

if TYPE_CHECKING:
    from ...store.stream_records import StreamRecord

logger = logging.getLogger("cqrs.system.tasks")


def consume(records: Sequence[StreamRecord], step: Callable[[Item], object]) -> list[str]:
    """Call ``step`` on the last new image of each task in ``records`` (an item: ``step``
    reads it, so that a malformed image fails like any step); return the sequence numbers
    of the records whose error is transient."""
    failed: list[str] = []
    for record, image in latest_images(records):
        try:
            step(image)
        except Exception as exc:
            if is_retryable(exc):
                logger.warning(
                    "task %s / %s: record %s failed, to be retried: %r",
                    image[Attr.PK], image[Attr.SK], record.sequence_number, exc,
                )  # fmt: skip
                failed.append(record.sequence_number)
            else:
                logger.error(
                    "task %s / %s: record %s failed permanently and is acknowledged "
                    "(a sweep repairs the task once the cause is fixed): %r",
                    image[Attr.PK], image[Attr.SK], record.sequence_number, exc,
                    exc_info=exc,
                )  # fmt: skip
    return failed


def latest_images(records: Sequence[StreamRecord]) -> list[tuple[StreamRecord, Item]]:
    """The last record of each task with its new image, in the order of those records
    (earlier records of a task are superseded; other items are skipped)."""
    latest: dict[tuple[str, str], tuple[StreamRecord, Item]] = {}
    for record in records:
        image = record.new_image
        if image is None or not is_task_item(image):
            continue
        key = (image[Attr.PK], image[Attr.SK])
        latest.pop(key, None)  # keep the order of each task's last record
        latest[key] = (record, image)
    return list(latest.values())
