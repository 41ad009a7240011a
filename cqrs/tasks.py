"""Tasks: long-running asynchronous work with a status lifecycle, driven by the tasks stream.

```python
@app.tasks.handler("csv-import", input_model=CsvImport)
def import_csv(task: Task[CsvImport]) -> dict[str, int]:
    task.report_progress({"rows": 0})
    ...
    return {"rows": 1200}

task = app.tasks.create("acme", "csv-import", {"key": "uploads/a.csv"}, context=ctx)
app.sync()                       # locally; in AWS the stream Lambda (cqrs.aws.handler) runs it
app.tasks.get("acme", task.sk).status  # TaskStatus.COMPLETED
```

Storage (the ``tasks`` system table, with a NEW_AND_OLD_IMAGES stream)
----------------------------------------------------------------------
One item per task::

    pk = "TASK#<tenantCode>"
    sk = "<taskType>#<ulid>"            a task
    sk = "<taskType>#<ulid>#<index>"    sub-task <index> (0-based) of that task

ULIDs sort by creation time, so a ``Query`` with ``ScanIndexForward=False`` and
``begins_with(sk, "<taskType>#")`` lists a type's tasks newest first. Stored
attribute names are camelCase: ``tenantCode``, ``taskType``, ``name``,
``status``, ``input``, ``result``, ``error`` (``{type, message, attempt}``),
``progress``, ``attempts``, ``maxAttempts``, ``leaseUntil`` (epoch ms),
``createdAt``, ``updatedAt``, ``startedAt``, ``finishedAt``, ``createdBy``,
``createdIp``, ``requestId``; sub-tasks add ``parentSk`` and ``subtaskIndex``;
parents add ``subtaskCount``, ``succeeded``, ``failed``, ``running`` (and
``subtaskInputs`` until the fan-out is done).

Lifecycle
---------
::

    CREATED ──► QUEUED ──► PROCESSING ──► COMPLETED
                  ▲            │    └───► FAILED      (attempts == maxAttempts,
                  └────────────┘                       or PermanentTaskError)
              attempt failed, attempts < maxAttempts

Every transition is one conditional write whose condition names the state it
leaves: ``status = :seen AND attempts = :seen`` (plus ``leaseUntil = :seen``
when reclaiming). ``attempts`` is incremented by the claim (QUEUED →
PROCESSING) and never decreases, so each (status, attempts) pair occurs once in
a task's life: a stream record that is redelivered, duplicated or stale names a
state the task has left, its write fails the condition, and nothing happens.
In particular a handler runs only after its own claim succeeded, so a
redelivered record never runs a handler again.

The consumer (:meth:`TaskService.consume`) is a state machine over the **new
image** of each record; the event name does not matter. Within a batch only the
last image of each task is used (earlier ones are superseded). For a new image
in state:

- ``CREATED``: queue it (→ QUEUED); a parent fans out instead (below).
- ``QUEUED``: claim it (→ PROCESSING, ``attempts + 1``, ``leaseUntil = now +
  lease_seconds``), run the handler, then write COMPLETED with the result, or
  the error and QUEUED again (a retry, driven by that write's own stream record)
  or FAILED. A task type with no registered handler goes straight to FAILED
  (``NoTaskHandlerError``) without using an attempt.
- ``PROCESSING`` with an expired lease: reclaim it (below).
- anything else: nothing.

Crash while PROCESSING: the lease
---------------------------------
If the process dies while a handler runs (Lambda timeout, OOM), the task stays
PROCESSING with ``leaseUntil`` in the past once the lease runs out. Whoever sees
it then — a redelivered record of the crashed batch, or :meth:`TaskService.sweep`
— *reclaims* it: the lost attempt counts as failed (``TaskLeaseExpiredError``)
and the task goes to QUEUED (or FAILED if it was the last attempt), conditional
on the exact ``attempts`` and ``leaseUntil`` it saw, so exactly one reclaimer
wins. A worker that was merely slow loses nothing but its write: its result,
error and progress writes are conditional on its own attempt number and fail
(progress raises :class:`TaskLeaseLostError` into the handler). Handlers
therefore run **at most once per attempt**; a handler can run again only after
a failure or a lost lease, as a new attempt. Make side effects idempotent or
resumable: ``progress`` is kept across attempts, so a retried handler can
resume from the last progress it reported. Reporting progress also renews the
lease (a heartbeat); choose ``lease_seconds`` (default 900, Lambda's maximum
timeout) longer than the gap between heartbeats.

Lambda usually redelivers a crashed batch before the lease has expired; those
records then find a live lease and do nothing. Run :meth:`TaskService.sweep`
periodically (a scheduled Lambda, a cron) to reclaim expired leases and to
re-trigger tasks whose stream records were lost (records Lambda dropped after
its retry limit, or older than the stream's 24 hours).

Sub-tasks
---------
``create(..., subtasks=[input0, input1, ...])`` creates a parent whose
sub-tasks have the same task type and ``subtasks[i]`` as input; the handler
runs once per sub-task, never for the parent. The parent's INSERT record fans
it out, in an order that makes a repeat harmless: the parent goes CREATED →
QUEUED, each sub-task is written with its own conditional ``PutItem``
(``attribute_not_exists``: one that is already there is skipped, never
overwritten; sub-tasks start in QUEUED, the fan-out being their queueing), and
a last update removes ``subtaskInputs`` from the parent. A fan-out cut short
is finished by the redelivered INSERT record, or by :meth:`TaskService.sweep`
(a parent that still has ``subtaskInputs``). Single puts rather than
``TransactWriteItems`` chunks: half the write capacity, and the embedded
engine (moto) deep-copies the table for every item of a transaction.

The parent's counters change with ``ADD`` in the same transaction as the child's
transition: ``running + 1`` (and the parent → PROCESSING) when a child is
claimed for the first time; ``running - 1`` and ``succeeded + 1`` or
``failed + 1`` when a child reaches COMPLETED or FAILED. A child's terminal
write happens exactly once, so each child is counted exactly once. The parent's
own stream record that shows ``succeeded + failed == subtaskCount`` completes
it, conditional on those counters and its status: **COMPLETED if every sub-task
succeeded, FAILED (``SubtaskFailedError``) if any failed**, with
``result = {"total", "succeeded", "failed"}``. Redeliveries of that record fail
the condition, so a parent completes exactly once. Each sub-task's own result
and error stay on the sub-task (:meth:`TaskService.subtasks`).

Sub-tasks of one parent that run in parallel (several shards or workers)
contend for the parent item: a transaction that loses (``TransactionConflict``)
is retried a few times with a short backoff, then reported as a failed record.
The embedded engine (moto) deep-copies the table for each transaction, so
sub-tasks are slow there once the table and its stream have grown; DynamoDB
Local and AWS are not affected.

All sub-task inputs travel in the parent item until the fan-out, so together
they must fit DynamoDB's 400 KB item limit: put large inputs in S3 and pass keys.

DynamoDB requests per transition
--------------------------------
================================================  ==============================
``create`` (task or parent)                        1 ``PutItem``
CREATED → QUEUED                                   1 ``UpdateItem``
parent fan-out (n sub-tasks)                       2 ``UpdateItem`` + n ``PutItem``
claim (QUEUED → PROCESSING)                        1 ``UpdateItem``; a sub-task's first
                                                   claim: 1 ``TransactWriteItems``
COMPLETED / retry (→ QUEUED) / FAILED              1 ``UpdateItem``; a sub-task's
                                                   terminal write: 1 ``TransactWriteItems``
``task.report_progress``                           1 ``UpdateItem``
parent → COMPLETED / FAILED                        1 ``UpdateItem``
record of a task in PROCESSING (live lease),       0
COMPLETED or FAILED, or superseded in its batch
stale redelivered record                           1 failed conditional write, no effect
================================================  ==============================

A task without sub-tasks that succeeds first time costs 4 writes and no reads
(create, queue, claim, complete). No transition reads before writing (only a
redelivered fan-out reads its parent once).

Retries are immediate (the next stream delivery); there is no backoff. If
DynamoDB fails (throttling beyond the SDK's retries) the record is reported in
the partial batch response and Lambda redelivers it; every step is safe to
repeat. A failure to write a finished attempt's outcome leaves the task
PROCESSING until its lease expires and a sweep reclaims it.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .batch import paginate
from .clients import dynamo_errors, error_code, translate
from .codec import Item, deserialize, item_size, serialize, serialize_value
from .commands import MAX_ITEM_BYTES
from .errors import (
    IntegrityError,
    InterfaceError,
    InvalidKeyError,
    ItemTooLargeError,
    OperationalError,
    ProgrammingError,
)
from .keys import KEY_SEPARATOR, check_tenant, validate_part
from .models import InvokeContext
from .reads import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from .stream_records import StreamRecord

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "TASK_PK_PREFIX",
    "InvalidTaskInputError",
    "NoTaskHandlerError",
    "PermanentTaskError",
    "SubtaskFailedError",
    "SweepReport",
    "Task",
    "TaskError",
    "TaskHandler",
    "TaskLeaseExpiredError",
    "TaskLeaseLostError",
    "TaskPage",
    "TaskService",
    "TaskStatus",
    "UlidFactory",
    "encode_ulid",
]

logger = logging.getLogger("cqrs.tasks")

TASK_PK_PREFIX = "TASK"
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 900.0  # Lambda's maximum timeout
_CONFLICT_RETRIES = 5

InputT = TypeVar("InputT")
H = TypeVar("H")


# -- errors ------------------------------------------------------------------------------


class PermanentTaskError(Exception):
    """Raise from a handler to fail the task now, without using its remaining attempts."""


class InvalidTaskInputError(InterfaceError):
    """The input does not validate against the handler's ``input_model``."""


