"""The stored form of a task: a typed record inside, camelCase items only at the store.

:class:`TaskRecord` is what the state machine, the consumer, sub-tasks and writes
pass around (snake_case fields, typed values); :meth:`TaskRecord.from_item` and
:meth:`TaskRecord.to_item` convert at the gateway, and :mod:`.changes` turns a
transition into an update. The stored attribute names are :class:`Attr`'s
(MBC-compatible camelCase), spelled nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ...core.errors import InvalidTaskItemError
from ...core.items import read_record
from ...core.keys import KEY_SEPARATOR
from ...store import Item
from .models import DEFAULT_MAX_ATTEMPTS, TASK_PK_PREFIX, TaskStatus
from .values import JsonValue


class Attr:
    """The stored attribute names of a task item."""

    PK: Final = "pk"
    SK: Final = "sk"
    ID: Final = "id"
    TENANT_CODE: Final = "tenantCode"
    TASK_TYPE: Final = "taskType"
    NAME: Final = "name"
    STATUS: Final = "status"
    INPUT: Final = "input"
    RESULT: Final = "result"
    ERROR: Final = "error"
    PROGRESS: Final = "progress"
    ATTEMPTS: Final = "attempts"
    MAX_ATTEMPTS: Final = "maxAttempts"
    LEASE_UNTIL: Final = "leaseUntil"
    CREATED_AT: Final = "createdAt"
    UPDATED_AT: Final = "updatedAt"
    STARTED_AT: Final = "startedAt"
    FINISHED_AT: Final = "finishedAt"
    CREATED_BY: Final = "createdBy"
    CREATED_IP: Final = "createdIp"
    REQUEST_ID: Final = "requestId"
    PARENT_SK: Final = "parentSk"
    SUBTASK_INDEX: Final = "subtaskIndex"
    SUBTASK_COUNT: Final = "subtaskCount"
    SUBTASK_INPUTS: Final = "subtaskInputs"
    SUCCEEDED: Final = "succeeded"
    FAILED: Final = "failed"
    RUNNING: Final = "running"


_STATUSES = frozenset(s.value for s in TaskStatus)


@dataclass(frozen=True)
class ErrorRecord:
    """A failed attempt as stored in ``error``: the exception's class name and message, and
    the attempt it ended (``None``: no attempt, e.g. a parent failed by its sub-tasks)."""

    type: str
    message: str
    attempt: int | None = None

    @classmethod
    def of(cls, exc: BaseException, attempt: int | None) -> ErrorRecord:
        """The error of ``exc`` ending ``attempt``."""
        return cls(type(exc).__name__, str(exc) or repr(exc), attempt)

    @classmethod
    def from_value(cls, value: object) -> ErrorRecord:
        """The stored map ``{type, message[, attempt]}`` as a record."""
        if not isinstance(value, Mapping):
            raise TypeError(f"error must be a map, got {value!r}")
        return cls(_text(value, "type"), _text(value, "message"), _optional_int(value, "attempt"))

    def to_value(self) -> dict[str, str | int]:
        """The map stored in ``error``."""
        value: dict[str, str | int] = {"type": self.type, "message": self.message}
        if self.attempt is not None:
            value["attempt"] = self.attempt
        return value


@dataclass(frozen=True)
class TaskRecord:
    """A task (or parent, or sub-task) as stored; ``None`` fields are absent attributes
    (a ``None`` ``input``, ``result`` or ``progress`` may also be a stored ``NULL``)."""

    pk: str
    sk: str
    tenant_code: str
    task_type: str
    name: str
    status: TaskStatus
    attempts: int
    created_at: str
    updated_at: str
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    input: JsonValue = None
    result: JsonValue = None
    error: ErrorRecord | None = None
    progress: JsonValue = None
    lease_until: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    created_by: str | None = None
    created_ip: str | None = None
    request_id: str | None = None
    parent_sk: str | None = None
    subtask_index: int | None = None
    subtask_count: int | None = None
    #: The inputs of the sub-tasks until the fan-out is done (then ``None``).
    subtask_inputs: tuple[JsonValue, ...] | None = None
    succeeded: int = 0
    failed: int = 0
    running: int = 0

    @property
    def id(self) -> str:
        """The stored ``id``: ``<pk>#<sk>``."""
        return f"{self.pk}{KEY_SEPARATOR}{self.sk}"

    @property
    def key(self) -> dict[str, str]:
        """The table key of the task."""
        return {Attr.PK: self.pk, Attr.SK: self.sk}

    @property
    def is_parent(self) -> bool:
        """Whether the task fans out into sub-tasks."""
        return self.subtask_count is not None

    @property
    def children_done(self) -> bool:
        """Whether every sub-task of this parent has ended, by its counters."""
        return self.succeeded + self.failed >= (self.subtask_count or 0)

    @classmethod
    def from_item(cls, item: Item) -> TaskRecord:
        """A stored task item (or a stream image of one) as a record.

        Raises :class:`~cqrs.core.errors.InvalidTaskItemError` if an attribute a task
        needs is missing or of the wrong type, or the status is unknown.
        """
        return read_record(item, _record, InvalidTaskItemError, "task item")

    def to_item(self) -> Item:
        """The item as stored, absent attributes left out (as a put leaves out ``None``:
        a ``NULL`` result reads back as ``None`` and is left out too)."""
        item: Item = {
            Attr.PK: self.pk,
            Attr.SK: self.sk,
            Attr.ID: self.id,
            Attr.TENANT_CODE: self.tenant_code,
            Attr.TASK_TYPE: self.task_type,
            Attr.NAME: self.name,
            Attr.STATUS: self.status.value,
            Attr.INPUT: self.input,
            Attr.RESULT: self.result,
            Attr.ERROR: None if self.error is None else self.error.to_value(),
            Attr.PROGRESS: self.progress,
            Attr.ATTEMPTS: self.attempts,
            Attr.MAX_ATTEMPTS: self.max_attempts,
            Attr.LEASE_UNTIL: self.lease_until,
            Attr.PARENT_SK: self.parent_sk,
            Attr.SUBTASK_INDEX: self.subtask_index,
            Attr.CREATED_AT: self.created_at,
            Attr.UPDATED_AT: self.updated_at,
            Attr.STARTED_AT: self.started_at,
            Attr.FINISHED_AT: self.finished_at,
            Attr.CREATED_BY: self.created_by,
            Attr.CREATED_IP: self.created_ip,
            Attr.REQUEST_ID: self.request_id,
        }
        if self.is_parent:
            item[Attr.SUBTASK_COUNT] = self.subtask_count
            if self.subtask_inputs is not None:
                item[Attr.SUBTASK_INPUTS] = list(self.subtask_inputs)
            item.update({Attr.SUCCEEDED: self.succeeded, Attr.FAILED: self.failed})
            item[Attr.RUNNING] = self.running
        return {name: value for name, value in item.items() if value is not None}


