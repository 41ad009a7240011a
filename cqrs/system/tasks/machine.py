"""The state machine: what one observed state of a task calls for, and running handlers.

Every write goes through :meth:`TaskMachine.transition`, conditional on the state
it leaves (:mod:`.conditions`). A write that finds the task PROCESSING with an
expired lease under another attempt reclaims it on the way. Tasks are
:class:`~.records.TaskRecord` throughout; a stored item becomes one at :meth:`step_item`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from pydantic import ValidationError

from ...core.errors import (
    InterfaceError,
    InvalidTaskInputError,
    NoTaskHandlerError,
    PermanentTaskError,
    TaskLeaseExpiredError,
    TaskLeaseLostError,
)
from ...store import Condition, Item
from .changes import UNSET, Change, ParentCount, Unset
from .conditions import still_in, still_leased
from .handlers import Handlers, HandlerSpec
from .models import TaskStatus, Unhandled, task_class
from .records import Attr, ErrorRecord, TaskRecord, has_known_status
from .subtasks import complete_parent, fan_out, steps_of_parent
from .timing import Timing, iso
from .values import JsonValue, storable
from .writes import Stale, TaskWrites

logger = logging.getLogger("cqrs.system.tasks")


class TaskMachine:
    """Moves tasks through their lifecycle; see :mod:`cqrs.system.tasks` for the rules.

    ``unhandled``: what a claim does for a task type without a handler (:data:`.Unhandled`).
    """

    def __init__(
        self, writes: TaskWrites, handlers: Handlers, timing: Timing, unhandled: Unhandled = "fail"
    ) -> None:
        self._writes = writes
        self._handlers = handlers
        self._timing = timing
        self.unhandled: Unhandled = unhandled
        self._left: set[str] = set()  # task types left QUEUED (and said so) by this process

    def step_item(self, item: Item, *, run: bool) -> int:
        """:meth:`step` on a stored item or stream image; one with a status this version
        does not know is left alone (with a warning)."""
        if not has_known_status(item):
            status = item.get(Attr.STATUS)
            logger.warning(
                "task %s / %s has unknown status %r", item[Attr.PK], item[Attr.SK], status
            )
            return 0
        return self.step(TaskRecord.from_item(item), run=run)

    def step(self, task: TaskRecord, *, run: bool) -> int:
        """Act on one observed state of a task (``run``: handlers may run, from the stream;
        a sweep passes ``False``). Returns the number of writes that applied."""
        if task.is_parent:
            return self._step_parent(task, run=run)
        if task.status is TaskStatus.CREATED:
            return self._write(task, still_in(task), status=TaskStatus.QUEUED)
        if task.status is TaskStatus.QUEUED:
            return self._claim_and_run(task) if run else self._write(task, still_in(task))
        if task.status is TaskStatus.PROCESSING and self._timing.lease_expired(task.lease_until):
            return self.reclaim(task)
        return 0

    def _step_parent(self, task: TaskRecord, *, run: bool) -> int:
        step = steps_of_parent(task, run=run)
        if step == "fan out":
            return fan_out(self._writes, self._timing, task)
        if step == "complete":
            return complete_parent(self._writes, self._timing, task)
        return 0

    # -- attempts ------------------------------------------------------------------------

    def _claim_and_run(self, task: TaskRecord) -> int:
        spec = self._handlers.get(task.task_type)
        if spec is None:
            return self._no_handler(task)
        attempt = task.attempts + 1
        now_ms = self._timing.now_ms()
        claim = Change(
            updated_at=iso(now_ms),
            status=TaskStatus.PROCESSING,
            attempts=attempt,
            lease_until=self._timing.lease_from(now_ms),
            started_at=iso(now_ms) if attempt == 1 else UNSET,
        )
        parent = None
        if task.parent_sk is not None and attempt == 1:
            parent = ParentCount(task.parent_sk, running=1, status=TaskStatus.PROCESSING)
        claimed = self.transition(task, still_in(task), claim, parent=parent)
        if claimed is None:
            return 0
        return 1 + self._run(spec, claimed)

    def _no_handler(self, task: TaskRecord) -> int:
        """A task type without a handler: FAILED (``"fail"``), or left QUEUED (``"leave"``),
        said once per task type, not once per record."""
        if self.unhandled == "leave":
            if task.task_type not in self._left:
                self._left.add(task.task_type)
                logger.warning(
                    "no handler for task type %r in this process: its tasks stay QUEUED for "
                    "a process that has one (first: %s)", task.task_type, task.sk,
                )  # fmt: skip
            return 0
        logger.error("no handler for task type %r: %s fails", task.task_type, task.sk)
        missing = NoTaskHandlerError(f"no handler is registered for task type {task.task_type!r}")
        return self._finish(task, TaskStatus.FAILED, error=ErrorRecord.of(missing, task.attempts))

    def _run(self, spec: HandlerSpec, task: TaskRecord) -> int:
        """Run the handler for the attempt ``task`` was claimed for; write its outcome."""
        try:
            result = self._attempt(spec, task)
        except Exception as exc:
            logger.warning(
                "task %s attempt %d/%s failed: %r", task.sk, task.attempts, task.max_attempts, exc
            )
            permanent = isinstance(exc, PermanentTaskError)
            error = ErrorRecord.of(exc, task.attempts)
            return self._fail_attempt(task, error, permanent=permanent)
        return self._finish(task, TaskStatus.COMPLETED, result=result, error=None)

    def _attempt(self, spec: HandlerSpec, task: TaskRecord) -> JsonValue:
        """Call the handler; its result as it will be stored (else PermanentTaskError)."""
        try:
            public = task_class(spec.input_model).model_validate(task.to_item())
        except ValidationError as exc:
            raise PermanentTaskError(f"stored input does not validate: {exc}") from exc
        public._reporter = lambda progress: self._report_progress(task, progress)
        result = self._handlers.resolve(spec)(public)
        try:
            stored = storable(result, "result")
            self._writes.check(replace(task, result=stored, status=TaskStatus.COMPLETED))
        except InvalidTaskInputError as exc:
            raise PermanentTaskError(str(exc)) from exc
        except InterfaceError as exc:  # too large for an item
            raise PermanentTaskError(f"the result cannot be stored: {exc}") from exc
        return stored

    def _report_progress(self, task: TaskRecord, progress: object) -> None:
        stored = storable(progress, "progress")
        now_ms = self._timing.now_ms()
        lease = self._timing.lease_from(now_ms)
        change = Change(updated_at=iso(now_ms), progress=stored, lease_until=lease)
        if self.transition(task, still_in(task), change) is None:
            raise TaskLeaseLostError(
                f"task {task.sk} attempt {task.attempts} lost its lease (reclaimed)"
            )

    def reclaim(self, task: TaskRecord) -> int:
        """Count an attempt whose lease expired as failed (→ QUEUED, or FAILED if last)."""
        expired = TaskLeaseExpiredError(
            f"attempt {task.attempts} did not finish before its lease expired"
        )
        return self._fail_attempt(task, ErrorRecord.of(expired, task.attempts), held=True)

    def _fail_attempt(
        self, task: TaskRecord, error: ErrorRecord, *, permanent: bool = False, held: bool = False
    ) -> int:
        """QUEUED again with the error, or FAILED (``permanent``, or the last attempt).
        ``held``: conditional on the lease ``task`` shows as well (a reclaim)."""
        condition = still_leased(task) if held else still_in(task)
        if permanent or task.attempts >= task.max_attempts:
            return self._finish(task, TaskStatus.FAILED, error=error, condition=condition)
        return self._write(task, condition, status=TaskStatus.QUEUED, error=error, lease=None)

    def _finish(
        self,
        task: TaskRecord,
        status: TaskStatus,
        *,
        result: JsonValue | Unset = UNSET,
        error: ErrorRecord | None,
        condition: Condition | None = None,
    ) -> int:
        """→ COMPLETED / FAILED (with ``result`` and ``error``; ``None``: removed), counting
        a sub-task on its parent."""
        now = self._timing.now_iso()
        change = Change(
            updated_at=now,
            finished_at=now,
            status=status,
            lease_until=None,
            result=result,
            error=error,
        )
        parent = None
        if task.parent_sk is not None:
            ok = status is TaskStatus.COMPLETED
            # counted as running since its first claim
            running = -1 if task.attempts >= 1 else 0
            parent = ParentCount(task.parent_sk, running, succeeded=int(ok), failed=int(not ok))
        written = self.transition(task, condition or still_in(task), change, parent=parent)
        if written is None:
            logger.info("task %s: %s not written, it moved on meanwhile", task.sk, status)
        return int(written is not None)

    # -- writes --------------------------------------------------------------------------

    def _write(
        self,
        task: TaskRecord,
        condition: Condition,
        *,
        status: TaskStatus | Unset = UNSET,
        error: ErrorRecord | Unset = UNSET,
        lease: Unset | None = UNSET,
    ) -> int:
        """One transition to ``status`` (with ``error``; ``lease=None`` removes the lease),
        stamped ``updatedAt``; 1 if it applied, else 0."""
        change = Change(
            updated_at=self._timing.now_iso(), status=status, error=error, lease_until=lease
        )
        return int(self.transition(task, condition, change) is not None)

    def transition(
        self,
        task: TaskRecord,
        condition: Condition,
        change: Change,
        *,
        parent: ParentCount | None = None,
    ) -> TaskRecord | None:
        """One conditional write of ``task`` (with its parent's counters, atomically).

        Returns the task as written, or ``None`` if the condition failed (the task
        moved on: a stale record). Then, if the task turns out to be PROCESSING
        with an expired lease under another attempt, it is reclaimed.
        """
        moved = self._writes.move(task, condition, change, parent=parent)
        if not isinstance(moved, Stale):
            return moved
        current = moved.current
        if current is not None and self._abandoned(current, seen=task):
            self.reclaim(current)
        return None

    def _abandoned(self, current: TaskRecord, *, seen: TaskRecord) -> bool:
        """``current`` is an attempt other than ``seen``'s whose lease ran out."""
        return (
            current.status is TaskStatus.PROCESSING
            and not current.is_parent
            and self._timing.lease_expired(current.lease_until)
            and (current.attempts, current.lease_until) != (seen.attempts, seen.lease_until)
        )