class TaskLeaseLostError(IntegrityError):
    """The attempt lost its lease: the task was reclaimed, so this worker must stop."""


class TaskLeaseExpiredError(OperationalError):
    """Stored as a task's error when an attempt's lease expired before it finished."""


class NoTaskHandlerError(ProgrammingError):
    """Stored as a task's error when no handler is registered for its task type."""


class SubtaskFailedError(IntegrityError):
    """Stored as a parent task's error when at least one of its sub-tasks failed."""


# -- ULID --------------------------------------------------------------------------------

# A ULID is 48 bits of Unix time in ms and 80 random bits, written as 26 Crockford base32
# characters, so the text sorts by time. It is a dozen lines; a dependency for it would be
# one more package in every Lambda bundle and cold start, and one more supply-chain risk.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80


def encode_ulid(ms: int, randomness: int) -> str:
    """The 26-character ULID of a millisecond timestamp and 80 random bits."""
    if not 0 <= ms < 1 << 48 or not 0 <= randomness < 1 << _RANDOM_BITS:
        raise ValueError("ULID time must fit 48 bits and randomness 80 bits")
    value = (ms << _RANDOM_BITS) | randomness
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class UlidFactory:
    """Monotonic ULIDs: within one millisecond (or if the clock steps back) the previous
    randomness is incremented, so ULIDs from one factory always sort in creation order."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = (-1, 0)

    def __call__(self) -> str:
        """A new ULID, greater than every ULID this factory returned before."""
        with self._lock:
            ms = int(self._clock() * 1000)
            last_ms, last_random = self._last
            if ms > last_ms:
                randomness = int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
            elif last_random + 1 < 1 << _RANDOM_BITS:
                ms, randomness = last_ms, last_random + 1
            else:
                ms, randomness = last_ms + 1, 0
            self._last = (ms, randomness)
        return encode_ulid(ms, randomness)


# -- models ------------------------------------------------------------------------------


class TaskStatus(StrEnum):
    """Where a task is in its lifecycle."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """COMPLETED or FAILED: the task will not change any more."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class TaskError(_Camel):
    """Why an attempt failed: the exception's class name and message."""

    type: str
    message: str
    attempt: int | None = None


