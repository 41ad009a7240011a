"""The resources of the SAM template, one builder each: tables, queue, log group, mappings.

Logical IDs come from entity and table kind, never from the table prefix
(:func:`table_logical_id`). The stream handler function and its policy are put
together in :mod:`cqrs.deploy.template` and :mod:`cqrs.deploy.iam`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..core.errors import ConfigurationError
from ..schema.definitions import TableDefinition

#: Stream consumers: table kind -> stream event names the handler needs.
#: Command tables matter when a command is appended (INSERT) or handed back by a failed
#: ``publish_sync`` (one kind of MODIFY: see :func:`stream_filters`); task status
#: changes (MODIFY) drive work too.
CONSUMED_STREAMS: Mapping[str, tuple[str, ...]] = {
    "command": ("INSERT", "MODIFY"),
    "tasks": ("INSERT", "MODIFY"),
}

StreamView = Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES"]

_LOGICAL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,254}$")
_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731)
_RETENTION_DAYS_LONG = (1096, 1827, 2192, 2557, 2922, 3288, 3653)


#: Stream view types the handler can consume: it reads new images only (the synchronizer
#: and the tasks consumer never look at old images), so ``NEW_IMAGE`` is enough.
STREAM_VIEW_TYPES: tuple[StreamView, ...] = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")


@dataclass(frozen=True)
class HandlerSettings:
    """Tunables of the stream handler and its event source mappings, range-checked.

    The mapping defaults, measured in ``bench/README.md`` (sections 1 to 3):

    - ``batch_size`` 100 (was 10): one invocation writes its history items in full
      ``BatchWriteItem`` requests of 25 and reads handlers' data versions in one
      ``BatchGetItem`` (100 keys); past 100 nothing more amortises, while a failing
      record makes Lambda redeliver the rest of its batch (each redelivered, already
      applied record costs a failed conditional write and a history re-put).
    - ``batching_window_seconds`` 0 (Lambda's default): a window only fills batches
      at moderate rates, where it saves Lambda invocations worth a few percent of
      the DynamoDB bill (capacity units do not depend on the batch), and it adds up
      to its length to the sync lag of every command on a quiet stream. Raise it
      when cost matters more than lag.
    - ``parallelization_factor`` 1: Lambda keeps order per *item*, and every command
      version is an item of its own (``<sk>@<N>``), so with more than one batch per
      shard, versions of one entity can be projected concurrently and out of order:
      still correct, but bursts of versions then cost extra requests and units, and
      handlers may see a version twice. Raise it when ``IteratorAge`` grows.
    - ``stream_view_type`` ``NEW_IMAGE``: the synchronizer and the tasks consumer read
      new images only, so old images would only make records larger.
    """

    memory_size: int = 512
    timeout: int = 60
    batch_size: int = 100
    batching_window_seconds: int = 0  # MaximumBatchingWindowInSeconds
    parallelization_factor: int = 1
    stream_view_type: StreamView = "NEW_IMAGE"
    maximum_retry_attempts: int = 10
    maximum_record_age_seconds: int = 21600
    log_retention_days: int = 30
    sync_max_attempts: int = 5  # CQRS_SYNC_MAX_ATTEMPTS: attempts before an entity is stuck

    def __post_init__(self) -> None:
        _check_range("memory_size", self.memory_size, 128, 10240)
        _check_range("timeout", self.timeout, 1, 900)
        _check_range("batch_size", self.batch_size, 1, 10000)
        _check_range("batching_window_seconds", self.batching_window_seconds, 0, 300)
        _check_range("parallelization_factor", self.parallelization_factor, 1, 10)
        _check_range("maximum_retry_attempts", self.maximum_retry_attempts, 0, 10000)
        _check_range("maximum_record_age_seconds", self.maximum_record_age_seconds, 60, 604800)
        _check_range("log_retention_days", self.log_retention_days, 1, 3653)
        _check_range("sync_max_attempts", self.sync_max_attempts, 1, 10000)
        if self.stream_view_type not in STREAM_VIEW_TYPES:
            raise ConfigurationError(
                f"stream_view_type must be one of {STREAM_VIEW_TYPES} (the handler reads new "
                f"images), got {self.stream_view_type!r}"
            )
        if self.sync_max_attempts > self.maximum_retry_attempts + 1:
            # Lambda would send a poison record to the dead-letter queue before cqrs marks
            # its entity stuck: the alarm and the stuck list would never see it.
            raise ConfigurationError(
                f"sync_max_attempts ({self.sync_max_attempts}) must not exceed Lambda's "
                f"attempts (maximum_retry_attempts + 1 = {self.maximum_retry_attempts + 1})"
            )


@dataclass(frozen=True)
class ResourceNames:
    """Logical IDs of the handler's resources, named after its function."""

    function: str

    @property
    def queue(self) -> str:
        """The dead-letter queue."""
        return f"{self.function}DeadLetterQueue"

    @property
    def log_group(self) -> str:
        """The function's log group."""
        return f"{self.function}LogGroup"

    @property
    def topic(self) -> str:
        """The SNS topic of notifications and alarms (``CQRS_SNS_TOPIC_ARN``)."""
        return f"{self.function}Topic"

    @property
    def sweep(self) -> str:
        """The scheduled task sweep function."""
        return f"{self.function}Sweep"

    @property
    def sweep_log_group(self) -> str:
        """The sweep function's log group."""
        return f"{self.sweep}LogGroup"


def table_resource(
    definition: TableDefinition, stream_view_type: StreamView | None = None
) -> dict[str, Any]:
    """The ``AWS::DynamoDB::Table`` resource of one definition (retained on delete).

    ``stream_view_type`` replaces the definition's view type on a table that has a
    stream and whose stream the handler consumes (:data:`CONSUMED_STREAMS`).
    """
    spec = definition.spec
    props: dict[str, Any] = {
        "TableName": definition.name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [dict(k) for k in spec["KeySchema"]],
        "AttributeDefinitions": [dict(a) for a in spec["AttributeDefinitions"]],
    }
    if definition.indexes:
        props["GlobalSecondaryIndexes"] = [_index(i) for i in definition.indexes]
    view = definition.stream_view_type
    if view and stream_view_type and definition.kind in CONSUMED_STREAMS:
        view = stream_view_type
    if view:
        props["StreamSpecification"] = {"StreamViewType": view}
    if definition.ttl_attribute:
        props["TimeToLiveSpecification"] = {
            "AttributeName": definition.ttl_attribute,
            "Enabled": True,
        }
    props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    props["DeletionProtectionEnabled"] = True
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def table_logical_id(definition: TableDefinition) -> str:
    """Logical ID of a table: ``OrderCommandTable``, ``TasksTable`` (prefix-independent)."""
    if definition.entity is None:
        return f"{camel(definition.kind)}Table"
    return f"{camel(definition.entity)}{camel(definition.kind)}Table"


def logical_ids(definitions: Iterable[TableDefinition]) -> dict[str, TableDefinition]:
    """Every table by its logical ID; two tables mapping to one ID are refused."""
    out: dict[str, TableDefinition] = {}
    for definition in definitions:
        logical_id = table_logical_id(definition)
        check_logical_id(logical_id)
        if logical_id in out:
            raise ConfigurationError(
                f"tables {out[logical_id].name!r} and {definition.name!r} both map to the "
                f"logical ID {logical_id!r}: rename one entity"
            )
        out[logical_id] = definition
    return out


def _index(spec: Mapping[str, Any]) -> dict[str, Any]:
    # On-demand tables take no ProvisionedThroughput; keep only what CFN accepts here.
    return {
        "IndexName": spec["IndexName"],
        "KeySchema": [dict(k) for k in spec["KeySchema"]],
        "Projection": dict(spec.get("Projection") or {"ProjectionType": "ALL"}),
    }


def dead_letter_queue() -> dict[str, Any]:
    """The SQS queue of stream records that failed every retry (retained on delete)."""
    return {
        "Type": "AWS::SQS::Queue",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
    }


def notification_topic() -> dict[str, Any]:
    """The SNS topic command statuses and sync alarms go to (``CQRS_SNS_TOPIC_ARN``).

    Subscriptions (e-mail, SQS, a chat integration) are left to the operator; a filter
    policy on the message attribute ``action`` (``entity-stuck``, ``record-rejected``,
    ``command-status``) picks the alarms out.
    """
    return {
        "Type": "AWS::SNS::Topic",
        "Properties": {"DisplayName": "cqrs notifications and sync alarms"},
    }


def logging_config() -> dict[str, str]:
    """Lambda's JSON log format: the runtime formats the ``cqrs`` loggers' lines as JSON
    and lets INFO through (the stream handler's one summary line per batch); Lambda's own
    platform lines only from WARN."""
    return {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}


def log_group(function_name: str, retention_days: int) -> dict[str, Any]:
    """The function's log group, keeping logs at least ``retention_days``."""
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function_name}}}"},
            "RetentionInDays": nearest_retention(retention_days),
        },
    }


