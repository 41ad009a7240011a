"""The typed record of a stored task: items ⇄ records at the store, changes as updates,
and the task errors, which live in :mod:`cqrs.core.errors`."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import cqrs.core.errors as core_errors
import cqrs.system.tasks as tasks_package
from cqrs import SYSTEM, Cqrs
from cqrs.core.errors import (
    CqrsError,
    IntegrityError,
    InterfaceError,
    InvalidValueError,
    OperationalError,
    ProgrammingError,
    is_retryable,
)
from cqrs.store import Update
from cqrs.store.expressions import Placeholders
from cqrs.system.tasks import InvalidTaskItemError, Task, TaskStatus
from cqrs.system.tasks.changes import UNSET, Change, ParentCount
from cqrs.system.tasks.records import ErrorRecord, TaskRecord, is_task_item, task_or_none
from cqrs.testing import RequestCounter, stream_records, table_items

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def clock(cqrs_app: Cqrs) -> list[float]:
    now = [T0]
    cqrs_app.tasks.clock = lambda: now[0]
    return now


def stored(app: Cqrs) -> dict[str, dict[str, Any]]:
    return {i["sk"]: i for i in table_items(app, app.tasks.table_name)}


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "base", "retryable"),
    [
        ("PermanentTaskError", Exception, False),
        ("InvalidTaskInputError", InvalidValueError, False),
        ("InvalidTaskItemError", InterfaceError, False),
        ("TaskLeaseLostError", IntegrityError, False),
        ("TaskLeaseExpiredError", OperationalError, False),
        ("NoTaskHandlerError", ProgrammingError, False),
        ("SubtaskFailedError", IntegrityError, False),
    ],
)
def test_task_errors_live_in_core_and_are_re_exported(name, base, retryable):
    error = getattr(core_errors, name)
    assert getattr(tasks_package, name) is error
    assert issubclass(error, base)
    assert is_retryable(error("x")) is retryable


def test_a_handler_raises_permanent_task_error_like_any_exception():
    assert not issubclass(core_errors.PermanentTaskError, CqrsError)
    assert core_errors.PermanentTaskError().args == ()
    assert core_errors.PermanentTaskError("a", 1).args == ("a", 1)


# -- items ⇄ records -----------------------------------------------------------------------


def test_every_stored_task_round_trips_through_its_record(cqrs_app, drain, clock):
    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> Any:
        task.report_progress({"done": 1})
        if task.input == "bad":
            raise ValueError("bad input")
        return None if task.input == "none" else {"n": task.input}

    cqrs_app.tasks.create("acme", "job", "none", context=SYSTEM)
    cqrs_app.tasks.create("acme", "job", "bad", max_attempts=1, context=SYSTEM)
    parent = cqrs_app.tasks.create("acme", "job", {"p": 1}, subtasks=[1, "bad"], context=SYSTEM)
    cqrs_app.tasks.create("acme", "unknown", None, context=SYSTEM)
    created = stored(cqrs_app)
    assert "subtaskInputs" in created[parent.sk]
    assert {sk: TaskRecord.from_item(i).to_item() for sk, i in created.items()} == created
    drain(cqrs_app)

    items = stored(cqrs_app)
    assert len(items) == 6
    records = {sk: TaskRecord.from_item(item) for sk, item in items.items()}
    # A NULL result (a handler returned None) reads back as None, and a put leaves it out.
    assert {sk: r.to_item() for sk, r in records.items()} == {
        sk: {k: v for k, v in item.items() if v is not None} for sk, item in items.items()
    }
    assert sum(item.get("result", 0) is None for item in items.values()) == 1
    done = records[parent.sk]
    assert (done.status, done.subtask_count, done.subtask_inputs) == (TaskStatus.FAILED, 2, None)
    assert (done.succeeded, done.failed, done.running) == (1, 1, 0)
    assert done.error == ErrorRecord("SubtaskFailedError", "1 of 2 sub-tasks failed")
    child = records[f"{parent.sk}#1"]
    assert (child.parent_sk, child.subtask_index, child.input) == (parent.sk, 1, "bad")
    assert child.error == ErrorRecord("ValueError", "bad input", 3)  # its last attempt
    assert all(r.progress == {"done": 1} for r in records.values() if r.attempts)


def test_a_none_result_is_stored_as_null_and_reads_back_as_none(cqrs_app, drain, clock):
    cqrs_app.tasks.register("job", lambda task: None)
    created = cqrs_app.tasks.create("acme", "job", None, context=SYSTEM)
    drain(cqrs_app)
    item = stored(cqrs_app)[created.sk]
    assert "result" in item and item["result"] is None and "input" not in item
    record = TaskRecord.from_item(item)
    assert (record.result, record.input, record.lease_until) == (None, None, None)


def minimal_item(**changes: Any) -> dict[str, Any]:
    item = {
        "pk": "TASK#acme",
        "sk": "job#01",
        "id": "TASK#acme#job#01",
        "tenantCode": "acme",
        "taskType": "job",
        "name": "job",
        "status": "QUEUED",
        "attempts": 0,
        "createdAt": "2026-01-01T00:00:00.000+00:00",
        "updatedAt": "2026-01-01T00:00:00.000+00:00",
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def test_a_minimal_item_takes_the_defaults_of_the_public_model():
    record = TaskRecord.from_item(minimal_item())
    assert (record.max_attempts, record.is_parent, record.id) == (3, False, "TASK#acme#job#01")
    public = Task[Any].model_validate(minimal_item())
    assert public.max_attempts == record.max_attempts
    assert public.id == record.id  # both derived from the same item


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "PAUSED"},
        {"status": None},
        {"attempts": "1"},
        {"attempts": True},
        {"attempts": None},
        {"tenantCode": 7},
        {"error": "boom"},
        {"error": {"type": "X"}},
        {"subtaskInputs": "x"},
        {"leaseUntil": 1.5},
    ],
    ids=str,
)
def test_a_malformed_item_is_an_invalid_task_item_error(changes):
    with pytest.raises(InvalidTaskItemError, match="job#01"):
        TaskRecord.from_item(minimal_item(**changes))


def test_items_that_are_not_tasks_or_have_an_unknown_status():
    assert is_task_item(minimal_item())
    assert not is_task_item(minimal_item(pk="SEQ#acme"))
    assert not is_task_item(minimal_item(taskType=None))
    assert task_or_none(None) is None
    assert task_or_none(minimal_item(status="PAUSED")) is None
    assert task_or_none(minimal_item()) == TaskRecord.from_item(minimal_item())


# -- changes -------------------------------------------------------------------------------


def test_a_change_sets_what_it_names_and_removes_what_it_sets_to_none():
    change = Change(
        updated_at="t1",
        status=TaskStatus.COMPLETED,
        lease_until=None,
        result=None,
        error=None,
        subtask_inputs=None,
    )
    values, removed = change.stored()
    assert values == {"updatedAt": "t1", "status": "COMPLETED", "result": None}
    assert removed == ("leaseUntil", "error", "subtaskInputs")
    assert Change(updated_at="t2").stored() == ({"updatedAt": "t2"}, ())
    assert Change(updated_at="t3", progress=UNSET).stored() == ({"updatedAt": "t3"}, ())


def test_a_change_applied_locally_is_what_dynamodb_would_store():
    task = TaskRecord.from_item(
        minimal_item(
            status="PROCESSING", attempts=1, leaseUntil=5, error={"type": "E", "message": "m"}
        )
    )
    done = Change(
        updated_at="t1", finished_at="t1", status=TaskStatus.COMPLETED, lease_until=None,
        result={"rows": 2}, error=None,
    ).applied_to(task)  # fmt: skip
    assert (done.status, done.result, done.error, done.lease_until) == (
        TaskStatus.COMPLETED, {"rows": 2}, None, None
    )  # fmt: skip
    assert (done.updated_at, done.finished_at, done.attempts) == ("t1", "t1", 1)


def rendered(update: Update) -> tuple[str, dict[str, str], dict[str, Any]]:
    p = Placeholders()
    return update.render(p), p.names, p.values


def test_a_parent_count_adds_only_the_counts_that_change():
    text, names, values = rendered(ParentCount("job#01", running=1).to_update("t1"))
    assert text == "SET #n0 = :v0 ADD #n1 :v1"
    assert (names, values) == (
        {"#n0": "updatedAt", "#n1": "running"},
        {":v0": {"S": "t1"}, ":v1": {"N": "1"}},
    )
    claim = ParentCount("job#01", running=-1, failed=1, status=TaskStatus.FAILED)
    text, names, _ = rendered(claim.to_update("t1"))
    assert set(names.values()) == {"updatedAt", "status", "running", "failed"}
    assert "succeeded" not in names.values()


# -- the consumer at the boundary -----------------------------------------------------------


def test_an_image_with_an_unknown_status_is_skipped_with_a_warning(cqrs_app, clock, caplog):
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    [insert] = [
        r for r in stream_records(cqrs_app)
        if f":table/{cqrs_app.tasks.table_name}/" in r["eventSourceARN"]
    ]  # fmt: skip
    insert["dynamodb"]["NewImage"]["status"] = {"S": "PAUSED"}
    counter = RequestCounter(cqrs_app.clients.dynamodb)
    with caplog.at_level(logging.WARNING, "cqrs.system.tasks"), counter as n:
        report = cqrs_app.process_event({"Records": [insert]})
    assert report.failed == [] and n.total == 0
    [warning] = [r for r in caplog.records if r.name == "cqrs.system.tasks"]
    assert warning.levelno == logging.WARNING
    assert "PAUSED" in warning.getMessage() and created.sk in warning.getMessage()