class Task(_Camel, Generic[InputT]):
    """A task as stored. Handlers get ``Task[<input_model>]``, readers ``Task[Any]``.

    A handler may call :meth:`report_progress` on the task it receives.
    """

    pk: str
    sk: str
    id: str
    tenant_code: str
    task_type: str
    name: str
    status: TaskStatus
    input: InputT
    result: Any = None
    error: TaskError | None = None
    progress: Any = None
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_until: int | None = None
    parent_sk: str | None = None
    subtask_index: int | None = None
    subtask_count: int | None = None
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: str | None = None
    created_ip: str | None = None
    request_id: str | None = None

    _reporter: Callable[[Any], None] | None = PrivateAttr(default=None)

    @property
    def is_parent(self) -> bool:
        """Whether this task fanned out into sub-tasks."""
        return self.subtask_count is not None

    @property
    def is_subtask(self) -> bool:
        """Whether this task is a sub-task of another."""
        return self.parent_sk is not None

    def report_progress(self, progress: Any) -> None:
        """Store ``progress`` (any JSON-able value) on the task and renew the lease.

        Only the handler running this attempt can call it. One ``UpdateItem``.
        Raises :class:`TaskLeaseLostError` if the task was reclaimed meanwhile.
        """
        if self._reporter is None:
            raise ProgrammingError("only the handler running a task can report its progress")
        self._reporter(progress)
        self.progress = progress


class TaskPage(BaseModel):
    """One page of :meth:`TaskService.list`; pass ``cursor`` back for the next page."""

    items: list[Task[Any]]
    cursor: str | None = None


@dataclass
class SweepReport:
    """What :meth:`TaskService.sweep` did: tasks examined, conditional writes that applied."""

    examined: int = 0
    writes: int = 0
    errors: list[BaseException] = field(default_factory=list)


class TaskHandler(Protocol):
    """A handler class: built once by the app's injector, then ``run`` per attempt."""

    def run(self, task: Task[Any]) -> Any:
        """Do the work; return a JSON-able result (or a pydantic model)."""
        ...


@dataclass
class _HandlerSpec:
    task_type: str
    target: Any  # a function, a class with ``run`` or an object with ``run``
    input_model: type[BaseModel] | None
    instance: Any = None


# -- the service -------------------------------------------------------------------------


