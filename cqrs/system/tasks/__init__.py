"""Tasks: long-running asynchronous work with a status lifecycle, driven by the tasks stream.

```python
@app.tasks.handler("csv-import", input_model=CsvImport)
def import_csv(task: Task[CsvImport]) -> dict[str, int]:
    task.report_progress({"rows": 0})
    ...
    return {"rows": 1200}

ctx = InvokeContext(tenant_code="acme", user_id="u1")
task = app.tasks.create("acme", "csv-import", {"key": "uploads/a.csv"}, context=ctx)
app.sync()                       # locally; in AWS the stream Lambda (cqrs.aws.handler) runs it
app.tasks.get("acme", task.sk, context=ctx).status  # TaskStatus.COMPLETED
```

Every call that names a tenant (``create``, ``get``, ``list``, ``subtasks``,
``sweep``) takes ``context``: the tenant's :class:`~cqrs.core.context.InvokeContext`, or
:data:`~cqrs.core.context.SYSTEM` for trusted code acting on any tenant (audit fields
then name the user ``system``). Another tenant's context is a
:class:`~cqrs.core.errors.TenantMismatchError`, no context a
:class:`~cqrs.core.errors.MissingContextError`, both before any request.

Modules: :mod:`.models` (what callers and handlers read), :mod:`.values` (inputs,
progress and results DynamoDB can store, typed :data:`JsonValue`), :mod:`.records`
(the typed record of a stored task, ``from_item``/``to_item``: the only module that
spells stored attribute names), :mod:`.changes` (what a transition writes),
:mod:`.items` (keys and new tasks), :mod:`.conditions` (the states a write
requires, by name), :mod:`.writes` (the conditional writes), :mod:`.machine` and
:mod:`.subtasks` (the state machine), :mod:`.consumer` (stream records),
:mod:`.handlers` and :mod:`.service` (:class:`TaskService`, ``app.tasks``).

The errors live in :mod:`cqrs.core.errors` and are re-exported here:
:class:`PermanentTaskError` (raised by handlers; a plain ``Exception``),
:class:`InvalidTaskInputError`, :class:`TaskLeaseLostError`, and the errors stored
on a task: ``TaskLeaseExpiredError``, ``NoTaskHandlerError``, ``SubtaskFailedError``.

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
``subtaskInputs`` until the fan-out is done). A ``None`` input is not stored
(the attribute is absent; it reads back as ``None``).

Inputs, sub-task inputs, progress and results are plain values (pydantic models
are dumped, dates and other JSON-able leaves become JSON text). Anything
DynamoDB cannot store (NaN, ±infinity, numbers beyond 38 digits or its range,
map keys that are not strings, nesting deeper than 32 levels, empty or mixed
sets) is an :class:`InvalidTaskInputError` before any write; a result that
cannot be stored fails its attempt permanently (:class:`PermanentTaskError`). A
stored item that is not a well-formed task is an :class:`InvalidTaskItemError`.

Lifecycle
---------
::

    CREATED ──► QUEUED ──► PROCESSING ──► COMPLETED
                  ▲            │    └───► FAILED      (attempts == maxAttempts,
                  └────────────┘                       or PermanentTaskError)
              attempt failed, attempts < maxAttempts

Every transition is one conditional write whose condition names the state it
leaves (:mod:`.conditions`): ``still_in(task)`` (the status and attempts it
saw), plus ``still_leased(task)`` (the lease it saw) when reclaiming.
``attempts`` is incremented by the claim (QUEUED → PROCESSING) and never
decreases, so each (status, attempts) pair occurs once in a task's life: a
stream record that is redelivered, duplicated or stale names a state the task
has left, its write fails the condition, and nothing happens. In particular a
handler runs only after its own claim succeeded, so a redelivered record never
runs a handler again.

The consumer (:meth:`TaskService.consume`) is a state machine over the **new
image** of each record; the event name does not matter. Within a batch only the
last image of each task is used (earlier ones are superseded). For a new image
in state:

- ``CREATED``: queue it (→ QUEUED); a parent fans out instead (below).
- ``QUEUED``: claim it (→ PROCESSING, ``attempts + 1``, ``leaseUntil = now +
  lease_seconds``), run the handler, then write COMPLETED with the result, or
  the error and QUEUED again (a retry, driven by that write's own stream record)
  or FAILED. A task type with no registered handler goes straight to FAILED
  (``NoTaskHandlerError``) without using an attempt; with
  ``TaskService(unhandled="leave")`` (``cqrs dev`` without ``--app``, a process
  that has none of the service's handlers) it stays QUEUED instead, untouched,
  and the service logs one warning per task type.
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
is retried a few times with a short backoff by the store, then reported as a
failed record (a transient error). The embedded engine (moto) deep-copies the
table for each transaction, so sub-tasks are slow there once the table and its
stream have grown; DynamoDB Local and AWS are not affected.

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

Errors while consuming
----------------------
Retries are immediate (the next stream delivery); there is no backoff. An error
retrying can cure (:func:`cqrs.core.errors.is_retryable`: throttling beyond the
SDK's retries, a 5xx, a transaction that kept losing its race) reports the
record in the partial batch response and Lambda redelivers it; every step is
safe to repeat. Any other error (a request DynamoDB refuses, a missing table,
denied access, a bug) is logged at ERROR with the record's sequence number and
task key and the record is acknowledged, so it never holds the shard: the task
stays where it was until a sweep repairs it, once the cause is fixed. A failure
to write a finished attempt's outcome leaves the task PROCESSING until its
lease expires and a sweep reclaims it.
"""

from __future__ import annotations

from ...core.errors import (
    InvalidTaskInputError,
    InvalidTaskItemError,
    NoTaskHandlerError,
    PermanentTaskError,
    SubtaskFailedError,
    TaskLeaseExpiredError,
    TaskLeaseLostError,
)
from ...core.ulid import UlidFactory, encode_ulid
from .handlers import TaskHandler
from .models import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    TASK_PK_PREFIX,
    SweepReport,
    Task,
    TaskError,
    TaskPage,
    TaskStatus,
    Unhandled,
)
from .service import TaskService
from .values import JsonValue

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "TASK_PK_PREFIX",
    "InvalidTaskInputError",
    "InvalidTaskItemError",
    "JsonValue",
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
    "Unhandled",
    "encode_ulid",
]
