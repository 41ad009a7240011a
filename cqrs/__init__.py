"""cqrs: CQRS and event sourcing on Amazon DynamoDB, compatible with MBC CQRS Serverless.

Public names are imported lazily so that ``import cqrs.aws`` (the Lambda
handler) loads only what it uses. ``_EXPORTS`` is the one list of public names:
``__all__`` is derived from it, and the ``TYPE_CHECKING`` imports give type checkers
the same names (``tests/test_public_names.py`` keeps the two equal).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → the module (under ``cqrs``) that defines it.
_EXPORTS: dict[str, str] = {
    "Cqrs": "app",
    "EntityServices": "app",
    "load_app": "app",
    "InvokeContext": "core.context",
    "SYSTEM": "core.context",
    "Scope": "core.context",
    "SystemScope": "core.context",
    "TenantRole": "core.context",
    "AccessDeniedError": "core.errors",
    "CommandNotAppliedError": "core.errors",
    "ConcurrentUpdateError": "core.errors",
    "ConditionFailedError": "core.errors",
    "ConfigurationError": "core.errors",
    "InvalidSettingsError": "core.errors",
    "CqrsError": "core.errors",
    "IntegrityError": "core.errors",
    "InterfaceError": "core.errors",
    "InvalidAttributesError": "core.errors",
    "InvalidClaimsError": "core.errors",
    "InvalidEventError": "core.errors",
    "InvalidKeyError": "core.errors",
    "InvalidNumberError": "core.errors",
    "InvalidSequenceFormatError": "core.errors",
    "InvalidSequenceItemError": "core.errors",
    "InvalidTaskInputError": "core.errors",
    "InvalidTaskItemError": "core.errors",
    "InvalidValueError": "core.errors",
    "ItemCollectionFullError": "core.errors",
    "ItemTooLargeError": "core.errors",
    "MissingCommandError": "core.errors",
    "MissingAttributesObjectError": "core.errors",
    "MissingContextError": "core.errors",
    "NetworkError": "core.errors",
    "NoTaskHandlerError": "core.errors",
    "NotFoundError": "core.errors",
    "OperationalError": "core.errors",
    "PermanentError": "core.errors",
    "PermanentTaskError": "core.errors",
    "ProgrammingError": "core.errors",
    "RequestRejectedError": "core.errors",
    "ServiceUnavailableError": "core.errors",
    "SubtaskFailedError": "core.errors",
    "SyncTimeoutError": "core.errors",
    "TableNotFoundError": "core.errors",
    "TaskLeaseExpiredError": "core.errors",
    "TaskLeaseLostError": "core.errors",
    "TenantForbiddenError": "core.errors",
    "TenantMismatchError": "core.errors",
    "ThrottledError": "core.errors",
    "TransactionConflictError": "core.errors",
    "TransientError": "core.errors",
    "UnexpectedError": "core.errors",
    "UnknownEntityError": "core.errors",
    "VersionConflictError": "core.errors",
    "is_retryable": "core.errors",
    "CommandInput": "core.inputs",
    "CommandPartialInput": "core.inputs",
    "CommandItem": "core.items",
    "DataItem": "core.items",
    "AttributesRef": "core.large",
    "VERSION_FIRST": "core.keys",
    "VERSION_LATEST": "core.keys",
    "Command": "core.records",
    "DataRecord": "core.records",
    "HistoryRecord": "core.records",
    "Page": "core.records",
    "Settings": "core.settings",
    "EntitySpec": "core.spec",
    "BatchItemFailure": "events.batch",
    "BatchResult": "events.batch",
    "Failed": "events.batch",
    "PartialBatchResponse": "events.batch",
    "Skipped": "events.batch",
    "Succeeded": "events.batch",
    "AppSyncClient": "events.appsync",
    "DispatchReport": "events.bus",
    "EventBus": "events.bus",
    "CommandStatusEvent": "events.notifications",
    "EntityStuckEvent": "events.notifications",
    "Notifier": "events.notifications",
    "RecordRejectedEvent": "events.notifications",
    "Event": "events.types",
    "parse_event": "events.types",
    "DataService": "read.data",
    "HistoryService": "read.history",
    "EntityTables": "schema.definitions",
    "Schema": "schema.definitions",
    "TableDefinition": "schema.definitions",
    "TableChange": "schema.provision",
    "Clients": "store.clients",
    "AttributeObjects": "store.objects",
    "Condition": "store.expressions",
    "Placeholders": "store.expressions",
    "Update": "store.expressions",
    "Store": "store.gateway",
    "CancellationReason": "store.results",
    "Cancelled": "store.results",
    "Conflict": "store.results",
    "TxUpdate": "store.results",
    "Written": "store.results",
    "RejectedRecord": "store.stream_records",
    "StreamRecord": "store.stream_records",
    "RedriveResult": "sync.failures",
    "SyncFailure": "sync.failures",
    "SyncFailures": "sync.failures",
    "CheckpointStore": "sync.follower",
    "PollReport": "sync.follower",
    "StreamFollower": "sync.follower",
    "DataSyncHandler": "sync.projection",
    "EntityOutcome": "sync.projection",
    "Projector": "sync.projection",
    "RebuildReport": "sync.rebuild",
    "RejectedRecords": "sync.rejected",
    "BatchReport": "sync.synchronizer",
    "Verdict": "sync.synchronizer",
    "RotateBy": "system.sequences",
    "SequenceBlock": "system.sequences",
    "SequenceFormat": "system.sequences",
    "SequenceNumber": "system.sequences",
    "SequenceService": "system.sequences",
    "FormatToken": "system.sequences.formats",
    "SweepReport": "system.tasks",
    "Task": "system.tasks",
    "TaskError": "system.tasks",
    "TaskHandler": "system.tasks",
    "TaskPage": "system.tasks",
    "TaskService": "system.tasks",
    "TaskStatus": "system.tasks",
    "CommandService": "write.commands",
    "CommandLog": "write.log",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (`X as X`: an explicit re-export)
    from .app import Cqrs as Cqrs
    from .app import EntityServices as EntityServices
    from .app import load_app as load_app
    from .core.context import SYSTEM as SYSTEM
    from .core.context import InvokeContext as InvokeContext
    from .core.context import Scope as Scope
    from .core.context import SystemScope as SystemScope
    from .core.context import TenantRole as TenantRole
    from .core.errors import AccessDeniedError as AccessDeniedError
    from .core.errors import CommandNotAppliedError as CommandNotAppliedError
    from .core.errors import ConcurrentUpdateError as ConcurrentUpdateError
    from .core.errors import ConditionFailedError as ConditionFailedError
    from .core.errors import ConfigurationError as ConfigurationError
    from .core.errors import CqrsError as CqrsError
    from .core.errors import IntegrityError as IntegrityError
    from .core.errors import InterfaceError as InterfaceError
    from .core.errors import InvalidAttributesError as InvalidAttributesError
    from .core.errors import InvalidClaimsError as InvalidClaimsError
    from .core.errors import InvalidEventError as InvalidEventError
    from .core.errors import InvalidKeyError as InvalidKeyError
    from .core.errors import InvalidNumberError as InvalidNumberError
    from .core.errors import InvalidSequenceFormatError as InvalidSequenceFormatError
    from .core.errors import InvalidSequenceItemError as InvalidSequenceItemError
    from .core.errors import InvalidSettingsError as InvalidSettingsError
    from .core.errors import InvalidTaskInputError as InvalidTaskInputError
    from .core.errors import InvalidTaskItemError as InvalidTaskItemError
    from .core.errors import InvalidValueError as InvalidValueError
    from .core.errors import ItemCollectionFullError as ItemCollectionFullError
    from .core.errors import ItemTooLargeError as ItemTooLargeError
    from .core.errors import MissingAttributesObjectError as MissingAttributesObjectError
    from .core.errors import MissingCommandError as MissingCommandError
    from .core.errors import MissingContextError as MissingContextError
    from .core.errors import NetworkError as NetworkError
    from .core.errors import NoTaskHandlerError as NoTaskHandlerError
    from .core.errors import NotFoundError as NotFoundError
    from .core.errors import OperationalError as OperationalError
    from .core.errors import PermanentError as PermanentError
    from .core.errors import PermanentTaskError as PermanentTaskError
    from .core.errors import ProgrammingError as ProgrammingError
    from .core.errors import RequestRejectedError as RequestRejectedError
    from .core.errors import ServiceUnavailableError as ServiceUnavailableError
    from .core.errors import SubtaskFailedError as SubtaskFailedError
    from .core.errors import SyncTimeoutError as SyncTimeoutError
    from .core.errors import TableNotFoundError as TableNotFoundError
    from .core.errors import TaskLeaseExpiredError as TaskLeaseExpiredError
    from .core.errors import TaskLeaseLostError as TaskLeaseLostError
    from .core.errors import TenantForbiddenError as TenantForbiddenError
    from .core.errors import TenantMismatchError as TenantMismatchError
    from .core.errors import ThrottledError as ThrottledError
    from .core.errors import TransactionConflictError as TransactionConflictError
    from .core.errors import TransientError as TransientError
    from .core.errors import UnexpectedError as UnexpectedError
    from .core.errors import UnknownEntityError as UnknownEntityError
    from .core.errors import VersionConflictError as VersionConflictError
    from .core.errors import is_retryable as is_retryable
    from .core.inputs import CommandInput as CommandInput
    from .core.inputs import CommandPartialInput as CommandPartialInput
    from .core.items import CommandItem as CommandItem
    from .core.items import DataItem as DataItem
    from .core.keys import VERSION_FIRST as VERSION_FIRST
    from .core.keys import VERSION_LATEST as VERSION_LATEST
    from .core.large import AttributesRef as AttributesRef
    from .core.records import Command as Command
    from .core.records import DataRecord as DataRecord
    from .core.records import HistoryRecord as HistoryRecord
    from .core.records import Page as Page
    from .core.settings import Settings as Settings
    from .core.spec import EntitySpec as EntitySpec
    from .events.appsync import AppSyncClient as AppSyncClient
    from .events.batch import BatchItemFailure as BatchItemFailure
    from .events.batch import BatchResult as BatchResult
    from .events.batch import Failed as Failed
    from .events.batch import PartialBatchResponse as PartialBatchResponse
    from .events.batch import Skipped as Skipped
    from .events.batch import Succeeded as Succeeded
    from .events.bus import DispatchReport as DispatchReport
    from .events.bus import EventBus as EventBus
    from .events.notifications import CommandStatusEvent as CommandStatusEvent
    from .events.notifications import EntityStuckEvent as EntityStuckEvent
    from .events.notifications import Notifier as Notifier
    from .events.notifications import RecordRejectedEvent as RecordRejectedEvent
    from .events.types import Event as Event
    from .events.types import parse_event as parse_event
    from .read.data import DataService as DataService
    from .read.history import HistoryService as HistoryService
    from .schema.definitions import EntityTables as EntityTables
    from .schema.definitions import Schema as Schema
    from .schema.definitions import TableDefinition as TableDefinition
    from .schema.provision import TableChange as TableChange
    from .store.clients import Clients as Clients
    from .store.expressions import Condition as Condition
    from .store.expressions import Placeholders as Placeholders
    from .store.expressions import Update as Update
    from .store.gateway import Store as Store
    from .store.objects import AttributeObjects as AttributeObjects
    from .store.results import CancellationReason as CancellationReason
    from .store.results import Cancelled as Cancelled
    from .store.results import Conflict as Conflict
    from .store.results import TxUpdate as TxUpdate
    from .store.results import Written as Written
    from .store.stream_records import RejectedRecord as RejectedRecord
    from .store.stream_records import StreamRecord as StreamRecord
    from .sync.failures import RedriveResult as RedriveResult
    from .sync.failures import SyncFailure as SyncFailure
    from .sync.failures import SyncFailures as SyncFailures
    from .sync.follower import CheckpointStore as CheckpointStore
    from .sync.follower import PollReport as PollReport
    from .sync.follower import StreamFollower as StreamFollower
    from .sync.projection import DataSyncHandler as DataSyncHandler
    from .sync.projection import EntityOutcome as EntityOutcome
    from .sync.projection import Projector as Projector
    from .sync.rebuild import RebuildReport as RebuildReport
    from .sync.rejected import RejectedRecords as RejectedRecords
    from .sync.synchronizer import BatchReport as BatchReport
    from .sync.synchronizer import Verdict as Verdict
    from .system.sequences import RotateBy as RotateBy
    from .system.sequences import SequenceBlock as SequenceBlock
    from .system.sequences import SequenceFormat as SequenceFormat
    from .system.sequences import SequenceNumber as SequenceNumber
    from .system.sequences import SequenceService as SequenceService
    from .system.sequences.formats import FormatToken as FormatToken
    from .system.tasks import SweepReport as SweepReport
    from .system.tasks import Task as Task
    from .system.tasks import TaskError as TaskError
    from .system.tasks import TaskHandler as TaskHandler
    from .system.tasks import TaskPage as TaskPage
    from .system.tasks import TaskService as TaskService
    from .system.tasks import TaskStatus as TaskStatus
    from .write.commands import CommandService as CommandService
    from .write.log import CommandLog as CommandLog


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cqrs' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
