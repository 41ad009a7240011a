"""cqrs: CQRS and event sourcing on Amazon DynamoDB, compatible with MBC CQRS Serverless.

Public names are imported lazily so that ``import cqrs.aws`` (the Lambda
handler) loads only what it uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Cqrs": "app",
    "Entity": "app",
    "CommandInput": "models",
    "CommandPartialInput": "models",
    "Command": "models",
    "DataRecord": "models",
    "HistoryRecord": "models",
    "InvokeContext": "models",
    "Page": "models",
    "Settings": "settings",
    "DataSyncHandler": "projection",
    "EntitySpec": "entity",
    "CqrsError": "errors",
    "InterfaceError": "errors",
    "InvalidKeyError": "errors",
    "InvalidAttributesError": "errors",
    "InvalidEventError": "errors",
    "ItemTooLargeError": "errors",
    "IntegrityError": "errors",
    "VersionConflictError": "errors",
    "TenantMismatchError": "errors",
    "NotFoundError": "errors",
    "OperationalError": "errors",
    "TableNotFoundError": "errors",
    "CommandNotAppliedError": "errors",
    "SyncTimeoutError": "errors",
    "EntityStuckEvent": "notifications",
    "SyncFailure": "sync_failures",
    "SyncFailures": "sync_failures",
    "ThrottledError": "errors",
    "ProgrammingError": "errors",
    "UnknownEntityError": "errors",
    "ConfigurationError": "errors",
    "SequenceService": "sequences",
    "RotateBy": "sequences",
    "SequenceNumber": "sequences",
    "SequenceBlock": "sequences",
    "InvalidSequenceFormatError": "sequences",
    "EventBus": "event_bus",
    "Event": "events",
    "parse_event": "events",
    "CommandStatusEvent": "notifications",
    "Notifier": "notifications",
    "Task": "tasks",
    "TaskStatus": "tasks",
    "TaskService": "tasks",
    "PermanentTaskError": "tasks",
    "InvalidValueError": "errors",
    "InvalidNumberError": "errors",
    "ConditionFailedError": "errors",
    "TransientError": "errors",
    "ServiceUnavailableError": "errors",
    "TransactionConflictError": "errors",
    "NetworkError": "errors",
    "ConcurrentUpdateError": "errors",
    "PermanentError": "errors",
    "AccessDeniedError": "errors",
    "RequestRejectedError": "errors",
    "ItemCollectionFullError": "errors",
    "MissingCommandError": "errors",
    "UnexpectedError": "errors",
    "MissingContextError": "errors",
    "SYSTEM": "models",
    "SystemScope": "models",
    "Scope": "models",
    "is_retryable": "errors",
    "VERSION_FIRST": "keys",
    "VERSION_LATEST": "keys",
}

__all__ = [
    "SYSTEM",
    "VERSION_FIRST",
    "VERSION_LATEST",
    "AccessDeniedError",
    "Command",
    "CommandInput",
    "CommandNotAppliedError",
    "CommandPartialInput",
    "CommandStatusEvent",
    "ConcurrentUpdateError",
    "ConditionFailedError",
    "ConfigurationError",
    "Cqrs",
    "CqrsError",
    "DataRecord",
    "DataSyncHandler",
    "Entity",
    "EntitySpec",
    "EntityStuckEvent",
    "Event",
    "EventBus",
    "HistoryRecord",
    "IntegrityError",
    "InterfaceError",
    "InvalidAttributesError",
    "InvalidEventError",
    "InvalidKeyError",
    "InvalidNumberError",
    "InvalidSequenceFormatError",
    "InvalidValueError",
    "InvokeContext",
    "ItemCollectionFullError",
    "ItemTooLargeError",
    "MissingCommandError",
    "MissingContextError",
    "NetworkError",
    "NotFoundError",
    "Notifier",
    "OperationalError",
    "Page",
    "PermanentError",
    "PermanentTaskError",
    "ProgrammingError",
    "RequestRejectedError",
    "RotateBy",
    "Scope",
    "SequenceBlock",
    "SequenceNumber",
    "SequenceService",
    "ServiceUnavailableError",
    "Settings",
    "SyncFailure",
    "SyncFailures",
    "SyncTimeoutError",
    "SystemScope",
    "TableNotFoundError",
    "Task",
    "TaskService",
    "TaskStatus",
    "TenantMismatchError",
    "ThrottledError",
    "TransactionConflictError",
    "TransientError",
    "UnexpectedError",
    "UnknownEntityError",
    "VersionConflictError",
    "is_retryable",
    "parse_event",
]

if TYPE_CHECKING:
    from .app import Cqrs, Entity
    from .entity import EntitySpec
    from .errors import (
        AccessDeniedError,
        CommandNotAppliedError,
        ConcurrentUpdateError,
        ConditionFailedError,
        ConfigurationError,
        CqrsError,
        IntegrityError,
        InterfaceError,
        InvalidAttributesError,
        InvalidEventError,
        InvalidKeyError,
        InvalidNumberError,
        InvalidValueError,
        ItemCollectionFullError,
        ItemTooLargeError,
        MissingCommandError,
        MissingContextError,
        NetworkError,
        NotFoundError,
        OperationalError,
        PermanentError,
        ProgrammingError,
        RequestRejectedError,
        ServiceUnavailableError,
        SyncTimeoutError,
        TableNotFoundError,
        TenantMismatchError,
        ThrottledError,
        TransactionConflictError,
        TransientError,
        UnexpectedError,
        UnknownEntityError,
        VersionConflictError,
        is_retryable,
    )
    from .event_bus import EventBus
    from .events import Event, parse_event
    from .keys import VERSION_FIRST, VERSION_LATEST
    from .models import (
        SYSTEM,
        Command,
        CommandInput,
        CommandPartialInput,
        DataRecord,
        HistoryRecord,
        InvokeContext,
        Page,
        Scope,
        SystemScope,
    )
    from .notifications import CommandStatusEvent, EntityStuckEvent, Notifier
    from .projection import DataSyncHandler
    from .sequences import (
        InvalidSequenceFormatError,
        RotateBy,
        SequenceBlock,
        SequenceNumber,
        SequenceService,
    )
    from .settings import Settings
    from .sync_failures import SyncFailure, SyncFailures
    from .tasks import PermanentTaskError, Task, TaskService, TaskStatus


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cqrs' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
