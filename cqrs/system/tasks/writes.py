"""The conditional writes of the state machine, through the store.

A transition is one conditional ``UpdateItem`` of the task, or, when a sub-task
changes its parent's counters, one ``TransactWriteItems`` of both. A failed
condition is a value (:class:`Stale`), never an exception: it means a stale
record, and the caller decides what the state it found calls for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...store import Condition, Conflict, Item, Store, TxUpdate, Update, item_absent
from .conditions import parent_open
from .models import TaskStatus
from .timing import Timing

logger = logging.getLogger("cqrs.system.tasks")


@dataclass(frozen=True)
class ParentCount:
    """What a sub-task's transition adds to its parent's counters (and its new status)."""

    sk: str
    add: dict[str, int] = field(default_factory=dict)
    set_status: TaskStatus | None = None


@dataclass(frozen=True)
class Stale:
    """A transition's condition failed: the task had left the state it named.

    ``current`` is the item as DynamoDB found it, or ``None`` when it returned none.
    """

    current: Item | None


class TaskWrites:
    """Reads and conditional writes of one tasks table."""

    def __init__(self, store: Store, table: str, timing: Timing) -> None:
        self._store = store
        self.table = table
        self._timing = timing

    def move(
        self,
        item: Item,
        condition: Condition,
        values: Mapping[str, Any],
        *,
        remove: Sequence[str] = (),
        parent: ParentCount | None = None,
    ) -> Item | Stale:
        """Set ``values`` and remove ``remove`` on ``item`` if ``condition`` holds, counting
        it on its parent in the same transaction; the item as written, or :class:`Stale`."""
        key = {"pk": item["pk"], "sk": item["sk"]}
        update = Update().set(values).remove(*remove)
        if parent is None:
            result = self._store.update(
                self.table, key, update, condition=condition, returns="ALL_NEW"
            )
            return Stale(result.current) if isinstance(result, Conflict) else result.attributes
        own = TxUpdate(self.table, key, update, condition)
        cancelled = self._store.transact_write([own, self._count(item, parent)])
        if cancelled is None:
            moved = {**item, **values}
            for name in remove:
                moved.pop(name, None)
            return moved
        if cancelled.failed(0):
            return Stale(cancelled.reasons[0].item)
        # The parent is gone or already ended: never block the stream on it.
        logger.error("task %s: parent %s cannot count it", item["sk"], parent.sk)
        return self.move(item, condition, values, remove=remove)

    def put_new(self, item: Item) -> bool:
        """Write ``item`` unless it exists; whether it was written."""
        return self._store.put(self.table, item, condition=item_absent()) is None

    def read(self, pk: str, sk: str) -> Item | None:
        """One task item, strongly consistent."""
        return self._store.get(self.table, {"pk": pk, "sk": sk}, consistent=True)

    def check(self, item: Item) -> None:
        """Refuse ``item`` as the store would (values DynamoDB cannot store, 400 KB)."""
        self._store.wire(self.table, item)

    def _count(self, item: Item, parent: ParentCount) -> TxUpdate:
        update = Update().set(updatedAt=self._timing.now_iso()).add(parent.add)
        if parent.set_status is not None:
            update.set(status=parent.set_status.value)
        key = {"pk": item["pk"], "sk": parent.sk}
        return TxUpdate(self.table, key, update, parent_open())