class TaskService:
    """Creates, reads and runs tasks. Get it as ``app.tasks``.

    ``clock`` (epoch seconds), ``lease_seconds`` and ``default_max_attempts`` are
    plain attributes: set them to change the defaults (tests swap the clock).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        build: Callable[[type[Any]], Any] | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._build = build or (lambda cls: cls())
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.default_max_attempts = max_attempts
        self._handlers: dict[str, _HandlerSpec] = {}
        self._ulid = UlidFactory(lambda: self.clock())

    # -- handlers --------------------------------------------------------------------

    def handler(
        self, task_type: str, *, input_model: type[BaseModel] | None = None
    ) -> Callable[[H], H]:
        """Decorator registering a function ``f(task) -> result`` or a class with
        ``run(self, task) -> result`` (built by the app's injector) for ``task_type``."""

        def register(target: H) -> H:
            self.register(task_type, target, input_model=input_model)
            return target

        return register

    def register(
        self, task_type: str, target: Any, *, input_model: type[BaseModel] | None = None
    ) -> None:
        """Register the handler of ``task_type``: a function, a class or an object with ``run``.

        ``input_model`` validates inputs at :meth:`create` and types ``task.input``.
        """
        validate_part("task type", task_type)
        if task_type in self._handlers:
            raise ProgrammingError(f"a handler for task type {task_type!r} is already registered")
        if isinstance(target, type):
            if not callable(getattr(target, "run", None)):
                raise ProgrammingError(f"handler class {target.__name__} needs a run(task) method")
        elif not callable(target) and not callable(getattr(target, "run", None)):
            raise ProgrammingError(f"handler for {task_type!r} must be callable or have run()")
        self._handlers[task_type] = _HandlerSpec(task_type, target, input_model)

    @property
    def task_types(self) -> list[str]:
        """The task types with a registered handler."""
        return sorted(self._handlers)

    # -- writing ---------------------------------------------------------------------

    def create(
        self,
        tenant_code: str,
        task_type: str,
        input: Any = None,
        *,
        subtasks: Sequence[Any] | None = None,
        name: str | None = None,
        context: InvokeContext | None = None,
        max_attempts: int | None = None,
    ) -> Task[Any]:
        """Create a task (status CREATED); the tasks stream runs it. One ``PutItem``.

        ``input`` is any JSON-able value or a pydantic model. With ``subtasks`` (a
        non-empty list of inputs) the task is a parent: one sub-task per entry runs
        the ``task_type`` handler, and the parent ends when all of them have.
        Raises :class:`TenantMismatchError` (context of another tenant),
        :class:`InvalidKeyError`, :class:`InvalidTaskInputError` or
        :class:`ItemTooLargeError` before any request.
        """
        validate_part("tenant code", tenant_code)
        validate_part("task type", task_type)
        check_tenant(tenant_code, context, is_pk=False)
        attempts = self.default_max_attempts if max_attempts is None else max_attempts
        if not isinstance(attempts, int) or attempts < 1:
            raise InterfaceError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        spec = self._handlers.get(task_type)
        model = spec.input_model if spec else None
        if subtasks is None:
            stored_input = _jsonable(input, "input", model)
        else:
            if isinstance(subtasks, (str, bytes)) or not isinstance(subtasks, Sequence):
                raise InterfaceError("subtasks must be a list of sub-task inputs")
            if not subtasks:
                raise InterfaceError("subtasks must not be empty")
            stored_input = _jsonable(input, "input", None)
            children = [_jsonable(s, f"subtasks[{i}]", model) for i, s in enumerate(subtasks)]
        pk = f"{TASK_PK_PREFIX}{KEY_SEPARATOR}{tenant_code}"
        sk = f"{task_type}{KEY_SEPARATOR}{self._ulid()}"
        now = self._now_iso()
        item: Item = {
            "pk": pk,
            "sk": sk,
            "id": f"{pk}{KEY_SEPARATOR}{sk}",
            "tenantCode": tenant_code,
            "taskType": task_type,
            "name": name or task_type,
            "status": TaskStatus.CREATED.value,
            "input": stored_input,
            "attempts": 0,
            "maxAttempts": attempts,
            "createdAt": now,
            "updatedAt": now,
            "createdBy": context.user_id if context else None,
            "createdIp": context.source_ip if context else None,
            "requestId": context.request_id if context else None,
        }
        if subtasks is not None:
            item.update(
                subtaskCount=len(children), subtaskInputs=children, succeeded=0, failed=0, running=0
            )
        wire = _wire(item)
        size = item_size(wire)
        if size > MAX_ITEM_BYTES:
            raise ItemTooLargeError(
                f"task {sk} is about {size} bytes; DynamoDB's item limit is {MAX_ITEM_BYTES}: "
                "keep large inputs in S3 and pass their keys"
            )
        with dynamo_errors(f"put {self.table_name}"):
            self._client.put_item(
                TableName=self.table_name, Item=wire, ConditionExpression="attribute_not_exists(pk)"
            )
        return Task[Any].model_validate(item)

    # -- reading ---------------------------------------------------------------------

    def get(
        self,
        tenant_code_or_pk: str,
        sk: str,
        *,
        consistent: bool = False,
        context: InvokeContext | None = None,
    ) -> Task[Any] | None:
        """One task (or sub-task) by ``(tenant_code, sk)`` or ``(pk, sk)``, or ``None``."""
        pk = self._pk(tenant_code_or_pk, context)
        _check_task_sk(sk)
        with dynamo_errors(f"get {self.table_name}"):
            resp = self._client.get_item(
                TableName=self.table_name,
                Key=serialize({"pk": pk, "sk": sk}),
                ConsistentRead=consistent,
            )
        return Task[Any].model_validate(deserialize(resp["Item"])) if "Item" in resp else None

    def list(
        self,
        tenant_code: str,
        task_type: str | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        include_subtasks: bool = False,
        context: InvokeContext | None = None,
    ) -> TaskPage:
        """A tenant's tasks, newest first within a task type; pass ``cursor`` for more.

        Without ``task_type`` the tasks come grouped by type (in descending type
        order), each group newest first: the sort key starts with the type.
        Sub-tasks are left out unless ``include_subtasks``.
        """
        pk = self._pk(tenant_code, context)
        if task_type is not None:
            validate_part("task type", task_type)
        if not isinstance(limit, int) or limit < 1:
            raise InterfaceError(f"limit must be an int >= 1, got {limit!r}")
        values: dict[str, Any] = {":pk": pk}
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ScanIndexForward": False,
        }
        if task_type is not None:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :type)"
            values[":type"] = task_type + KEY_SEPARATOR
        if not include_subtasks:
            kwargs["FilterExpression"] = "attribute_not_exists(parentSk)"
        kwargs["ExpressionAttributeValues"] = serialize(values)
        items: builtins.list[Item] = []
        # A cursor is a position inside one partition: refuse one from another tenant (or
        # task type), as DataService.list_by_pk does, instead of handing it to DynamoDB
        # (moto silently ignores a foreign start key; engines differ, so never send one).
        start = decode_cursor(cursor, pk, values.get(":type")) if cursor else None
        while True:
            page = dict(kwargs, Limit=limit - len(items))
            if start:
                page["ExclusiveStartKey"] = start
            with dynamo_errors(f"query {self.table_name}"):
                resp = self._client.query(**page)
            items.extend(deserialize(i) for i in resp.get("Items", []))
            start = resp.get("LastEvaluatedKey")
            if not start or len(items) >= limit:
                break
        return TaskPage(
            items=[Task[Any].model_validate(i) for i in items], cursor=encode_cursor(start)
        )

    def subtasks(
        self, tenant_code_or_pk: str, sk: str, *, context: InvokeContext | None = None
    ) -> builtins.list[Task[Any]]:
        """Every sub-task of the parent task ``sk``, by index."""
        pk = self._pk(tenant_code_or_pk, context)
        _check_task_sk(sk)
        values = serialize({":pk": pk, ":prefix": sk + KEY_SEPARATOR})
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": values,
        }
        items = self._query_all(kwargs)
        tasks = [Task[Any].model_validate(i) for i in items if "subtaskIndex" in i]
        return sorted(tasks, key=lambda t: t.subtask_index or 0)

    # -- driving ---------------------------------------------------------------------

    def consume(self, records: Sequence[StreamRecord]) -> builtins.list[str]:
        """Drive tasks from tasks-table stream records; return the sequence numbers that
        failed (a DynamoDB error), for Lambda's partial batch response.

        Registered with the synchronizer by ``app.tasks``; handler errors are not
        failures here (they are stored on the task).
        """
        latest: dict[tuple[str, str], StreamRecord] = {}
        for record in records:
            image = record.new_image
            if image is None or not _is_task_item(image):
                continue
            key = (image["pk"], image["sk"])
            latest.pop(key, None)  # keep the order of each task's last record
            latest[key] = record
        failed: builtins.list[str] = []
        for record in latest.values():
            assert record.new_image is not None
            try:
                self._step(record.new_image, run=True)
            except Exception as exc:
                logger.exception(
                    "task %s / %s: record %s failed: %r",
                    record.new_image["pk"],
                    record.new_image["sk"],
                    record.sequence_number,
                    exc,
                )
                failed.append(record.sequence_number)
        return failed

    def sweep(
        self,
        tenant_code: str,
        *,
        stale_after: float = 300.0,
        context: InvokeContext | None = None,
    ) -> SweepReport:
        """Repair a tenant's stuck tasks; never runs a handler. Run it periodically.

        Reclaims PROCESSING tasks whose lease expired (→ QUEUED, or FAILED on their
        last attempt), completes parents whose sub-tasks all ended, and re-triggers
        CREATED / QUEUED tasks not updated for ``stale_after`` seconds (a CREATED
        task is queued or fanned out; a QUEUED one is touched so that a new stream
        record runs it). Reads every unfinished task of the tenant (a ``Query``
        with a filter) and writes one conditional update per repair.
        """
        pk = self._pk(tenant_code, context)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "#status IN (:created, :queued, :processing)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": serialize(
                {
                    ":pk": pk,
                    ":created": TaskStatus.CREATED.value,
                    ":queued": TaskStatus.QUEUED.value,
                    ":processing": TaskStatus.PROCESSING.value,
                }
            ),
        }
        report = SweepReport()
        cutoff = _iso(self._now_ms() - int(stale_after * 1000))
        for item in self._query_all(kwargs):
            report.examined += 1
            waiting = item["status"] in (TaskStatus.CREATED, TaskStatus.QUEUED)
            if waiting and str(item.get("updatedAt", "")) > cutoff:
                continue  # its stream record is probably still on its way
            try:
                report.writes += self._step(item, run=False)
            except Exception as exc:
                logger.exception("sweep of %s / %s failed", item["pk"], item["sk"])
                report.errors.append(exc)
        return report

    # -- the state machine -------------------------------------------------------------

    def _step(self, item: Item, *, run: bool) -> int:
        """Act on one observed state of a task; return the number of writes that applied."""
        status = item.get("status")
        if status not in TaskStatus.__members__:
            logger.warning("task %s / %s has unknown status %r", item["pk"], item["sk"], status)
            return 0
        if "subtaskCount" in item:
            if "subtaskInputs" in item and (status == TaskStatus.CREATED or not run):
                return self._fan_out(item)  # from its INSERT, or a sweep after a crash
            if status in (TaskStatus.QUEUED, TaskStatus.PROCESSING) and _children_done(item):
                return self._complete_parent(item)
            return 0
        if status == TaskStatus.CREATED:
            return self._write(
                item,
                _expect(item),
                {"status": TaskStatus.QUEUED.value, "updatedAt": self._now_iso()},
            )
        if status == TaskStatus.QUEUED:
            if run:
                return self._claim_and_run(item)
            return self._write(item, _expect(item), {"updatedAt": self._now_iso()})  # re-trigger
        if status == TaskStatus.PROCESSING and self._lease_expired(item):
            return self._reclaim(item)
        return 0

    def _claim_and_run(self, item: Item) -> int:
        spec = self._handlers.get(item["taskType"])
        if spec is None:
            logger.error("no handler for task type %r: %s fails", item["taskType"], item["sk"])
            error = _error_of(
                NoTaskHandlerError(f"no handler is registered for task type {item['taskType']!r}"),
                int(item["attempts"]),
            )
            return self._finish(item, TaskStatus.FAILED, {"error": error})
        attempt = int(item["attempts"]) + 1
        now_ms = self._now_ms()
        updates: dict[str, Any] = {
            "status": TaskStatus.PROCESSING.value,
            "attempts": attempt,
            "leaseUntil": now_ms + int(self.lease_seconds * 1000),
            "updatedAt": _iso(now_ms),
        }
        if attempt == 1:
            updates["startedAt"] = _iso(now_ms)
        parent = None
        if "parentSk" in item and attempt == 1:
            parent = _ParentUpdate(
                item["parentSk"], {"running": 1}, set_status=TaskStatus.PROCESSING
            )
        claimed = self._transition(item, _expect(item), updates, parent=parent)
        if claimed is None:
            return 0
        return 1 + self._run(spec, claimed)

    def _run(self, spec: _HandlerSpec, item: Item) -> int:
        """Run the handler for the attempt ``item`` was claimed for; write its outcome."""
        attempt = int(item["attempts"])
        try:
            try:
                task = _task_class(spec.input_model).model_validate(item)
            except ValidationError as exc:
                raise PermanentTaskError(f"stored input does not validate: {exc}") from exc
            task._reporter = lambda progress: self._report_progress(item, progress)
            result = _jsonable(self._resolve(spec)(task), "result", None, PermanentTaskError)
            done = {**item, "result": result, "status": TaskStatus.COMPLETED.value}
            size = item_size(_wire(done))
            if size > MAX_ITEM_BYTES:
                raise PermanentTaskError(
                    f"the result makes the task about {size} bytes; the limit is {MAX_ITEM_BYTES}"
                )
        except Exception as exc:
            logger.warning(
                "task %s attempt %d/%s failed: %r", item["sk"], attempt, item["maxAttempts"], exc
            )
            return self._fail_attempt(
                item, _error_of(exc, attempt), isinstance(exc, PermanentTaskError)
            )
        return self._finish(item, TaskStatus.COMPLETED, {"result": result}, remove=("error",))

    def _resolve(self, spec: _HandlerSpec) -> Callable[[Task[Any]], Any]:
        target = spec.target
        if isinstance(target, type):
            if spec.instance is None:
                spec.instance = self._build(target)
            run: Callable[[Task[Any]], Any] = spec.instance.run
            return run
        method = getattr(target, "run", None)
        fn: Callable[[Task[Any]], Any] = method if callable(method) else target
        return fn

    def _report_progress(self, item: Item, progress: Any) -> None:
        now_ms = self._now_ms()
        updates = {
            "progress": _jsonable(progress, "progress", None, InterfaceError),
            "leaseUntil": now_ms + int(self.lease_seconds * 1000),
            "updatedAt": _iso(now_ms),
        }
        if self._transition(item, _expect(item), updates) is None:
            raise TaskLeaseLostError(
                f"task {item['sk']} attempt {item['attempts']} lost its lease (reclaimed)"
            )

    def _reclaim(self, item: Item) -> int:
        attempt = int(item["attempts"])
        error = _error_of(
            TaskLeaseExpiredError(f"attempt {attempt} did not finish before its lease expired"),
            attempt,
        )
        return self._fail_attempt(item, error, False, lease=item.get("leaseUntil"))

    def _fail_attempt(
        self, item: Item, error: dict[str, Any], permanent: bool, *, lease: Any = None
    ) -> int:
        if permanent or int(item["attempts"]) >= int(item["maxAttempts"]):
            return self._finish(item, TaskStatus.FAILED, {"error": error}, lease=lease)
        updates = {"status": TaskStatus.QUEUED.value, "error": error, "updatedAt": self._now_iso()}
        written = self._transition(item, _expect(item, lease), updates, remove=("leaseUntil",))
        return int(written is not None)

    def _finish(
        self,
        item: Item,
        status: TaskStatus,
        updates: Mapping[str, Any],
        *,
        remove: tuple[str, ...] = (),
        lease: Any = None,
    ) -> int:
        """QUEUED / PROCESSING → COMPLETED / FAILED, counting a sub-task on its parent."""
        now = self._now_iso()
        values = {**updates, "status": status.value, "updatedAt": now, "finishedAt": now}
        parent = None
        if "parentSk" in item:
            delta = {"succeeded" if status == TaskStatus.COMPLETED else "failed": 1}
            if int(item["attempts"]) >= 1:  # counted as running since its first claim
                delta["running"] = -1
            parent = _ParentUpdate(item["parentSk"], delta)
        written = self._transition(
            item, _expect(item, lease), values, remove=("leaseUntil", *remove), parent=parent
        )
        if written is None:
            logger.info("task %s: %s not written, it moved on meanwhile", item["sk"], status)
        return int(written is not None)

    def _fan_out(self, item: Item) -> int:
        """Write the sub-tasks of a parent, idempotently (see "Sub-tasks" above)."""
        written = 0
        now = self._now_iso()
        if item["status"] == TaskStatus.CREATED:
            queued = {"status": TaskStatus.QUEUED.value, "updatedAt": now}
            if self._transition(item, _expect(item), queued) is not None:
                written += 1
            else:  # a redelivery: carry on only if the fan-out is unfinished
                current = self._get_item(item["pk"], item["sk"])
                if current is None or "subtaskInputs" not in current:
                    return written
        for index, input in enumerate(item["subtaskInputs"]):
            child = _wire(self._child(item, index, input, now))
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item=child,
                    ConditionExpression="attribute_not_exists(pk)",
                )
                written += 1
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise translate(exc, f"fan out {item['sk']}") from exc
        done = _Cond("attribute_exists(#c_inputs)", {"#c_inputs": "subtaskInputs"})
        written += self._write(item, done, {"updatedAt": now}, remove=("subtaskInputs",))
        return written

    def _child(self, parent: Item, index: int, input: Any, now: str) -> Item:
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

    def _complete_parent(self, item: Item) -> int:
        total, ok, bad = int(item["subtaskCount"]), int(item["succeeded"]), int(item["failed"])
        status = TaskStatus.FAILED if bad else TaskStatus.COMPLETED
        now = self._now_iso()
        updates: dict[str, Any] = {
            "status": status.value,
            "result": {"total": total, "succeeded": ok, "failed": bad},
            "updatedAt": now,
            "finishedAt": now,
        }
        if bad:
            updates["error"] = _error_of(
                SubtaskFailedError(f"{bad} of {total} sub-tasks failed"), None
            )
        cond = _Cond(
            "#c_status = :c_status AND #c_ok = :c_ok AND #c_bad = :c_bad",
            {"#c_status": "status", "#c_ok": "succeeded", "#c_bad": "failed"},
            {":c_status": item["status"], ":c_ok": ok, ":c_bad": bad},
        )
        return int(self._transition(item, cond, updates) is not None)

    # -- writes ----------------------------------------------------------------------

    def _write(
        self, item: Item, cond: _Cond, updates: Mapping[str, Any], *, remove: Sequence[str] = ()
    ) -> int:
        return int(self._transition(item, cond, updates, remove=remove) is not None)

    def _get_item(self, pk: str, sk: str) -> Item | None:
        with dynamo_errors(f"get {self.table_name}"):
            resp = self._client.get_item(
                TableName=self.table_name,
                Key=serialize({"pk": pk, "sk": sk}),
                ConsistentRead=True,
            )
        return deserialize(resp["Item"]) if "Item" in resp else None

    def _transition(
        self,
        item: Item,
        cond: _Cond,
        updates: Mapping[str, Any],
        *,
        remove: Sequence[str] = (),
        parent: _ParentUpdate | None = None,
    ) -> Item | None:
        """One conditional write of ``item`` (with its parent's counters, atomically).

        Returns the item as written, or ``None`` if the condition failed (the task
        moved on: a stale record). Then, if the task turns out to be PROCESSING
        with an expired lease, it is reclaimed.
        """
        request = self._update_request(item["pk"], item["sk"], cond, set_=updates, remove=remove)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        current: Item | None = None
        try:
            if parent is None:
                resp = self._client.update_item(**request, ReturnValues="ALL_NEW")
                return deserialize(resp["Attributes"])
            ops: builtins.list[Any] = [
                {"Update": request},
                {"Update": self._parent_request(item, parent)},
            ]
            self._transact(ops)
            new = {**item, **updates}
            for name in remove:
                new.pop(name, None)
            return new
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                old = getattr(exc, "response", {}).get("Item")
                current = deserialize(old) if old else None
            elif code == "TransactionCanceledException" and parent is not None:
                reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
                codes = _cancellation_codes(exc)
                if codes[:1] == ["ConditionalCheckFailed"]:
                    old = reasons[0].get("Item")
                    current = deserialize(old) if old else None
                elif codes[1:2] == ["ConditionalCheckFailed"]:
                    # The parent is gone or already ended: never block the stream on it.
                    logger.error("task %s: parent %s cannot count it", item["sk"], parent.sk)
                    return self._transition(item, cond, updates, remove=remove)
                else:
                    raise translate(exc, f"update {item['sk']}") from exc
            else:
                raise translate(exc, f"update {item['sk']}") from exc
        if (
            current is not None
            and current.get("status") == TaskStatus.PROCESSING
            and "subtaskCount" not in current
            and self._lease_expired(current)
            and (current.get("attempts"), current.get("leaseUntil"))
            != (item.get("attempts"), item.get("leaseUntil"))
        ):
            self._reclaim(current)
        return None

    def _transact(self, ops: builtins.list[Any]) -> None:
        """``TransactWriteItems``, retried a few times when it loses a race for the parent
        (``TransactionConflict``: sibling sub-tasks finishing at once), which botocore
        does not retry."""
        for retry in range(_CONFLICT_RETRIES):
            try:
                self._client.transact_write_items(TransactItems=ops)
                return
            except ClientError as exc:
                last = retry == _CONFLICT_RETRIES - 1
                if last or "TransactionConflict" not in _cancellation_codes(exc):
                    raise
                time.sleep(0.02 * 2**retry)

    def _parent_request(self, item: Item, parent: _ParentUpdate) -> dict[str, Any]:
        cond = _Cond(
            "#c_status IN (:c_queued, :c_processing)",
            {"#c_status": "status"},
            {":c_queued": TaskStatus.QUEUED.value, ":c_processing": TaskStatus.PROCESSING.value},
        )
        set_: dict[str, Any] = {"updatedAt": self._now_iso()}
        if parent.set_status is not None:
            set_["status"] = parent.set_status.value
        return self._update_request(item["pk"], parent.sk, cond, set_=set_, add=parent.add)

    def _update_request(
        self,
        pk: str,
        sk: str,
        cond: _Cond,
        *,
        set_: Mapping[str, Any],
        add: Mapping[str, int] | None = None,
        remove: Sequence[str] = (),
    ) -> dict[str, Any]:
        names = dict(cond.names)
        values = {k: serialize_value(v) for k, v in cond.values.items()}
        parts: builtins.list[str] = []
        # SET "#s0 = :s0, ..." and ADD "#a0 :a0, ...": same naming, different operator.
        for keyword, tag, operator, pairs in (("SET", "s", " = ", set_), ("ADD", "a", " ", add)):
            if not pairs:
                continue
            clauses = []
            for i, (attr, value) in enumerate(pairs.items()):
                names[f"#{tag}{i}"] = attr
                values[f":{tag}{i}"] = serialize_value(value)
                clauses.append(f"#{tag}{i}{operator}:{tag}{i}")
            parts.append(f"{keyword} " + ", ".join(clauses))
        if remove:
            for i, attr in enumerate(remove):
                names[f"#r{i}"] = attr
            parts.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove))))
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": serialize({"pk": pk, "sk": sk}),
            "UpdateExpression": " ".join(parts),
            "ConditionExpression": cond.expression,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        return request

    # -- helpers ---------------------------------------------------------------------

    def _pk(self, tenant_code_or_pk: str, context: InvokeContext | None) -> str:
        if not isinstance(tenant_code_or_pk, str):
            raise InvalidKeyError(f"tenant code or pk must be a string, got {tenant_code_or_pk!r}")
        prefix, sep, tenant = tenant_code_or_pk.partition(KEY_SEPARATOR)
        if not sep:
            prefix, tenant = TASK_PK_PREFIX, tenant_code_or_pk
        if prefix != TASK_PK_PREFIX:
            raise InvalidKeyError(f"task pk {tenant_code_or_pk!r} must look like 'TASK#<tenant>'")
        validate_part("tenant code", tenant)
        check_tenant(tenant, context, is_pk=False)
        return f"{TASK_PK_PREFIX}{KEY_SEPARATOR}{tenant}"

    def _query_all(self, kwargs: dict[str, Any]) -> builtins.list[Item]:
        return builtins.list(paginate(self._client, "query", kwargs))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _now_iso(self) -> str:
        return _iso(self._now_ms())

    def _lease_expired(self, item: Item) -> bool:
        lease = item.get("leaseUntil")
        return lease is None or int(lease) < self._now_ms()