#: A command table's INSERT without MBC's ``syncMode: "SYNC"`` marker: absent (or not a
#: string), or another string. Filters are OR-ed; ``exists`` only works on leaf nodes.
_NOT_SYNC = ({"S": [{"exists": False}]}, {"S": [{"anything-but": ["SYNC"]}]})


def stream_filters(kind: str) -> list[dict[str, Any]]:
    """The event source mapping's filter patterns for a table kind: every event the
    handler consumes; of a command table, INSERTs not marked ``syncMode: "SYNC"`` (their
    writer projected them, as MBC's consumer skips them) and the MODIFY that removes the
    marker (a failed ``publish_sync`` handing its command to the stream)."""
    if kind != "command":
        return [{"eventName": list(CONSUMED_STREAMS[kind])}]
    inserts = [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"syncMode": m}}} for m in _NOT_SYNC
    ]
    handed_back = {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "OldImage": {"syncMode": {"S": ["SYNC"]}},
            "NewImage": {"syncMode": _NOT_SYNC[0]},
        },
    }
    return [*inserts, handed_back]


def event_source_mapping(
    logical_id: str,
    definition: TableDefinition,
    names: ResourceNames,
    settings: HandlerSettings,
) -> dict[str, Any]:
    """The mapping feeding one table's stream to the handler (partial batch responses,
    bisection, bounded retries, the dead-letter queue on failure)."""
    if not definition.stream_view_type:
        raise ConfigurationError(
            f"table {definition.name!r} ({definition.kind}) must have a stream: "
            "the stream handler consumes it (add StreamSpecification to its template)"
        )
    patterns = stream_filters(definition.kind)
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "DependsOn": [names.log_group],
        "Properties": {
            "EventSourceArn": {"Fn::GetAtt": [logical_id, "StreamArn"]},
            "FunctionName": {"Ref": names.function},
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": settings.batch_size,
            "MaximumBatchingWindowInSeconds": settings.batching_window_seconds,
            "ParallelizationFactor": settings.parallelization_factor,
            "FilterCriteria": {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": settings.maximum_retry_attempts,
            "MaximumRecordAgeInSeconds": settings.maximum_record_age_seconds,
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [names.queue, "Arn"]}}
            },
        },
    }


