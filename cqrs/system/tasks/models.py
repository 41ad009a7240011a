"""What tasks look like to callers and handlers: status, task, error, page, sweep report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeAlias, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

from ...core.errors import ProgrammingError

TASK_PK_PREFIX = "TASK"
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 900.0  # Lambda's maximum timeout

#: What the consumer does with a task whose type has no registered handler: ``"fail"`` it
#: (FAILED with ``NoTaskHandlerError``, without using an attempt: the Lambda default) or
#: ``"leave"`` it QUEUED for a process that has the handler (``cqrs dev`` without ``--app``).
Unhandled: TypeAlias = Literal["fail", "leave"]
UNHANDLED_CHOICES: tuple[Unhandled, ...] = ("fail", "leave")

InputT = TypeVar("InputT")


class TaskStatus(StrEnum):
    """Where a task is in its lifecycle."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """COMPLETED or FAILED: the task will not change any more."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class TaskError(_Camel):
    """Why an attempt failed: the exception's class name and message."""

    type: str
    message: str
    attempt: int | None = None


class Task(_Camel, Generic[InputT]):
    """A task as stored. Handlers get ``Task[<input_model>]``, readers ``Task[Any]``.

    A handler may call :meth:`report_progress` on the task it receives. ``result`` and
    ``progress`` are the handler's values as stored (see
    :data:`~cqrs.system.tasks.values.JsonValue`); they are typed ``Any`` so that readers
    can use them without narrowing first.
    """

    pk: str
    sk: str
    id: str
    tenant_code: str
    task_type: str
    name: str
    status: TaskStatus
    #: A ``None`` input is not stored; the default is validated like a stored one.
    input: InputT = Field(default=cast(InputT, None), validate_default=True)
    result: Any = None
    error: TaskError | None = None
    progress: Any = None
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_until: int | None = None
    parent_sk: str | None = None
    subtask_index: int | None = None
    subtask_count: int | None = None
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: str | None = None
    created_ip: str | None = None
    request_id: str | None = None

    _reporter: Callable[[object], None] | None = PrivateAttr(default=None)

    @property
    def is_parent(self) -> bool:
        """Whether this task fanned out into sub-tasks."""
        return self.subtask_count is not None

    @property
    def is_subtask(self) -> bool:
        """Whether this task is a sub-task of another."""
        return self.parent_sk is not None

    def report_progress(self, progress: object) -> None:
        """Store ``progress`` (any JSON-able value) on the task and renew the lease.

        Only the handler running this attempt can call it. One ``UpdateItem``.
        Raises :class:`~cqrs.core.errors.InvalidTaskInputError` (before any write) for a
        value DynamoDB cannot store, :class:`~cqrs.core.errors.TaskLeaseLostError` if the
        task was reclaimed meanwhile.
        """
        if self._reporter is None:
            raise ProgrammingError("only the handler running a task can report its progress")
        self._reporter(progress)
        self.progress = progress


def task_class(model: type[BaseModel] | None) -> type[Task[Any]]:
    """``Task[model]`` (pydantic caches the parametrized class), or ``Task[Any]``."""
    generic: Any = Task
    return Task[Any] if model is None else cast("type[Task[Any]]", generic[model])


class TaskPage(BaseModel):
    """One page of :meth:`TaskService.list`; pass ``cursor`` back for the next page."""

    items: list[Task[Any]]
    cursor: str | None = None


@dataclass
class SweepReport:
    """What :meth:`TaskService.sweep` did: tasks examined, conditional writes that applied,
    and the errors of the repairs that failed."""

    examined: int = 0
    writes: int = 0
    errors: list[BaseException] = field(default_factory=list)
