"""Least-privilege policies: only this schema's tables, indexes, streams, queue and topic.

The stream handler's (:func:`policy_statements`) and the scheduled task sweep's
(:func:`sweep_statements`): the sweep touches the tasks table only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..schema.definitions import TableDefinition
from .resources import CONSUMED_STREAMS, ResourceNames, camel

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

#: What the task sweep adds to the tasks table's actions: finding the tenants with
#: unfinished tasks (:func:`cqrs.deploy.sweep.unfinished_tenants`).
SWEEP_ACTIONS: tuple[str, ...] = (*TABLE_ACTIONS["tasks"], "dynamodb:Scan")

#: Publishing notifications (``PublishBatch`` is authorized as ``sns:Publish``).
TOPIC_ACTIONS: tuple[str, ...] = ("sns:Publish",)

#: Actions Lambda's event source mapping needs on a stream (the function role's).
STREAM_ACTIONS: tuple[str, ...] = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)


def policy_statements(
    tables: Mapping[str, TableDefinition], names: ResourceNames, *, topic: bool = False
) -> list[dict[str, Any]]:
    """Per-kind table (and index) access, reads of the consumed streams, DLQ sends and,
    with ``topic``, publishing to the stack's notification topic."""
    statements = table_statements(tables, TABLE_ACTIONS)
    streams = [
        {"Fn::Sub": f"${{{logical_id}.Arn}}/stream/*"}
        for logical_id, definition in tables.items()
        if definition.kind in CONSUMED_STREAMS
    ]
    if streams:
        statements.append(_statement("ConsumedStreams", STREAM_ACTIONS, streams))
    queue_arn = {"Fn::GetAtt": [names.queue, "Arn"]}
    statements.append(_statement("DeadLetterQueue", ("sqs:SendMessage",), [queue_arn]))
    if topic:
        statements.append(_statement("Notifications", TOPIC_ACTIONS, [{"Ref": names.topic}]))
    return statements


def table_statements(
    tables: Mapping[str, TableDefinition], actions: Mapping[str, tuple[str, ...]]
) -> list[dict[str, Any]]:
    """One statement per table kind in ``actions`` (kind -> actions) naming that kind's
    tables and their indexes; kinds not listed get no access."""
    statements: list[dict[str, Any]] = []
    for kind, kind_actions in actions.items():
        resources = _table_arns(tables, kind)
        if resources:
            statements.append(_statement(f"{camel(kind)}Tables", kind_actions, resources))
    return statements


def sweep_statements(tables: Mapping[str, TableDefinition]) -> list[dict[str, Any]]:
    """The task sweep's access: the tasks table, nothing else."""
    resources = _table_arns(tables, "tasks")
    return [_statement("TasksTable", SWEEP_ACTIONS, resources)] if resources else []


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
