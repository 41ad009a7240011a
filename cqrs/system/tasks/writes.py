"""The conditional writes of the state machine, through the store.

A transition is one conditional ``UpdateItem`` of the task, or, when a sub-task
changes its parent's counters, one ``TransactWriteItems`` of both. A failed
condition is a value (:class:`Stale`), never an exception: it means a stale
record, and the caller decides what the state it found calls for. Tasks come and
go as :class:`~.records.TaskRecord`; items exist only in the calls to the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ...store import Condition, Conflict, Store, TxUpdate, item_absent
from .changes import Change, ParentCount
from .conditions import parent_open
from .records import Attr, TaskRecord, task_or_none
from .timing import Timing

logger = logging.getLogger("cqrs.system.tasks")


@dataclass(frozen=True)
class Stale:
    """A transition's condition failed: the task had left the state it named.

    ``current`` is the task as DynamoDB found it, or ``None`` when it returned none
    (or a status this version does not know).
    """

    current: TaskRecord | None


class TaskWrites:
    """Reads and conditional writes of one tasks table."""

    def __init__(self, store: Store, table: str, timing: Timing) -> None:
        self._store = store
        self.table = table
        self._timing = timing

    def move(
        self,
        task: TaskRecord,
        condition: Condition,
        change: Change,
        *,
        parent: ParentCount | None = None,
    ) -> TaskRecord | Stale:
        """Apply ``change`` to ``task`` if ``condition`` holds, counting it on its parent
        in the same transaction; the task as written, or :class:`Stale`."""
        update = change.to_update()
        if parent is None:
            result = self._store.update(
                self.table, task.key, update, condition=condition, returns="ALL_NEW"
            )
            if isinstance(result, Conflict):
                return Stale(task_or_none(result.current))
            return TaskRecord.from_item(result.attributes)
        own = TxUpdate(self.table, task.key, update, condition)
        cancelled = self._store.transact_write([own, self._count(task, parent)])
        if cancelled is None:
            return change.applied_to(task)
        if cancelled.failed(0):
            return Stale(task_or_none(cancelled.reasons[0].item))
        # The parent is gone or already ended: never block the stream on it.
        logger.error("task %s: parent %s cannot count it", task.sk, parent.sk)
        return self.move(task, condition, change)

    def put_new(self, task: TaskRecord) -> bool:
        """Write ``task`` unless it exists; whether it was written."""
        return self._store.put(self.table, task.to_item(), condition=item_absent()) is None

    def read(self, pk: str, sk: str) -> TaskRecord | None:
        """One task, strongly consistent."""
        item = self._store.get(self.table, {Attr.PK: pk, Attr.SK: sk}, consistent=True)
        return task_or_none(item)

    def check(self, task: TaskRecord) -> None:
        """Refuse ``task`` as the store would (values DynamoDB cannot store, 400 KB)."""
        self._store.wire(self.table, task.to_item())

    def _count(self, task: TaskRecord, parent: ParentCount) -> TxUpdate:
        key = {Attr.PK: task.pk, Attr.SK: parent.sk}
        return TxUpdate(self.table, key, parent.to_update(self._timing.now_iso()), parent_open())