# -- module helpers ----------------------------------------------------------------------


@dataclass
class _Cond:
    expression: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _ParentUpdate:
    sk: str
    add: dict[str, int]
    set_status: TaskStatus | None = None


def _expect(item: Item, lease: Any = None) -> _Cond:
    """The condition "the task is still in the state ``item`` shows"."""
    cond = _Cond(
        "#c_status = :c_status AND #c_attempts = :c_attempts",
        {"#c_status": "status", "#c_attempts": "attempts"},
        {":c_status": item["status"], ":c_attempts": int(item["attempts"])},
    )
    if lease is not None:
        cond.expression += " AND #c_lease = :c_lease"
        cond.names["#c_lease"] = "leaseUntil"
        cond.values[":c_lease"] = lease
    return cond


def _task_class(model: type[BaseModel] | None) -> type[Task[Any]]:
    """``Task[model]`` (pydantic caches the parametrized class), or ``Task[Any]``."""
    generic: Any = Task
    return Task[Any] if model is None else cast("type[Task[Any]]", generic[model])


def _children_done(item: Item) -> bool:
    done = int(item.get("succeeded", 0)) + int(item.get("failed", 0))
    return done >= int(item["subtaskCount"])


def _is_task_item(item: Mapping[str, Any]) -> bool:
    pk = item.get("pk")
    return (
        isinstance(pk, str)
        and pk.startswith(TASK_PK_PREFIX + KEY_SEPARATOR)
        and "status" in item
        and "taskType" in item
        and "attempts" in item
    )


