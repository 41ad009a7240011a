"""The errors of tasks: raised to callers, raised by handlers, or stored as a task's error."""

from __future__ import annotations

from ...core.errors import IntegrityError, InvalidValueError, OperationalError, ProgrammingError


class PermanentTaskError(Exception):
    """Raise from a handler to fail the task now, without using its remaining attempts."""


class InvalidTaskInputError(InvalidValueError):
    """A task input, sub-task input, progress or result that cannot be taken: it does not
    validate against the handler's ``input_model``, is not JSON-able, or is a value
    DynamoDB cannot store (``cause`` keeps the codec's or pydantic's error)."""


class TaskLeaseLostError(IntegrityError):
    """The attempt lost its lease: the task was reclaimed, so this worker must stop."""


class TaskLeaseExpiredError(OperationalError):
    """Stored as a task's error when an attempt's lease expired before it finished."""


class NoTaskHandlerError(ProgrammingError):
    """Stored as a task's error when no handler is registered for its task type."""


class SubtaskFailedError(IntegrityError):
    """Stored as a parent task's error when at least one of its sub-tasks failed."""
