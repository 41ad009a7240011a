"""Task keys and the items that are written new: a task (or parent) and a sub-task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...core.context import Scope
from ...core.errors import InvalidKeyError
from ...core.keys import KEY_SEPARATOR, validate_part
from ...store import Item
from .models import TASK_PK_PREFIX, TaskStatus


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
    input: Any,
    max_attempts: int,
    now: str,
    context: Scope,
) -> Item:
    """The item of a new task in CREATED (``None`` values are not stored)."""
    return {
        "pk": pk,
        "sk": sk,
        "id": f"{pk}{KEY_SEPARATOR}{sk}",
        "tenantCode": tenant_code,
        "taskType": task_type,
        "name": name,
        "status": TaskStatus.CREATED.value,
        "input": input,
        "attempts": 0,
        "maxAttempts": max_attempts,
        "createdAt": now,
        "updatedAt": now,
        "createdBy": context.user_id,
        "createdIp": context.source_ip,
        "requestId": context.request_id,
    }


def as_parent(item: Item, subtask_inputs: Sequence[Any]) -> Item:
    """``item`` as the parent of one sub-task per input, with its counters at zero."""
    return {
        **item,
        "subtaskCount": len(subtask_inputs),
        "subtaskInputs": list(subtask_inputs),
        "succeeded": 0,
        "failed": 0,
        "running": 0,
    }


def new_subtask(parent: Mapping[str, Any], index: int, input: Any, now: str) -> Item:
    """The item of sub-task ``index`` of ``parent``, in QUEUED (the fan-out queues it)."""
    sk = f"{parent['sk']}{KEY_SEPARATOR}{index}"
    return {
        "pk": parent["pk"],
        "sk": sk,
        "id": f"{parent['pk']}{KEY_SEPARATOR}{sk}",
        "tenantCode": parent["tenantCode"],
        "taskType": parent["taskType"],
        "name": parent["name"],
        "status": TaskStatus.QUEUED.value,
        "input": input,
        "attempts": 0,
        "maxAttempts": parent["maxAttempts"],
        "parentSk": parent["sk"],
        "subtaskIndex": index,
        "createdAt": now,
        "updatedAt": now,
        "createdBy": parent.get("createdBy"),
        "createdIp": parent.get("createdIp"),
        "requestId": parent.get("requestId"),
    }


def is_task_item(item: Mapping[str, Any]) -> bool:
    """Whether a stream image is a task item (not some other item in the table)."""
    pk = item.get("pk")
    return (
        isinstance(pk, str)
        and pk.startswith(TASK_PK_PREFIX + KEY_SEPARATOR)
        and "status" in item
        and "taskType" in item
        and "attempts" in item
    )


def children_done(parent: Mapping[str, Any]) -> bool:
    """Whether every sub-task of ``parent`` has ended, by its counters."""
    done = int(parent.get("succeeded", 0)) + int(parent.get("failed", 0))
    return done >= int(parent["subtaskCount"])


def error_of(exc: BaseException, attempt: int | None) -> dict[str, Any]:
    """The stored ``error`` of a failed attempt: the exception's type and message."""
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or repr(exc)}
    if attempt is not None:
        error["attempt"] = attempt
    return error
