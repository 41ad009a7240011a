"""The task service (``app.tasks``): register handlers, create and read tasks, drive them."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from ...core.context import Scope
from ...core.errors import ConditionFailedError, InterfaceError
from ...core.keys import KEY_SEPARATOR, check_tenant, validate_part
from ...core.ulid import UlidFactory
from ...read.cursor import decode_cursor, encode_cursor
from ...store import Condition, Item, Store, absent, begins_with, equals, one_of
from . import consumer
from .handlers import HandlerBuilder, Handlers, HandlerTarget
from .items import as_parent, check_task_sk, new_task, task_pk
from .machine import TaskMachine
from .models import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    UNHANDLED_CHOICES,
    SweepReport,
    Task,
    TaskPage,
    TaskStatus,
    Unhandled,
)
from .records import Attr, TaskRecord
from .timing import Timing, iso
from .values import JsonValue, storable
from .writes import TaskWrites

if TYPE_CHECKING:
    from ...store.stream_records import StreamRecord

logger = logging.getLogger("cqrs.system.tasks")

H = TypeVar("H", bound=HandlerTarget)

_UNFINISHED = one_of(
    Attr.STATUS, (TaskStatus.CREATED.value, TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value)
)


class TaskService:
    """Creates, reads and runs tasks. Get it as ``app.tasks``.

    ``clock`` (epoch seconds), ``lease_seconds``, ``default_max_attempts`` and
    ``unhandled`` are plain attributes: set them to change the defaults (tests swap
    the clock).

    ``unhandled`` says what consuming does with a task whose type has no registered
    handler (:data:`~cqrs.system.tasks.Unhandled`): ``"fail"`` (the default, as on
    Lambda) writes it FAILED with :class:`~cqrs.core.errors.NoTaskHandlerError`;
    ``"leave"`` leaves it QUEUED, untouched, for a process that has the handler, and
    logs one warning per task type. ``cqrs dev`` without ``--app`` runs with ``"leave"``.
    """

    def __init__(
        self,
        store: Store,
        table_name: str,
        *,
        build: HandlerBuilder | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        unhandled: Unhandled = "fail",
    ) -> None:
        self._store = store
        self.table_name = table_name
        self.default_max_attempts = max_attempts
        self._timing = Timing(clock, lease_seconds)
        self._handlers = Handlers(build or (lambda cls: cls()))
        self._writes = TaskWrites(store, table_name, self._timing)
        self._machine = TaskMachine(self._writes, self._handlers, self._timing)
        self._ulid = UlidFactory(lambda: self._timing.clock())
        self.unhandled = unhandled

    @property
    def clock(self) -> Callable[[], float]:
        """The clock, in epoch seconds."""
        return self._timing.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._timing.clock = clock

    @property
    def lease_seconds(self) -> float:
        """How long a claimed attempt (or its last progress report) holds the task."""
        return self._timing.lease_seconds

    @lease_seconds.setter
    def lease_seconds(self, seconds: float) -> None:
        self._timing.lease_seconds = seconds

    @property
    def unhandled(self) -> Unhandled:
        """What consuming does with a task type without a handler: ``"fail"`` or ``"leave"``."""
        return self._machine.unhandled

    @unhandled.setter
    def unhandled(self, policy: Unhandled) -> None:
        if policy not in UNHANDLED_CHOICES:
            raise InterfaceError(f"unhandled must be one of {UNHANDLED_CHOICES}, got {policy!r}")
        self._machine.unhandled = policy

    # -- handlers --------------------------------------------------------------------

    def handler(
        self, task_type: str, *, input_model: type[BaseModel] | None = None
    ) -> Callable[[H], H]:
        """Decorator registering a function ``f(task) -> result`` or a class with
        ``run(self, task) -> result`` (built by the app's injector) for ``task_type``."""

        def register(target: H) -> H:
            self.register(task_type, target, input_model=input_model)
            return target

        return register

    def register(
        self, task_type: str, target: HandlerTarget, *, input_model: type[BaseModel] | None = None
    ) -> None:
        """Register the handler of ``task_type``: a function, a class or an object with ``run``.

        ``input_model`` validates inputs at :meth:`create` and types ``task.input``.
        """
        self._handlers.register(task_type, target, input_model)

    @property
    def task_types(self) -> builtins.list[str]:
        """The task types with a registered handler."""
        return self._handlers.task_types

    # -- writing ---------------------------------------------------------------------

    def create(
        self,
        tenant_code: str,
        task_type: str,
        input: object = None,
        *,
        subtasks: Sequence[object] | None = None,
        name: str | None = None,
        max_attempts: int | None = None,
        context: Scope,
    ) -> Task[Any]:
        """Create a task (status CREATED); the tasks stream runs it. One ``PutItem``.

        ``input`` is a plain value or a pydantic model. With ``subtasks`` (a non-empty
        list of inputs) the task is a parent: one sub-task per entry runs the
        ``task_type`` handler, and the parent ends when all of them have. Raises,
        before any request: :class:`~cqrs.core.errors.MissingContextError`,
        :class:`~cqrs.core.errors.TenantMismatchError`, :class:`~cqrs.core.errors.InvalidKeyError`,
        :class:`~cqrs.system.tasks.InvalidTaskInputError` (an input that does not validate or
        cannot be stored) or :class:`~cqrs.core.errors.ItemTooLargeError`.
        """
        validate_part("tenant code", tenant_code)
        validate_part("task type", task_type)
        tenant_code = check_tenant(tenant_code, context, is_pk=False)  # lowercased, as MBC
        attempts = self.default_max_attempts if max_attempts is None else max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InterfaceError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        model = self._handlers.input_model(task_type)
        children = None if subtasks is None else _subtask_inputs(subtasks, model)
        pk, _ = task_pk(tenant_code)
        sk = f"{task_type}{KEY_SEPARATOR}{self._ulid()}"
        task = new_task(
            pk,
            sk,
            tenant_code=tenant_code,
            task_type=task_type,
            name=name or task_type,
            input=storable(input, "input", model if children is None else None),
            max_attempts=attempts,
            now=self._timing.now_iso(),
            context=context,
        )
        if children is not None:
            task = as_parent(task, children)
        if not self._writes.put_new(task):
            raise ConditionFailedError(f"{self.table_name}: task {pk} / {sk} exists already")
        return _public(task.to_item())

    # -- reading ---------------------------------------------------------------------

    def get(
        self, tenant_code_or_pk: str, sk: str, *, consistent: bool = False, context: Scope
    ) -> Task[Any] | None:
        """One task (or sub-task) by ``(tenant_code, sk)`` or ``(pk, sk)``, or ``None``."""
        pk = self._scoped_pk(tenant_code_or_pk, context)
        check_task_sk(sk)
        key = {Attr.PK: pk, Attr.SK: sk}
        item = self._store.get(self.table_name, key, consistent=consistent)
        return _public(item) if item is not None else None

    def list(
        self,
        tenant_code: str,
        task_type: str | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        include_subtasks: bool = False,
        context: Scope,
    ) -> TaskPage:
        """A tenant's tasks, newest first within a task type; pass ``cursor`` for more.

        Without ``task_type`` the tasks come grouped by type (in descending type
        order), each group newest first: the sort key starts with the type.
        Sub-tasks are left out unless ``include_subtasks``.
        """
        pk = self._scoped_pk(tenant_code, context)
        if task_type is not None:
            validate_part("task type", task_type)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InterfaceError(f"limit must be an int >= 1, got {limit!r}")
        prefix = None if task_type is None else task_type + KEY_SEPARATOR
        key: Condition = equals(Attr.PK, pk)
        if prefix is not None:
            key = key & begins_with(Attr.SK, prefix)
        # A cursor is a position inside one partition: refuse one from another tenant (or
        # task type) instead of handing it to DynamoDB (engines differ on foreign keys).
        page = self._store.query_page(
            self.table_name,
            key,
            limit=limit,
            start=decode_cursor(cursor, pk, prefix) if cursor else None,
            filter=None if include_subtasks else absent(Attr.PARENT_SK),
            descending=True,
        )
        items = [_public(i) for i in page.items]
        return TaskPage(items=items, cursor=encode_cursor(page.last_key))

    def subtasks(
        self, tenant_code_or_pk: str, sk: str, *, context: Scope
    ) -> builtins.list[Task[Any]]:
        """Every sub-task of the parent task ``sk``, by index."""
        pk = self._scoped_pk(tenant_code_or_pk, context)
        check_task_sk(sk)
        key = equals(Attr.PK, pk) & begins_with(Attr.SK, sk + KEY_SEPARATOR)
        items = self._store.query(self.table_name, key)
        tasks = [_public(i) for i in items if Attr.SUBTASK_INDEX in i]
        return sorted(tasks, key=lambda t: t.subtask_index or 0)

    # -- driving ---------------------------------------------------------------------

    def consume(self, records: Sequence[StreamRecord]) -> builtins.list[str]:
        """Drive tasks from tasks-table stream records; return the sequence numbers of
        the records to retry (their error is transient), for Lambda's partial batch
        response. A permanent error is logged and its record acknowledged.

        Registered with the synchronizer by ``app.tasks``; handler errors are not
        failures here (they are stored on the task).
        """
        return consumer.consume(records, lambda image: self._machine.step_item(image, run=True))

    def sweep(self, tenant_code: str, *, stale_after: float = 300.0, context: Scope) -> SweepReport:
        """Repair a tenant's stuck tasks; never runs a handler. Run it periodically.

        Reclaims PROCESSING tasks whose lease expired (→ QUEUED, or FAILED on their
        last attempt), completes parents whose sub-tasks all ended, and re-triggers
        CREATED / QUEUED tasks not updated for ``stale_after`` seconds (a CREATED
        task is queued or fanned out; a QUEUED one is touched so that a new stream
        record runs it). Reads every unfinished task of the tenant (a ``Query``
        with a filter) and writes one conditional update per repair.
        """
        pk = self._scoped_pk(tenant_code, context)
        report = SweepReport()
        cutoff = iso(self._timing.now_ms() - int(stale_after * 1000))
        query = self._store.query(self.table_name, equals(Attr.PK, pk), filter=_UNFINISHED)
        for item in list(query):
            report.examined += 1
            try:
                task = TaskRecord.from_item(item)
                waiting = task.status in (TaskStatus.CREATED, TaskStatus.QUEUED)
                if waiting and task.updated_at > cutoff:
                    continue  # its stream record is probably still on its way
                report.writes += self._machine.step(task, run=False)
            except Exception as exc:
                logger.exception("sweep of %s / %s failed", item[Attr.PK], item[Attr.SK])
                report.errors.append(exc)
        return report

    def _scoped_pk(self, tenant_code_or_pk: str, context: Scope) -> str:
        pk, tenant = task_pk(tenant_code_or_pk)
        check_tenant(tenant, context, is_pk=False)
        return pk


def _public(item: Item) -> Task[Any]:
    """A stored task as callers read it (its input as stored, not validated)."""
    return Task[Any].model_validate(item)


def _subtask_inputs(subtasks: Sequence[object], model: type[BaseModel] | None) -> list[JsonValue]:
    if isinstance(subtasks, str | bytes) or not isinstance(subtasks, Sequence):
        raise InterfaceError("subtasks must be a list of sub-task inputs")
    if not subtasks:
        raise InterfaceError("subtasks must not be empty")
    return [storable(s, f"subtasks[{i}]", model) for i, s in enumerate(subtasks)]
