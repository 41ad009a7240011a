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
    "CommandInput": "core.inputs",
    "CommandPartialInput": "core.inputs",
    "Command": "core.records",
    "DataRecord": "core.records",
    "HistoryRecord": "core.records",
    "InvokeContext": "core.context",
    "Page": "core.records",
    "Settings": "core.settings",
    "DataSyncHandler": "sync.projection",
    "EntitySpec": "core.spec",
    "CqrsError": "core.errors",
    "InterfaceError": "core.errors",
    "InvalidKeyError": "core.errors",
    "InvalidAttributesError": "core.errors",
    "InvalidEventError": "core.errors",
    "ItemTooLargeError": "core.errors",
    "IntegrityError": "core.errors",
    "VersionConflictError": "core.errors",
    "TenantMismatchError": "core.errors",
    "NotFoundError": "core.errors",
    "OperationalError": "core.errors",
    "TableNotFoundError": "core.errors",
    "CommandNotAppliedError": "core.errors",
    "SyncTimeoutError": "core.errors",
    "EntityStuckEvent": "events.notifications",
    "SyncFailure": "sync.failures",
    "SyncFailures": "sync.failures",
    "ThrottledError": "core.errors",
    "ProgrammingError": "core.errors",
    "UnknownEntityError": "core.errors",
    "ConfigurationError": "core.errors",
    "SequenceService": "system.sequences",
    "RotateBy": "system.sequences",
    "SequenceNumber": "system.sequences",
    "SequenceBlock": "system.sequences",
    "InvalidSequenceFormatError": "system.sequences",
    "EventBus": "events.bus",
    "Event": "events.types",
    "parse_event": "events.types",
    "CommandStatusEvent": "events.notifications",
    "Notifier": "events.notifications",
    "Task": "system.tasks",
    "TaskStatus": "system.tasks",
    "TaskService": "system.tasks",
    "PermanentTaskError": "system.tasks",
    "InvalidValueError": "core.errors",
    "InvalidNumberError": "core.errors",
    "ConditionFailedError": "core.errors",
    "TransientError": "core.errors",
    "ServiceUnavailableError": "core.errors",
    "TransactionConflictError": "core.errors",
    "NetworkError": "core.errors",
    "ConcurrentUpdateError": "core.errors",
    "PermanentError": "core.errors",
    "AccessDeniedError": "core.errors",
    "RequestRejectedError": "core.errors",
    "ItemCollectionFullError": "core.errors",
    "MissingCommandError": "core.errors",
    "UnexpectedError": "core.errors",
    "MissingContextError": "core.errors",
    "SYSTEM": "core.context",
    "SystemScope": "core.context",
    "Scope": "core.context",
    "is_retryable": "core.errors",
    "VERSION_FIRST": "core.keys",
    "VERSION_LATEST": "core.keys",
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
    from .core.context import SYSTEM, InvokeContext, Scope, SystemScope
    from .core.errors import (
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
    from .core.inputs import CommandInput, CommandPartialInput
    from .core.keys import VERSION_FIRST, VERSION_LATEST
    from .core.records import Command, DataRecord, HistoryRecord, Page
    from .core.settings import Settings
    from .core.spec import EntitySpec
    from .events.bus import EventBus
    from .events.notifications import CommandStatusEvent, EntityStuckEvent, Notifier
    from .events.types import Event, parse_event
    from .sync.failures import SyncFailure, SyncFailures
    from .sync.projection import DataSyncHandler
    from .system.sequences import (
        InvalidSequenceFormatError,
        RotateBy,
        SequenceBlock,
        SequenceNumber,
        SequenceService,
    )
    from .system.tasks import PermanentTaskError, Task, TaskService, TaskStatus


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cqrs' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
