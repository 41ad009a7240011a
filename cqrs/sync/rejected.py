"""Rejected stream records: kept with their reason in ``sync-failures``, alarm raised once.

A record the synchronizer cannot process (not parseable, or an INSERT into a
command table that is not a valid command image) is acknowledged so its shard
moves on, and kept here for an operator: the raw record (its JSON text), the
reason, where it came from. ``cqrs stuck`` lists them; :meth:`RejectedRecords.dismiss`
removes one once dealt with.

Rows live in the ``sync-failures`` table under one partition::

    pk = "REJECTED_RECORD"
    sk = "<table>#<sequence number>"     (``-`` for a part the record did not carry)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.items import Item, optional_str
from ..core.records import now_iso
from ..store import Store, begins_with, equals, item_absent
from ..store.stream_records import RejectedRecord

if TYPE_CHECKING:
    from ..events.notifications import RecordRejectedEvent

logger = logging.getLogger("cqrs.sync.rejected")

PARTITION = "REJECTED_RECORD"


class RejectedRecords:
    """Records, lists and dismisses rejected stream records (one row each)."""

    def __init__(
        self,
        store: Store,
        table: str,
        *,
        alarm: Callable[[RecordRejectedEvent], None] | None = None,
        clock: Callable[[], str] = now_iso,
    ) -> None:
        self._store = store
        self.table = table
        self._alarm = alarm
        self._clock = clock

    def add(self, record: RejectedRecord) -> bool:
        """Keep ``record``; raise the alarm the first time. ``False`` if it was already kept
        (a redelivery). One conditional ``PutItem``."""
        item = {
            "pk": PARTITION,
            "sk": _row_sk(record),
            "table": record.table,
            "sequenceNumber": record.sequence_number,
            "reason": record.reason,
            "raw": record.raw,
            "entityPk": record.pk,
            "entitySk": record.sk,
            "rejectedAt": self._clock(),
        }
        if self._store.put(self.table, item, condition=item_absent()) is not None:
            return False
        if self._alarm is not None:
            from ..events.notifications import RecordRejectedEvent

            self._alarm(
                RecordRejectedEvent(
                    pk=record.pk or "-",
                    sk=record.sk or "-",
                    table=record.table or "-",
                    sequence_number=record.sequence_number,
                    reason=record.reason,
                )
            )
        return True

    def list(self, table: str | None = None) -> list[RejectedRecord]:
        """Kept records, oldest table first; only those of ``table`` if given."""
        condition = equals("pk", PARTITION)
        if table is not None:
            condition = condition & begins_with("sk", f"{table}#")
        return [_from_item(i) for i in self._store.query(self.table, condition, consistent=True)]

    def dismiss(self, record: RejectedRecord) -> bool:
        """Delete a kept record (after dealing with it); ``False`` if it was not there."""
        key = {"pk": PARTITION, "sk": _row_sk(record)}
        return self._store.delete(self.table, key, condition=equals("pk", PARTITION)) is None


def _row_sk(record: RejectedRecord) -> str:
    seq = record.sequence_number
    if seq is None:  # no sequence number: the record's own text identifies it
        seq = "sha256-" + hashlib.sha256(record.raw.encode()).hexdigest()[:32]
    return f"{record.table or '-'}#{seq}"


def _from_item(item: Item) -> RejectedRecord:
    return RejectedRecord(
        reason=str(item.get("reason", "")),
        raw=str(item.get("raw", "")),
        table=optional_str(item.get("table")),
        sequence_number=optional_str(item.get("sequenceNumber")),
        pk=optional_str(item.get("entityPk")),
        sk=optional_str(item.get("entitySk")),
        rejected_at=optional_str(item.get("rejectedAt")),
    )
