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
    "VERSION_FIRST": "keys",
    "VERSION_LATEST": "keys",
}

__all__ = [
    "VERSION_FIRST",
    "VERSION_LATEST",
    "Command",
    "CommandInput",
    "CommandNotAppliedError",
    "CommandPartialInput",
    "CommandStatusEvent",
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
    "InvalidSequenceFormatError",
    "InvokeContext",
    "ItemTooLargeError",
    "NotFoundError",
    "Notifier",
    "OperationalError",
    "Page",
    "PermanentTaskError",
    "ProgrammingError",
    "RotateBy",
    "SequenceBlock",
    "SequenceNumber",
    "SequenceService",
    "Settings",
    "SyncFailure",
    "SyncFailures",
    "SyncTimeoutError",
    "TableNotFoundError",
    "Task",
    "TaskService",
    "TaskStatus",
    "TenantMismatchError",
    "ThrottledError",
    "UnknownEntityError",
    "VersionConflictError",
    "parse_event",
]

if TYPE_CHECKING:
    from .app import Cqrs, Entity
    from .entity import EntitySpec
    from .errors import (
        CommandNotAppliedError,
        ConfigurationError,
        CqrsError,
        IntegrityError,
        InterfaceError,
        InvalidAttributesError,
        InvalidEventError,
        InvalidKeyError,
        ItemTooLargeError,
        NotFoundError,
        OperationalError,
        ProgrammingError,
        SyncTimeoutError,
        TableNotFoundError,
        TenantMismatchError,
        ThrottledError,
        UnknownEntityError,
        VersionConflictError,
    )
    from .event_bus import EventBus
    from .events import Event, parse_event
    from .keys import VERSION_FIRST, VERSION_LATEST
    from .models import (
        Command,
        CommandInput,
        CommandPartialInput,
        DataRecord,
        HistoryRecord,
        InvokeContext,
        Page,
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
