"""Render the AWS SAM template that deploys an application's tables and stream handler.

:func:`render_template` turns a :class:`~cqrs.schema.definitions.Schema` into a plain dict:

- one ``AWS::DynamoDB::Table`` per :class:`~cqrs.schema.definitions.TableDefinition`
  (on-demand, point-in-time recovery, deletion protection, retained on stack
  deletion or replacement);
- the stream handler function (``cqrs.aws.handler``) with a least-privilege
  policy naming only this schema's tables, indexes and streams;
- one ``AWS::Lambda::EventSourceMapping`` per consumed stream (every command
  table, and the tasks table) with partial batch responses, bisection, bounded
  retries and an SQS dead-letter queue as the on-failure destination.

Logical IDs come from entity and table kind, never from the table prefix, so the
same stack code deploys every stage and reordering ``cqrs.json`` changes
nothing. Intrinsic functions use their JSON form (``{"Fn::GetAtt": [...]}``),
so the JSON output is valid CloudFormation without a YAML library.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..core.errors import ConfigurationError
from ..schema.definitions import Schema, TableDefinition
from .package import PACKAGED_TABLES_DIR

HANDLER = "cqrs.aws.handler"
LAMBDA_TASK_ROOT = "/var/task"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

#: Stream consumers: table kind -> stream event names the handler needs.
#: Command tables only matter when a command is appended (INSERT); task status
#: changes (MODIFY) drive work too.
CONSUMED_STREAMS: Mapping[str, tuple[str, ...]] = {
    "command": ("INSERT",),
    "tasks": ("INSERT", "MODIFY"),
}

#: DynamoDB actions the handler performs, per table kind. Kinds not listed
#: (``sequences``, say) get no access at all.
TABLE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "command": ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"),
    "data": (
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ),
    "history": ("dynamodb:PutItem", "dynamodb:BatchWriteItem"),
    "tasks": ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    # Recording a failed attempt; listing and redrive run from operators' machines.
    "sync-failures": ("dynamodb:GetItem", "dynamodb:PutItem"),
}

#: Actions Lambda's event source mapping needs on a stream (the function role's).
STREAM_ACTIONS: tuple[str, ...] = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)

#: Lambda architectures; build the package for the matching manylinux platform.
ARCHITECTURES = ("x86_64", "arm64")

_LOGICAL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,254}$")
_RUNTIME = re.compile(r"^python3\.\d+$")

TemplateFormat = Literal["json", "yaml"]


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


def render_template(
    schema: Schema,
    *,
    function_name: str = "CqrsStreamHandler",
    runtime: str = "python3.12",
    code_uri: str = "build/lambda.zip",
    app: str | None = None,
    architecture: str = "x86_64",
    memory_size: int = HandlerSettings.memory_size,
    timeout: int = HandlerSettings.timeout,
    batch_size: int = HandlerSettings.batch_size,
    maximum_retry_attempts: int = HandlerSettings.maximum_retry_attempts,
    maximum_record_age_seconds: int = HandlerSettings.maximum_record_age_seconds,
    log_retention_days: int = HandlerSettings.log_retention_days,
    sync_max_attempts: int = HandlerSettings.sync_max_attempts,
) -> dict[str, Any]:
    """Return the SAM template (a JSON-ready dict) deploying ``schema``.

    ``function_name`` is the handler's logical ID (the queue, log group and
    outputs are named after it); the physical name is left to CloudFormation so
    several stages can share an account. ``app`` (``module:attribute``) becomes
    ``CQRS_APP``. ``architecture`` (``x86_64`` or ``arm64``) must match the
    platform the package was built for. Raises
    :class:`~cqrs.core.errors.ConfigurationError` on invalid settings, a schema whose
    consumed tables have no stream, or entity names
    that map to the same logical ID.
    """
    _check_logical_id(function_name)
    if not _RUNTIME.match(runtime):
        raise ConfigurationError(
            f"runtime must be a Python runtime like python3.12, got {runtime!r}"
        )
    if architecture not in ARCHITECTURES:
        raise ConfigurationError(
            f"architecture must be one of {ARCHITECTURES}, got {architecture!r}"
        )
    settings = HandlerSettings(
        memory_size=memory_size,
        timeout=timeout,
        batch_size=batch_size,
        maximum_retry_attempts=maximum_retry_attempts,
        maximum_record_age_seconds=maximum_record_age_seconds,
        log_retention_days=log_retention_days,
        sync_max_attempts=sync_max_attempts,
    )
    tables = _logical_ids(schema.definitions())
    names = _ResourceNames(function_name)
    resources: dict[str, Any] = {}
    for logical_id, definition in tables.items():
        resources[logical_id] = table_resource(definition)
    resources[names.queue] = _dead_letter_queue()
    resources[names.log_group] = _log_group(function_name, settings.log_retention_days)
    resources[function_name] = _function(
        schema,
        tables,
        names,
        runtime=runtime,
        architecture=architecture,
        code_uri=code_uri,
        app=app,
        settings=settings,
    )
    for logical_id, definition in tables.items():
        if definition.kind in CONSUMED_STREAMS:
            resources[f"{logical_id}Stream"] = _event_source_mapping(
                logical_id, definition, names, settings
            )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": SAM_TRANSFORM,
        "Description": _description(schema),
        "Resources": resources,
        "Outputs": _outputs(names),
    }


def dump_template(template: Mapping[str, Any], fmt: TemplateFormat = "json") -> str:
    """Serialize ``template`` as JSON (default) or YAML (needs PyYAML installed)."""
    if fmt == "json":
        return json.dumps(template, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        try:
            yaml = importlib.import_module("yaml")
        except ImportError as exc:
            raise ConfigurationError(
                "YAML output needs PyYAML (pip install pyyaml); JSON output needs nothing",
                cause=exc,
            ) from exc
        text: str = yaml.safe_dump(template, sort_keys=False, allow_unicode=True)
        return text
    raise ConfigurationError(f"unknown template format {fmt!r}: use json or yaml")


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
        return f"{_camel(definition.kind)}Table"
    return f"{_camel(definition.entity)}{_camel(definition.kind)}Table"


@dataclass(frozen=True)
class _ResourceNames:
    function: str

    @property
    def queue(self) -> str:
        return f"{self.function}DeadLetterQueue"

    @property
    def log_group(self) -> str:
        return f"{self.function}LogGroup"


def _logical_ids(definitions: Iterable[TableDefinition]) -> dict[str, TableDefinition]:
    out: dict[str, TableDefinition] = {}
    for definition in definitions:
        logical_id = table_logical_id(definition)
        _check_logical_id(logical_id)
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


def _dead_letter_queue() -> dict[str, Any]:
    # Retained: it holds the stream records that failed every retry.
    return {
        "Type": "AWS::SQS::Queue",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
    }


def _log_group(function_name: str, retention_days: int) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function_name}}}"},
            "RetentionInDays": _nearest_retention(retention_days),
        },
    }


def _function(
    schema: Schema,
    tables: Mapping[str, TableDefinition],
    names: _ResourceNames,
    *,
    runtime: str,
    architecture: str,
    code_uri: str,
    app: str | None,
    settings: HandlerSettings,
) -> dict[str, Any]:
    variables = {
        "CQRS_TABLE_PREFIX": schema.prefix,
        "CQRS_TABLES_DIR": f"{LAMBDA_TASK_ROOT}/{PACKAGED_TABLES_DIR}",
        "CQRS_SYNC_MAX_ATTEMPTS": str(settings.sync_max_attempts),
    }
    if app:
        variables["CQRS_APP"] = app
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Description": "cqrs stream handler: command synchronizer and task runner",
            "Handler": HANDLER,
            "Runtime": runtime,
            "CodeUri": code_uri,
            "Architectures": [architecture],
            "MemorySize": settings.memory_size,
            "Timeout": settings.timeout,
            "Environment": {"Variables": variables},
            "Policies": [{"Version": "2012-10-17", "Statement": _policy_statements(tables, names)}],
        },
    }


def _policy_statements(
    tables: Mapping[str, TableDefinition], names: _ResourceNames
) -> list[dict[str, Any]]:
    # Per-kind table (and index) access, reads of the consumed streams, DLQ sends.
    statements: list[dict[str, Any]] = []
    for kind, actions in TABLE_ACTIONS.items():
        resources = _table_arns(tables, kind)
        if resources:
            statements.append(_statement(f"{_camel(kind)}Tables", actions, resources))
    streams = [
        {"Fn::Sub": f"${{{logical_id}.Arn}}/stream/*"}
        for logical_id, definition in tables.items()
        if definition.kind in CONSUMED_STREAMS
    ]
    if streams:
        statements.append(_statement("ConsumedStreams", STREAM_ACTIONS, streams))
    queue_arn = {"Fn::GetAtt": [names.queue, "Arn"]}
    statements.append(_statement("DeadLetterQueue", ("sqs:SendMessage",), [queue_arn]))
    return statements


def _table_arns(tables: Mapping[str, TableDefinition], kind: str) -> list[Any]:
    arns: list[Any] = []
    for logical_id, definition in tables.items():
        if definition.kind != kind:
            continue
        arns.append({"Fn::GetAtt": [logical_id, "Arn"]})
        for index in definition.indexes:
            arns.append({"Fn::Sub": f"${{{logical_id}.Arn}}/index/{index['IndexName']}"})
    return arns


def _statement(sid: str, actions: Iterable[str], resources: list[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def _event_source_mapping(
    logical_id: str,
    definition: TableDefinition,
    names: _ResourceNames,
    settings: HandlerSettings,
) -> dict[str, Any]:
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


def _outputs(names: _ResourceNames) -> dict[str, Any]:
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


def _description(schema: Schema) -> str:
    entities = ", ".join(schema.entities) or "no entities"
    prefix = f" (prefix {schema.prefix!r})" if schema.prefix else ""
    return f"cqrs tables and stream handler for {entities}{prefix}"


_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731)
_RETENTION_DAYS_LONG = (1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _nearest_retention(days: int) -> int:
    """The smallest CloudWatch-allowed retention that keeps logs at least ``days``."""
    return next(d for d in (*_RETENTION_DAYS, *_RETENTION_DAYS_LONG) if d >= days)


def _camel(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", name)
    camel = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not camel:
        raise ConfigurationError(f"{name!r} has no letters or digits to build a logical ID from")
    return camel


def _check_logical_id(logical_id: str) -> None:
    if not _LOGICAL_ID.match(logical_id):
        raise ConfigurationError(
            f"{logical_id!r} is not a valid CloudFormation logical ID "
            "(letters and digits, starting with a letter)"
        )


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
