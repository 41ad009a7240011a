"""The states a task write requires, by name: each transition says which state it leaves.

``attempts`` only grows and every transition changes ``status`` or ``attempts``,
so a condition on both names one moment of a task's life: a stale record's write
fails it and has no effect.
"""

from __future__ import annotations

from ...store import Condition, absent, equals, one_of, present
from .models import TaskStatus
from .records import Attr, TaskRecord


def still_in(task: TaskRecord) -> Condition:
    """The task still has the ``status`` and ``attempts`` of ``task``."""
    return equals(Attr.STATUS, task.status.value) & equals(Attr.ATTEMPTS, task.attempts)


def still_leased(task: TaskRecord) -> Condition:
    """:func:`still_in` ``task``, and nobody renewed or reclaimed its lease since."""
    lease = task.lease_until
    held = absent(Attr.LEASE_UNTIL) if lease is None else equals(Attr.LEASE_UNTIL, lease)
    return still_in(task) & held


def fan_out_pending() -> Condition:
    """The parent still carries the inputs of its sub-tasks."""
    return present(Attr.SUBTASK_INPUTS)


def counters_unchanged(parent: TaskRecord) -> Condition:
    """The parent still has the ``status`` and sub-task counters of ``parent``."""
    return (
        equals(Attr.STATUS, parent.status.value)
        & equals(Attr.SUCCEEDED, parent.succeeded)
        & equals(Attr.FAILED, parent.failed)
    )


def parent_open() -> Condition:
    """The parent has not ended: it can still count its sub-tasks."""
    return one_of(Attr.STATUS, (TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value))
