"""Render the AWS SAM template that deploys an application's tables and stream handler.

:func:`render_template` turns a :class:`~cqrs.schema.definitions.Schema` into a plain dict:

- one ``AWS::DynamoDB::Table`` per :class:`~cqrs.schema.definitions.TableDefinition`
  (on-demand, point-in-time recovery, deletion protection, retained on stack
  deletion or replacement);
- the stream handler function (``cqrs.aws.handler``) with a least-privilege
  policy naming only this schema's tables, indexes and streams (:mod:`.iam`);
- one ``AWS::Lambda::EventSourceMapping`` per consumed stream (every command
  table, and the tasks table) with partial batch responses, bisection, bounded
  retries and an SQS dead-letter queue as the on-failure destination; batch size,
  batching window and parallelization factor tuned for cost
  (:class:`~cqrs.deploy.resources.HandlerSettings` says why), and ``NEW_IMAGE``
  streams on the consumed tables (nothing reads old images);
- an SNS topic for command statuses and sync alarms, set as the handler's
  ``CQRS_SNS_TOPIC_ARN``, which it may only publish to (``notifications=False``
  leaves it out);
- the scheduled task sweep (:mod:`.sweep`): a function run by an EventBridge
  schedule that repairs stuck tasks of every tenant (``sweep_schedule=None`` leaves
  it out);
- the S3 bucket of large attributes (:mod:`.objects`), set as ``CQRS_S3_BUCKET`` of the
  functions that touch entities, with access to its ``ddb/`` objects only (or an existing
  bucket, such as an MBC service's; ``attributes_bucket=None`` leaves it out);
- only when asked for (``http=HttpApi(...)``), an HTTP service: an API Gateway HTTP API
  with a JWT authorizer in front of an ASGI app served through Mangum (:mod:`.http_api`).

Logical IDs come from entity and table kind, never from the table prefix, so the
same stack code deploys every stage and reordering ``cqrs.json`` changes
nothing. Intrinsic functions use their JSON form (``{"Fn::GetAtt": [...]}``),
so the JSON output is valid CloudFormation without a YAML library. The
resources are built in :mod:`.resources`.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..core.errors import ConfigurationError, CqrsError
from ..core.keys import validate_part
from ..schema.definitions import Schema, TableDefinition
from .http_api import HttpApi, http_outputs, http_resources
from .iam import STREAM_ACTIONS, TABLE_ACTIONS, policy_statements, sweep_statements
from .objects import AttributesBucket
from .package import PACKAGED_TABLES_DIR
from .resources import (
    CONSUMED_STREAMS,
    HandlerSettings,
    ResourceNames,
    StreamView,
    check_logical_id,
    dead_letter_queue,
    event_source_mapping,
    log_group,
    logging_config,
    logical_ids,
    notification_topic,
    outputs,
    table_logical_id,
    table_resource,
)
from .sweep import DEFAULT_SCHEDULE
from .sweep import HANDLER as SWEEP_HANDLER

__all__ = [
    "ARCHITECTURES",
    "CONSUMED_STREAMS",
    "HANDLER",
    "STREAM_ACTIONS",
    "SWEEP_HANDLER",
    "TABLE_ACTIONS",
    "HandlerSettings",
    "HttpApi",
    "TemplateFormat",
    "dump_template",
    "render_template",
    "table_logical_id",
    "table_resource",
]

HANDLER = "cqrs.aws.handler"
LAMBDA_TASK_ROOT = "/var/task"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

#: Lambda architectures; build the package for the matching manylinux platform.
ARCHITECTURES = ("x86_64", "arm64")

_RUNTIME = re.compile(r"^python3\.\d+$")
_SCHEDULE = re.compile(
    r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)"
    r"|cron\(\S+( \S+){5}\))$"
)
#: The sweep function's timeout: room to sweep many tenants, less than a schedule period.
SWEEP_TIMEOUT = 600
#: The template's bucket of large attributes unless told otherwise: a new one.
DEFAULT_BUCKET = AttributesBucket()

TemplateFormat = Literal["json", "yaml"]


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
    batching_window_seconds: int = HandlerSettings.batching_window_seconds,
    parallelization_factor: int = HandlerSettings.parallelization_factor,
    stream_view_type: StreamView = HandlerSettings.stream_view_type,
    maximum_retry_attempts: int = HandlerSettings.maximum_retry_attempts,
    maximum_record_age_seconds: int = HandlerSettings.maximum_record_age_seconds,
    log_retention_days: int = HandlerSettings.log_retention_days,
    sync_max_attempts: int = HandlerSettings.sync_max_attempts,
    notifications: bool = True,
    sweep_schedule: str | None = DEFAULT_SCHEDULE,
    sweep_tenants: Sequence[str] = (),
    http: HttpApi | None = None,
    attributes_bucket: AttributesBucket | None = DEFAULT_BUCKET,
) -> dict[str, Any]:
    """Return the SAM template (a JSON-ready dict) deploying ``schema``.

    ``function_name`` is the handler's logical ID (the queue, log group and
    outputs are named after it); the physical name is left to CloudFormation so
    several stages can share an account. ``app`` (``module:attribute``) becomes
    ``CQRS_APP``. ``architecture`` (``x86_64`` or ``arm64``) must match the
    platform the package was built for. ``notifications`` adds the SNS topic (the
    handler's ``CQRS_SNS_TOPIC_ARN``); ``sweep_schedule`` (an EventBridge ``rate(...)`` or
    ``cron(...)`` expression; ``None`` or ``""``: no sweep) runs the task sweep, over
    ``sweep_tenants`` if given, else over every tenant with an unfinished task. ``http``
    adds an HTTP API (:class:`.http_api.HttpApi`); ``attributes_bucket`` (:mod:`.objects`)
    holds large attributes (default: a new bucket; ``None``: none). Raises
    :class:`~cqrs.core.errors.ConfigurationError` on invalid settings, a schema whose
    consumed tables have no stream, or entity names that map to the same logical ID.
    """
    function = _Function(function_name, runtime, architecture, code_uri, app, attributes_bucket)
    function.check()
    sweep = _Sweep.of(sweep_schedule, sweep_tenants)
    settings = HandlerSettings(
        memory_size=memory_size, timeout=timeout, batch_size=batch_size,
        batching_window_seconds=batching_window_seconds,
        parallelization_factor=parallelization_factor, stream_view_type=stream_view_type,
        maximum_retry_attempts=maximum_retry_attempts,
        maximum_record_age_seconds=maximum_record_age_seconds,
        log_retention_days=log_retention_days, sync_max_attempts=sync_max_attempts,
    )  # fmt: skip
    resources = _resources(schema, function, settings, notifications, sweep)
    out = outputs(ResourceNames(function_name), topic=notifications, sweep=sweep is not None)
    if http is not None:
        _add_http(resources, http, schema, function, settings)
        out.update(http_outputs(http))
    return {
        "AWSTemplateFormatVersion": "2010-09-09", "Transform": SAM_TRANSFORM,
        "Description": _description(schema), "Resources": resources, "Outputs": out,
    }  # fmt: skip


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


@dataclass(frozen=True)
class _Function:
    """The stream handler function's own options."""

    name: str
    runtime: str
    architecture: str
    code_uri: str
    app: str | None
    bucket: AttributesBucket | None = None  # large attributes: see .objects

    def check(self) -> None:
        check_logical_id(self.name)
        if self.bucket is not None:
            self.bucket.check()
            check_logical_id(self.bucket.logical_id)
        if not _RUNTIME.match(self.runtime):
            raise ConfigurationError(
                f"runtime must be a Python runtime like python3.12, got {self.runtime!r}"
            )
        if self.architecture not in ARCHITECTURES:
            raise ConfigurationError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )


