"""Task keys and the tasks that are written new: a task (or parent) and a sub-task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ...core.context import Scope
from ...core.errors import InvalidKeyError
from ...core.keys import KEY_SEPARATOR, normalize_tenant_code, validate_part
from .models import TASK_PK_PREFIX, TaskStatus
from .records import TaskRecord
from .values import JsonValue


def task_pk(tenant_code_or_pk: str) -> tuple[str, str]:
    """``(pk, tenant code)`` of a tenant code or a ``TASK#<tenant>`` pk, validated."""
    if not isinstance(tenant_code_or_pk, str):
        raise InvalidKeyError(f"tenant code or pk must be a string, got {tenant_code_or_pk!r}")
    prefix, sep, tenant = tenant_code_or_pk.partition(KEY_SEPARATOR)
    if not sep:
        prefix, tenant = TASK_PK_PREFIX, tenant_code_or_pk
    if prefix != TASK_PK_PREFIX:
        raise InvalidKeyError(f"task pk {tenant_code_or_pk!r} must look like 'TASK#<tenant>'")
    validate_part("tenant code", tenant)
    tenant = normalize_tenant_code(tenant)  # tenant codes are lowercase in keys, as in MBC
    return f"{TASK_PK_PREFIX}{KEY_SEPARATOR}{tenant}", tenant


def check_task_sk(sk: str) -> None:
    """Refuse a sort key that is not ``<taskType>#<ulid>[#<index>]``-shaped."""
    if not isinstance(sk, str) or KEY_SEPARATOR not in sk:
        raise InvalidKeyError(f"task sk {sk!r} must look like '<taskType>#<ulid>[#<index>]'")
    for part in sk.split(KEY_SEPARATOR):
        validate_part("task sk part", part)


def new_task(
    pk: str,
    sk: str,
    *,
    tenant_code: str,
    task_type: str,
    name: str,
    input: JsonValue,
    max_attempts: int,
    now: str,
    context: Scope,
) -> TaskRecord:
    """A new task in CREATED (a ``None`` input is not stored)."""
    return TaskRecord(
        pk=pk,
        sk=sk,
        tenant_code=tenant_code,
        task_type=task_type,
        name=name,
        status=TaskStatus.CREATED,
        input=input,
        attempts=0,
        max_attempts=max_attempts,
        created_at=now,
        updated_at=now,
        created_by=context.user_id,
        created_ip=context.source_ip,
        request_id=context.request_id,
    )


def as_parent(task: TaskRecord, subtask_inputs: Sequence[JsonValue]) -> TaskRecord:
    """``task`` as the parent of one sub-task per input, with its counters at zero."""
    return replace(
        task,
        subtask_count=len(subtask_inputs),
        subtask_inputs=tuple(subtask_inputs),
        succeeded=0,
        failed=0,
        running=0,
    )


def new_subtask(parent: TaskRecord, index: int, input: JsonValue, now: str) -> TaskRecord:
    """Sub-task ``index`` of ``parent``, in QUEUED (the fan-out queues it)."""
    return TaskRecord(
        pk=parent.pk,
        sk=f"{parent.sk}{KEY_SEPARATOR}{index}",
        tenant_code=parent.tenant_code,
        task_type=parent.task_type,
        name=parent.name,
        status=TaskStatus.QUEUED,
        input=input,
        attempts=0,
        max_attempts=parent.max_attempts,
        parent_sk=parent.sk,
        subtask_index=index,
        created_at=now,
        updated_at=now,
        created_by=parent.created_by,
        created_ip=parent.created_ip,
        request_id=parent.request_id,
    )