def _check_task_sk(sk: str) -> None:
    if (
        not isinstance(sk, str)
        or KEY_SEPARATOR not in sk
        or any(not part for part in sk.split(KEY_SEPARATOR))
    ):
        raise InvalidKeyError(f"task sk {sk!r} must look like '<taskType>#<ulid>[#<index>]'")


def _error_of(exc: BaseException, attempt: int | None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or repr(exc)}
    if attempt is not None:
        error["attempt"] = attempt
    return error


def _jsonable(
    value: Any,
    what: str,
    model: type[BaseModel] | None,
    error: type[Exception] = InvalidTaskInputError,
) -> Any:
    """``value`` as plain JSON types (a pydantic model is dumped), validated by ``model``."""
    try:
        plain = to_jsonable_python(value)
    except PydanticSerializationError as exc:
        raise error(f"{what} is not JSON-able: {exc}") from exc
    if model is not None:
        try:
            model.model_validate(plain)
        except ValidationError as exc:
            raise InvalidTaskInputError(
                f"{what} does not validate as {model.__name__}: {exc}"
            ) from exc
    return plain


def _wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """Serialize a task item, keeping a ``None`` input or result as DynamoDB NULL."""
    wire = serialize(item)
    for name in ("input", "result"):
        if name in item and item[name] is None:
            wire[name] = {"NULL": True}
    return wire


def _cancellation_codes(exc: BaseException) -> list[str]:
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return [str(r.get("Code")) for r in reasons]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
