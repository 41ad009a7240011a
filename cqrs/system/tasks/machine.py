"""The state machine: what one observed state of a task calls for, and running handlers.

Every write goes through :meth:`TaskMachine.transition`, conditional on the state
it leaves (:mod:`.conditions`). A write that finds the task PROCESSING with an
expired lease under another attempt reclaims it on the way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ...core.errors import InterfaceError
from ...store import Condition, Item
from .conditions import still_in, still_leased
from .errors import (
    InvalidTaskInputError,
    NoTaskHandlerError,
    PermanentTaskError,
    TaskLeaseExpiredError,
    TaskLeaseLostError,
)
from .handlers import Handlers, HandlerSpec
from .items import error_of
from .models import TaskStatus, task_class
from .subtasks import complete_parent, fan_out, steps_of_parent
from .timing import Timing, iso
from .values import storable
from .writes import ParentCount, Stale, TaskWrites

logger = logging.getLogger("cqrs.system.tasks")

_LIVE = frozenset(s.value for s in TaskStatus)


class TaskMachine:
    """Moves tasks through their lifecycle; see :mod:`cqrs.system.tasks` for the rules."""

    def __init__(self, writes: TaskWrites, handlers: Handlers, timing: Timing) -> None:
        self._writes = writes
        self._handlers = handlers
        self._timing = timing

    def step(self, item: Item, *, run: bool) -> int:
        """Act on one observed state of a task (``run``: handlers may run, from the stream;
        a sweep passes ``False``). Returns the number of writes that applied."""
        status = item.get("status")
        if status not in _LIVE:
            logger.warning("task %s / %s has unknown status %r", item["pk"], item["sk"], status)
            return 0
        if "subtaskCount" in item:
            return self._step_parent(item, run=run)
        if status == TaskStatus.CREATED:
            return self._write(item, still_in(item), {"status": TaskStatus.QUEUED.value})
        if status == TaskStatus.QUEUED:
            return self._claim_and_run(item) if run else self._write(item, still_in(item), {})
        if status == TaskStatus.PROCESSING and self._timing.lease_expired(item):
            return self.reclaim(item)
        return 0

    def _step_parent(self, item: Item, *, run: bool) -> int:
        step = steps_of_parent(item, run=run)
        if step == "fan out":
            return fan_out(self._writes, self._timing, item)
        if step == "complete":
            return complete_parent(self._writes, self._timing, item)
        return 0

    # -- attempts ------------------------------------------------------------------------

    def _claim_and_run(self, item: Item) -> int:
        spec = self._handlers.get(item["taskType"])
        if spec is None:
            logger.error("no handler for task type %r: %s fails", item["taskType"], item["sk"])
            missing = NoTaskHandlerError(
                f"no handler is registered for task type {item['taskType']!r}"
            )
            error = error_of(missing, int(item["attempts"]))
            return self._finish(item, TaskStatus.FAILED, {"error": error})
        attempt = int(item["attempts"]) + 1
        now_ms = self._timing.now_ms()
        values: dict[str, Any] = {
            "status": TaskStatus.PROCESSING.value,
            "attempts": attempt,
            "leaseUntil": self._timing.lease_from(now_ms),
            "updatedAt": iso(now_ms),
        }
        if attempt == 1:
            values["startedAt"] = iso(now_ms)
        parent = None
        if "parentSk" in item and attempt == 1:
            parent = ParentCount(item["parentSk"], {"running": 1}, TaskStatus.PROCESSING)
        claimed = self.transition(item, still_in(item), values, parent=parent)
        if claimed is None:
            return 0
        return 1 + self._run(spec, claimed)

    def _run(self, spec: HandlerSpec, item: Item) -> int:
        """Run the handler for the attempt ``item`` was claimed for; write its outcome."""
        attempt = int(item["attempts"])
        try:
            result = self._attempt(spec, item)
        except Exception as exc:
            logger.warning(
                "task %s attempt %d/%s failed: %r", item["sk"], attempt, item["maxAttempts"], exc
            )
            permanent = isinstance(exc, PermanentTaskError)
            return self._fail_attempt(item, error_of(exc, attempt), permanent=permanent)
        return self._finish(item, TaskStatus.COMPLETED, {"result": result}, remove=("error",))

    def _attempt(self, spec: HandlerSpec, item: Item) -> Any:
        """Call the handler; its result as it will be stored (else PermanentTaskError)."""
        try:
            task = task_class(spec.input_model).model_validate(item)
        except ValidationError as exc:
            raise PermanentTaskError(f"stored input does not validate: {exc}") from exc
        task._reporter = lambda progress: self._report_progress(item, progress)
        result = self._handlers.resolve(spec)(task)
        try:
            stored = storable(result, "result")
            self._writes.check({**item, "result": stored, "status": TaskStatus.COMPLETED.value})
        except InvalidTaskInputError as exc:
            raise PermanentTaskError(str(exc)) from exc
        except InterfaceError as exc:  # too large for an item
            raise PermanentTaskError(f"the result cannot be stored: {exc}") from exc
        return stored

    def _report_progress(self, item: Item, progress: Any) -> None:
        stored = storable(progress, "progress")
        now_ms = self._timing.now_ms()
        values = {"progress": stored, "leaseUntil": self._timing.lease_from(now_ms)}
        if self.transition(item, still_in(item), {**values, "updatedAt": iso(now_ms)}) is None:
            raise TaskLeaseLostError(
                f"task {item['sk']} attempt {item['attempts']} lost its lease (reclaimed)"
            )

    def reclaim(self, item: Item) -> int:
        """Count an attempt whose lease expired as failed (→ QUEUED, or FAILED if last)."""
        attempt = int(item["attempts"])
        expired = TaskLeaseExpiredError(
            f"attempt {attempt} did not finish before its lease expired"
        )
        return self._fail_attempt(item, error_of(expired, attempt), held=True)

    def _fail_attempt(
        self, item: Item, error: dict[str, Any], *, permanent: bool = False, held: bool = False
    ) -> int:
        """QUEUED again with the error, or FAILED (``permanent``, or the last attempt).
        ``held``: conditional on the lease ``item`` shows as well (a reclaim)."""
        condition = still_leased(item) if held else still_in(item)
        if permanent or int(item["attempts"]) >= int(item["maxAttempts"]):
            return self._finish(item, TaskStatus.FAILED, {"error": error}, condition=condition)
        values = {"status": TaskStatus.QUEUED.value, "error": error}
        return self._write(item, condition, values, remove=("leaseUntil",))

    def _finish(
        self,
        item: Item,
        status: TaskStatus,
        values: Mapping[str, Any],
        *,
        remove: tuple[str, ...] = (),
        condition: Condition | None = None,
    ) -> int:
        """→ COMPLETED / FAILED, counting a sub-task on its parent."""
        now = self._timing.now_iso()
        values = {**values, "status": status.value, "updatedAt": now, "finishedAt": now}
        parent = None
        if "parentSk" in item:
            delta = {"succeeded" if status == TaskStatus.COMPLETED else "failed": 1}
            if int(item["attempts"]) >= 1:  # counted as running since its first claim
                delta["running"] = -1
            parent = ParentCount(item["parentSk"], delta)
        written = self.transition(
            item,
            condition or still_in(item),
            values,
            remove=("leaseUntil", *remove),
            parent=parent,
        )
        if written is None:
            logger.info("task %s: %s not written, it moved on meanwhile", item["sk"], status)
        return int(written is not None)

    # -- writes --------------------------------------------------------------------------

    def _write(
        self,
        item: Item,
        condition: Condition,
        values: Mapping[str, Any],
        *,
        remove: Sequence[str] = (),
    ) -> int:
        """One transition stamped ``updatedAt``; 1 if it applied, else 0."""
        values = {**values, "updatedAt": self._timing.now_iso()}
        return int(self.transition(item, condition, values, remove=remove) is not None)

    def transition(
        self,
        item: Item,
        condition: Condition,
        values: Mapping[str, Any],
        *,
        remove: Sequence[str] = (),
        parent: ParentCount | None = None,
    ) -> Item | None:
        """One conditional write of ``item`` (with its parent's counters, atomically).

        Returns the item as written, or ``None`` if the condition failed (the task
        moved on: a stale record). Then, if the task turns out to be PROCESSING
        with an expired lease under another attempt, it is reclaimed.
        """
        moved = self._writes.move(item, condition, values, remove=remove, parent=parent)
        if not isinstance(moved, Stale):
            return moved
        current = moved.current
        if current is not None and self._abandoned(current, seen=item):
            self.reclaim(current)
        return None

    def _abandoned(self, current: Item, *, seen: Item) -> bool:
        """``current`` is an attempt other than ``seen``'s whose lease ran out."""
        return (
            current.get("status") == TaskStatus.PROCESSING
            and "subtaskCount" not in current
            and self._timing.lease_expired(current)
            and (current.get("attempts"), current.get("leaseUntil"))
            != (seen.get("attempts"), seen.get("leaseUntil"))
        )