@dataclass(frozen=True)
class _Sweep:
    """The scheduled task sweep's options."""

    schedule: str
    tenants: tuple[str, ...]

    @classmethod
    def of(cls, schedule: str | None, tenants: Sequence[str]) -> _Sweep | None:
        if isinstance(tenants, str):
            raise ConfigurationError("sweep_tenants must be a list of tenant codes")
        if not schedule:
            if tenants:
                raise ConfigurationError("sweep tenants given, but no sweep schedule")
            return None
        if not _SCHEDULE.match(schedule):
            raise ConfigurationError(
                "sweep schedule must be an EventBridge expression like 'rate(15 minutes)' "
                f"or 'cron(0/15 * * * ? *)', got {schedule!r}"
            )
        for tenant in tenants:
            try:
                validate_part("tenant code", tenant)
            except CqrsError as exc:
                raise ConfigurationError(f"sweep tenant {tenant!r}: {exc}", cause=exc) from exc
        return cls(schedule, tuple(dict.fromkeys(tenants)))

    def event(self) -> dict[str, Any]:
        """The schedule's input: the tenants, when they are named."""
        return {"tenants": list(self.tenants)} if self.tenants else {}


def _resources(
    schema: Schema,
    function: _Function,
    settings: HandlerSettings,
    notifications: bool,
    sweep: _Sweep | None,
) -> dict[str, Any]:
    """Tables, queue, topic, log groups, the functions, then the stream mappings."""
    tables = logical_ids(schema.definitions())
    names = ResourceNames(function.name)
    resources: dict[str, Any] = {
        i: table_resource(d, settings.stream_view_type) for i, d in tables.items()
    }
    resources[names.queue] = dead_letter_queue()
    if notifications:
        resources[names.topic] = notification_topic()
    if function.bucket is not None:
        resources.update(function.bucket.resources())
    resources[names.log_group] = log_group(function.name, settings.log_retention_days)
    resources[function.name] = _function(schema, tables, names, settings, function, notifications)
    if sweep is not None:
        resources[names.sweep_log_group] = log_group(names.sweep, settings.log_retention_days)
        resources[names.sweep] = _sweep_function(schema, tables, settings, function, sweep)
    for logical_id, definition in tables.items():
        if definition.kind in CONSUMED_STREAMS:
            resources[f"{logical_id}Stream"] = event_source_mapping(
                logical_id, definition, names, settings
            )
    return resources


