"""What one transition writes: a :class:`Change` of a task, a :class:`ParentCount` of its parent.

Both are typed (record fields, not stored names) and become one
:class:`~cqrs.store.Update` each, with the stored names of :class:`~.records.Attr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ...store import Item, Update
from .models import TaskStatus
from .records import Attr, ErrorRecord, TaskRecord
from .values import JsonValue


class Unset(Enum):
    """The type of :data:`UNSET`."""

    UNSET = "unset"


#: A :class:`Change` field that the transition leaves as it is.
UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class Change:
    """What one transition writes, by record field; :data:`UNSET` fields stay as they are.

    ``None`` removes the attribute (``lease_until``, ``error``, ``subtask_inputs``),
    except for the user values ``result`` and ``progress``: there it is stored as
    ``NULL``. Every transition stamps ``updated_at``.
    """

    updated_at: str
    status: TaskStatus | Unset = UNSET
    attempts: int | Unset = UNSET
    lease_until: int | Unset | None = UNSET
    started_at: str | Unset = UNSET
    finished_at: str | Unset = UNSET
    progress: JsonValue | Unset = UNSET
    result: JsonValue | Unset = UNSET
    error: ErrorRecord | Unset | None = UNSET
    subtask_inputs: Unset | None = UNSET

    def stored(self) -> tuple[Item, tuple[str, ...]]:
        """The attributes set (stored names and values) and the names of those removed."""
        status = self.status if isinstance(self.status, Unset) else self.status.value
        error = self.error.to_value() if isinstance(self.error, ErrorRecord) else self.error
        fields: list[tuple[str, object]] = [
            (Attr.STATUS, status),
            (Attr.ATTEMPTS, self.attempts),
            (Attr.LEASE_UNTIL, self.lease_until),
            (Attr.STARTED_AT, self.started_at),
            (Attr.FINISHED_AT, self.finished_at),
            (Attr.ERROR, error),
            (Attr.SUBTASK_INPUTS, self.subtask_inputs),
        ]
        values: Item = {Attr.UPDATED_AT: self.updated_at}
        removed = tuple(name for name, value in fields if value is None)
        values.update((n, v) for n, v in fields if v is not None and not isinstance(v, Unset))
        for name, user in ((Attr.PROGRESS, self.progress), (Attr.RESULT, self.result)):
            if not isinstance(user, Unset):
                values[name] = user  # ``None`` is stored as NULL
        return values, removed

    def to_update(self) -> Update:
        """The change as one ``UpdateItem``'s ``SET`` and ``REMOVE``."""
        values, removed = self.stored()
        return Update().set(values).remove(*removed)

    def applied_to(self, task: TaskRecord) -> TaskRecord:
        """``task`` as the change leaves it: what DynamoDB stores after :meth:`to_update`."""
        values, removed = self.stored()
        item = {**task.to_item(), **values}
        for name in removed:
            item.pop(name, None)
        return TaskRecord.from_item(item)


@dataclass(frozen=True)
class ParentCount:
    """What a sub-task's transition adds to its parent's counters (and the parent's new
    ``status``, if any)."""

    sk: str
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    status: TaskStatus | None = None

    def to_update(self, now: str) -> Update:
        """``ADD`` the non-zero counts, ``SET`` the status and ``updatedAt``."""
        counts = {Attr.RUNNING: self.running, Attr.SUCCEEDED: self.succeeded}
        counts[Attr.FAILED] = self.failed
        update = Update().set({Attr.UPDATED_AT: now}).add({n: c for n, c in counts.items() if c})
        if self.status is not None:
            update.set({Attr.STATUS: self.status.value})
        return update
