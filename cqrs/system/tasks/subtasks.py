"""Parents: fanning out into sub-tasks, and ending once every sub-task has ended."""

from __future__ import annotations

from typing import Literal

from ...core.errors import SubtaskFailedError
from .changes import UNSET, Change
from .conditions import counters_unchanged, fan_out_pending, still_in
from .items import new_subtask
from .models import TaskStatus
from .records import ErrorRecord, TaskRecord
from .timing import Timing
from .writes import Stale, TaskWrites

ParentStep = Literal["fan out", "complete", "nothing"]


def steps_of_parent(parent: TaskRecord, *, run: bool) -> ParentStep:
    """What an observed state of a parent calls for (``run``: seen on the stream)."""
    if parent.subtask_inputs is not None and (parent.status is TaskStatus.CREATED or not run):
        return "fan out"  # from its INSERT, or a sweep after a fan-out cut short
    if parent.status in (TaskStatus.QUEUED, TaskStatus.PROCESSING) and parent.children_done:
        return "complete"
    return "nothing"


def fan_out(writes: TaskWrites, timing: Timing, parent: TaskRecord) -> int:
    """Write the sub-tasks of ``parent``, idempotently: queue the parent, put each
    sub-task unless it exists, then drop the inputs. Returns the writes that applied."""
    written = 0
    now = timing.now_iso()
    if parent.status is TaskStatus.CREATED:
        queued = Change(updated_at=now, status=TaskStatus.QUEUED)
        if not isinstance(writes.move(parent, still_in(parent), queued), Stale):
            written += 1
        else:  # a redelivery: carry on only if the fan-out is unfinished
            current = writes.read(parent.pk, parent.sk)
            if current is None or current.subtask_inputs is None:
                return written
    for index, input in enumerate(parent.subtask_inputs or ()):
        written += int(writes.put_new(new_subtask(parent, index, input, now)))
    done = writes.move(parent, fan_out_pending(), Change(updated_at=now, subtask_inputs=None))
    return written + int(not isinstance(done, Stale))


def complete_parent(writes: TaskWrites, timing: Timing, parent: TaskRecord) -> int:
    """COMPLETED if every sub-task succeeded, else FAILED; exactly once (the condition
    names the counters seen). Returns the writes that applied."""
    total, ok, bad = parent.subtask_count or 0, parent.succeeded, parent.failed
    now = timing.now_iso()
    failed = SubtaskFailedError(f"{bad} of {total} sub-tasks failed")
    change = Change(
        updated_at=now,
        finished_at=now,
        status=TaskStatus.FAILED if bad else TaskStatus.COMPLETED,
        result={"total": total, "succeeded": ok, "failed": bad},
        error=ErrorRecord.of(failed, None) if bad else UNSET,
    )
    return int(not isinstance(writes.move(parent, counters_unchanged(parent), change), Stale))