def outputs(names: ResourceNames, *, topic: bool, sweep: bool) -> dict[str, Any]:
    """The stack outputs: the handler's ARN, the dead-letter queue's URL and, when they
    are part of the stack, the notification topic's ARN and the sweep function's ARN."""
    out: dict[str, Any] = {
        "StreamHandlerArn": {
            "Description": "ARN of the stream handler function",
            "Value": {"Fn::GetAtt": [names.function, "Arn"]},
        },
        "DeadLetterQueueUrl": {
            "Description": "Stream records that failed every retry land here",
            "Value": {"Ref": names.queue},
        },
    }
    if topic:
        out["NotificationTopicArn"] = {
            "Description": "Command statuses and sync alarms (subscribe here)",
            "Value": {"Ref": names.topic},
        }
    if sweep:
        out["TaskSweepArn"] = {
            "Description": "ARN of the scheduled task sweep function",
            "Value": {"Fn::GetAtt": [names.sweep, "Arn"]},
        }
    return out


def nearest_retention(days: int) -> int:
    """The smallest CloudWatch-allowed retention that keeps logs at least ``days``."""
    return next(d for d in (*_RETENTION_DAYS, *_RETENTION_DAYS_LONG) if d >= days)


def camel(name: str) -> str:
    """``order-item`` → ``OrderItem``, for logical IDs."""
    parts = re.split(r"[^A-Za-z0-9]+", name)
    joined = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not joined:
        raise ConfigurationError(f"{name!r} has no letters or digits to build a logical ID from")
    return joined


def check_logical_id(logical_id: str) -> None:
    """Refuse what CloudFormation does not take as a logical ID."""
    if not _LOGICAL_ID.match(logical_id):
        raise ConfigurationError(
            f"{logical_id!r} is not a valid CloudFormation logical ID "
            "(letters and digits, starting with a letter)"
        )


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
