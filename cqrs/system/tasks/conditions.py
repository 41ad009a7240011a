"""The states a task write requires, by name: each transition says which state it leaves.

``attempts`` only grows and every transition changes ``status`` or ``attempts``,
so a condition on both names one moment of a task's life: a stale record's write
fails it and has no effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...store import Condition, absent, equals, one_of, present
from .models import TaskStatus


def still_in(item: Mapping[str, Any]) -> Condition:
    """The task still has the ``status`` and ``attempts`` of ``item``."""
    return equals("status", item["status"]) & equals("attempts", int(item["attempts"]))


def still_leased(item: Mapping[str, Any]) -> Condition:
    """:func:`still_in` ``item``, and nobody renewed or reclaimed its lease since."""
    lease = item.get("leaseUntil")
    held = absent("leaseUntil") if lease is None else equals("leaseUntil", lease)
    return still_in(item) & held


def fan_out_pending() -> Condition:
    """The parent still carries the inputs of its sub-tasks."""
    return present("subtaskInputs")


def counters_unchanged(parent: Mapping[str, Any]) -> Condition:
    """The parent still has the ``status`` and sub-task counters of ``parent``."""
    return (
        equals("status", parent["status"])
        & equals("succeeded", int(parent["succeeded"]))
        & equals("failed", int(parent["failed"]))
    )


def parent_open() -> Condition:
    """The parent has not ended: it can still count its sub-tasks."""
    return one_of("status", (TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value))