def _add_http(
    resources: dict[str, Any],
    http: HttpApi,
    schema: Schema,
    function: _Function,
    settings: HandlerSettings,
) -> None:
    """Add the HTTP service's resources; refuse logical IDs the stack already uses."""
    http.check()
    variables = _variables(schema, function)
    added = http_resources(
        http,
        logical_ids(schema.definitions()),
        resources[function.name]["Properties"],
        variables,
        settings.log_retention_days,
        _bucket_access(function, variables),
    )
    taken = sorted(set(added) & set(resources))
    if taken:
        raise ConfigurationError(
            f"the HTTP function's logical IDs {taken} are already used: pick another name"
        )
    resources.update(added)


def _variables(schema: Schema, function: _Function) -> dict[str, Any]:
    """What every function of the stack needs to build the app."""
    variables: dict[str, Any] = {
        "CQRS_TABLE_PREFIX": schema.prefix,
        "CQRS_TABLES_DIR": f"{LAMBDA_TASK_ROOT}/{PACKAGED_TABLES_DIR}",
    }
    if function.app:
        variables["CQRS_APP"] = function.app
    return variables


def _bucket_access(function: _Function, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """For a function that reads or writes entities: the bucket of large attributes in
    ``variables`` (``CQRS_S3_BUCKET``), and the statement granting access to its objects."""
    if function.bucket is None:
        return []
    variables["CQRS_S3_BUCKET"] = function.bucket.name
    return [function.bucket.statement()]


def _function(
    schema: Schema,
    tables: Mapping[str, TableDefinition],
    names: ResourceNames,
    settings: HandlerSettings,
    function: _Function,
    notifications: bool,
) -> dict[str, Any]:
    variables = _variables(schema, function)
    variables["CQRS_SYNC_MAX_ATTEMPTS"] = str(settings.sync_max_attempts)
    if notifications:
        variables["CQRS_SNS_TOPIC_ARN"] = {"Ref": names.topic}
    statements = policy_statements(tables, names, topic=notifications)
    statements += _bucket_access(function, variables)
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Description": "cqrs stream handler: command synchronizer and task runner",
            "Handler": HANDLER,
            "Runtime": function.runtime,
            "CodeUri": function.code_uri,
            "Architectures": [function.architecture],
            "MemorySize": settings.memory_size,
            "Timeout": settings.timeout,
            "LoggingConfig": logging_config(),
            "Environment": {"Variables": variables},
            "Policies": [{"Version": "2012-10-17", "Statement": statements}],
        },
    }


def _sweep_function(
    schema: Schema,
    tables: Mapping[str, TableDefinition],
    settings: HandlerSettings,
    function: _Function,
    sweep: _Sweep,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "Schedule": sweep.schedule,
        "Description": "cqrs task sweep: reclaim expired leases, re-trigger lost records",
        "Input": json.dumps(sweep.event()),
    }
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Description": "cqrs task sweep (TaskService.sweep for each tenant)",
            "Handler": SWEEP_HANDLER,
            "Runtime": function.runtime,
            "CodeUri": function.code_uri,
            "Architectures": [function.architecture],
            "MemorySize": settings.memory_size,
            "Timeout": SWEEP_TIMEOUT,
            "LoggingConfig": logging_config(),
            "Environment": {"Variables": _variables(schema, function)},
            "Policies": [{"Version": "2012-10-17", "Statement": sweep_statements(tables)}],
            "Events": {"Schedule": {"Type": "Schedule", "Properties": schedule}},
        },
    }


def _description(schema: Schema) -> str:
    entities = ", ".join(schema.entities) or "no entities"
    prefix = f" (prefix {schema.prefix!r})" if schema.prefix else ""
    return f"cqrs tables and stream handler for {entities}{prefix}"
