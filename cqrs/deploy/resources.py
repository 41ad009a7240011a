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
from typing import Any

from ..core.errors import ConfigurationError
from ..schema.definitions import TableDefinition

#: Stream consumers: table kind -> stream event names the handler needs.
#: Command tables only matter when a command is appended (INSERT); task status
#: changes (MODIFY) drive work too.
CONSUMED_STREAMS: Mapping[str, tuple[str, ...]] = {
    "command": ("INSERT",),
    "tasks": ("INSERT", "MODIFY"),
}

_LOGICAL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,254}$")
_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731)
_RETENTION_DAYS_LONG = (1096, 1827, 2192, 2557, 2922, 3288, 3653)


@dataclass(frozen=True)
class HandlerSettings:
    """Tunables of the stream handler and its event source mappings, range-checked."""

    memory_size: int = 512
    timeout: int = 60
    batch_size: int = 10
    maximum_retry_attempts: int = 10
    maximum_record_age_seconds: int = 21600
    log_retention_days: int = 30
    sync_max_attempts: int = 5  # CQRS_SYNC_MAX_ATTEMPTS: attempts before an entity is stuck

    def __post_init__(self) -> None:
        _check_range("memory_size", self.memory_size, 128, 10240)
        _check_range("timeout", self.timeout, 1, 900)
        _check_range("batch_size", self.batch_size, 1, 10000)
        _check_range("maximum_retry_attempts", self.maximum_retry_attempts, 0, 10000)
        _check_range("maximum_record_age_seconds", self.maximum_record_age_seconds, 60, 604800)
        _check_range("log_retention_days", self.log_retention_days, 1, 3653)
        _check_range("sync_max_attempts", self.sync_max_attempts, 1, 10000)
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


def table_resource(definition: TableDefinition) -> dict[str, Any]:
    """The ``AWS::DynamoDB::Table`` resource of one definition (retained on delete)."""
    spec = definition.spec
    props: dict[str, Any] = {
        "TableName": definition.name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [dict(k) for k in spec["KeySchema"]],
        "AttributeDefinitions": [dict(a) for a in spec["AttributeDefinitions"]],
    }
    if definition.indexes:
        props["GlobalSecondaryIndexes"] = [_index(i) for i in definition.indexes]
    if definition.stream_view_type:
        props["StreamSpecification"] = {"StreamViewType": definition.stream_view_type}
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
    pattern = {"eventName": list(CONSUMED_STREAMS[definition.kind])}
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "DependsOn": [names.log_group],
        "Properties": {
            "EventSourceArn": {"Fn::GetAtt": [logical_id, "StreamArn"]},
            "FunctionName": {"Ref": names.function},
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": settings.batch_size,
            "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": settings.maximum_retry_attempts,
            "MaximumRecordAgeInSeconds": settings.maximum_record_age_seconds,
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [names.queue, "Arn"]}}
            },
        },
    }


def outputs(names: ResourceNames) -> dict[str, Any]:
    """The stack outputs: the handler's ARN and the dead-letter queue's URL."""
    return {
        "StreamHandlerArn": {
            "Description": "ARN of the stream handler function",
            "Value": {"Fn::GetAtt": [names.function, "Arn"]},
        },
        "DeadLetterQueueUrl": {
            "Description": "Stream records that failed every retry land here",
            "Value": {"Ref": names.queue},
        },
    }


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