def is_task_item(item: Item) -> bool:
    """Whether a stream image is a task item (not some other item in the table)."""
    pk = item.get(Attr.PK)
    return (
        isinstance(pk, str)
        and pk.startswith(TASK_PK_PREFIX + KEY_SEPARATOR)
        and Attr.STATUS in item
        and Attr.TASK_TYPE in item
        and Attr.ATTEMPTS in item
    )


def has_known_status(item: Item) -> bool:
    """Whether the item's status is one of :class:`TaskStatus` (a newer version, or
    another system, may write others)."""
    return item.get(Attr.STATUS) in _STATUSES


def task_or_none(item: Item | None) -> TaskRecord | None:
    """A task item as a record; ``None`` for no item or one whose status is unknown."""
    return TaskRecord.from_item(item) if item is not None and has_known_status(item) else None


def _record(item: Item) -> TaskRecord:
    """The record of a stored item, every attribute checked."""
    inputs = item.get(Attr.SUBTASK_INPUTS)
    if inputs is not None and not isinstance(inputs, list):
        raise TypeError(f"{Attr.SUBTASK_INPUTS} must be a list, got {inputs!r}")
    error = item.get(Attr.ERROR)
    return TaskRecord(
        pk=_text(item, Attr.PK),
        sk=_text(item, Attr.SK),
        tenant_code=_text(item, Attr.TENANT_CODE),
        task_type=_text(item, Attr.TASK_TYPE),
        name=_text(item, Attr.NAME),
        status=TaskStatus(_text(item, Attr.STATUS)),
        attempts=_int(item, Attr.ATTEMPTS),
        max_attempts=_int(item, Attr.MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS),
        created_at=_text(item, Attr.CREATED_AT),
        updated_at=_text(item, Attr.UPDATED_AT),
        input=item.get(Attr.INPUT),
        result=item.get(Attr.RESULT),
        error=None if error is None else ErrorRecord.from_value(error),
        progress=item.get(Attr.PROGRESS),
        lease_until=_optional_int(item, Attr.LEASE_UNTIL),
        started_at=_optional_text(item, Attr.STARTED_AT),
        finished_at=_optional_text(item, Attr.FINISHED_AT),
        created_by=_optional_text(item, Attr.CREATED_BY),
        created_ip=_optional_text(item, Attr.CREATED_IP),
        request_id=_optional_text(item, Attr.REQUEST_ID),
        parent_sk=_optional_text(item, Attr.PARENT_SK),
        subtask_index=_optional_int(item, Attr.SUBTASK_INDEX),
        subtask_count=_optional_int(item, Attr.SUBTASK_COUNT),
        subtask_inputs=None if inputs is None else tuple(inputs),
        succeeded=_int(item, Attr.SUCCEEDED, 0),
        failed=_int(item, Attr.FAILED, 0),
        running=_int(item, Attr.RUNNING, 0),
    )


def _text(item: Mapping[str, object], name: str) -> str:
    value = item[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


def _optional_text(item: Mapping[str, object], name: str) -> str | None:
    return None if item.get(name) is None else _text(item, name)


def _optional_int(item: Mapping[str, object], name: str) -> int | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return value


def _int(item: Mapping[str, object], name: str, default: int | None = None) -> int:
    value = _optional_int(item, name)
    if value is not None:
        return value
    if default is None:
        raise KeyError(name)
    return default
