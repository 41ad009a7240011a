"""Parents: fanning out into sub-tasks, and ending once every sub-task has ended."""

from __future__ import annotations

from typing import Any, Literal

from ...store import Item
from .conditions import counters_unchanged, fan_out_pending, still_in
from .errors import SubtaskFailedError
from .items import children_done, error_of, new_subtask
from .models import TaskStatus
from .timing import Timing
from .writes import Stale, TaskWrites

ParentStep = Literal["fan out", "complete", "nothing"]


def steps_of_parent(parent: Item, *, run: bool) -> ParentStep:
    """What an observed state of a parent calls for (``run``: seen on the stream)."""
    status = parent["status"]
    if "subtaskInputs" in parent and (status == TaskStatus.CREATED or not run):
        return "fan out"  # from its INSERT, or a sweep after a fan-out cut short
    if status in (TaskStatus.QUEUED, TaskStatus.PROCESSING) and children_done(parent):
        return "complete"
    return "nothing"


def fan_out(writes: TaskWrites, timing: Timing, parent: Item) -> int:
    """Write the sub-tasks of ``parent``, idempotently: queue the parent, put each
    sub-task unless it exists, then drop the inputs. Returns the writes that applied."""
    written = 0
    now = timing.now_iso()
    if parent["status"] == TaskStatus.CREATED:
        queued = {"status": TaskStatus.QUEUED.value, "updatedAt": now}
        if not isinstance(writes.move(parent, still_in(parent), queued), Stale):
            written += 1
        else:  # a redelivery: carry on only if the fan-out is unfinished
            current = writes.read(parent["pk"], parent["sk"])
            if current is None or "subtaskInputs" not in current:
                return written
    for index, input in enumerate(parent["subtaskInputs"]):
        written += int(writes.put_new(new_subtask(parent, index, input, now)))
    done = writes.move(parent, fan_out_pending(), {"updatedAt": now}, remove=("subtaskInputs",))
    return written + int(not isinstance(done, Stale))


def complete_parent(writes: TaskWrites, timing: Timing, parent: Item) -> int:
    """COMPLETED if every sub-task succeeded, else FAILED; exactly once (the condition
    names the counters seen). Returns the writes that applied."""
    total, ok, bad = int(parent["subtaskCount"]), int(parent["succeeded"]), int(parent["failed"])
    status = TaskStatus.FAILED if bad else TaskStatus.COMPLETED
    now = timing.now_iso()
    values: dict[str, Any] = {
        "status": status.value,
        "result": {"total": total, "succeeded": ok, "failed": bad},
        "updatedAt": now,
        "finishedAt": now,
    }
    if bad:
        failed = SubtaskFailedError(f"{bad} of {total} sub-tasks failed")
        values["error"] = error_of(failed, None)
    return int(not isinstance(writes.move(parent, counters_unchanged(parent), values), Stale))
