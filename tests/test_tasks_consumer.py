"""The tasks stream consumer never holds a shard on an error retrying cannot cure.

DynamoDB errors are injected with a botocore ``before-call`` hook on the app's
client, so they come back through the real request path (and the store's
classification), as they would from AWS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cqrs import SYSTEM, Cqrs
from cqrs.store.stream_records import parse_record
from cqrs.system.tasks import TaskStatus
from cqrs.testing import stream_records

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(cqrs_app: Cqrs) -> FakeClock:
    fake = FakeClock()
    cqrs_app.tasks.clock = fake
    return fake


def task_records(app: Cqrs) -> list[dict[str, Any]]:
    table = app.tasks.table_name
    return [r for r in stream_records(app) if f":table/{table}/" in r["eventSourceARN"]]


@contextmanager
def failing(app: Cqrs, operation: str, code: str) -> Iterator[list[int]]:
    """Every ``operation`` request fails with the AWS error ``code`` while inside."""
    calls: list[int] = []

    def fail(**_: Any) -> None:
        calls.append(1)
        error = {"Error": {"Code": code, "Message": f"injected {code}"}}
        raise ClientError(error, operation)  # type: ignore[arg-type]

    events = app.clients.dynamodb.meta.events
    event = f"before-call.dynamodb.{operation}"
    events.register(event, fail)
    try:
        yield calls
    finally:
        events.unregister(event, fail)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cqrs.system.tasks" and r.levelno >= logging.ERROR
    ]


def test_a_permanent_error_is_logged_and_acknowledged(cqrs_app, clock, drain, caplog):
    calls: list[int] = []
    cqrs_app.tasks.register("job", lambda task: calls.append(task.attempts))
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    [insert] = task_records(cqrs_app)
    sequence_number = insert["dynamodb"]["SequenceNumber"]

    with failing(cqrs_app, "UpdateItem", "ValidationException") as attempts:
        report = cqrs_app.process_event({"Records": [insert]})
    assert attempts == [1]
    assert report.failed == []  # acknowledged: the shard moves on
    assert report.response() == {"batchItemFailures": []}
    [message] = errors_logged(caplog)
    assert sequence_number in message
    assert created.pk in message and created.sk in message
    assert "RequestRejectedError" in message
    task = cqrs_app.tasks.get("acme", created.sk, consistent=True, context=SYSTEM)
    assert task.status == TaskStatus.CREATED  # left where it was

    # Once the cause is fixed, a sweep repairs the task; the stream runs it.
    clock.now += 301
    assert cqrs_app.tasks.sweep("acme", context=SYSTEM).writes == 1
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, calls) == (TaskStatus.COMPLETED, [1])


def test_a_transient_error_is_reported_for_redelivery(cqrs_app, clock, drain, caplog):
    calls: list[int] = []
    cqrs_app.tasks.register("job", lambda task: calls.append(task.attempts))
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    [insert] = task_records(cqrs_app)
    sequence_number = insert["dynamodb"]["SequenceNumber"]

    with failing(cqrs_app, "UpdateItem", "ThrottlingException"):
        report = cqrs_app.process_event({"Records": [insert]})
    assert report.failed == [sequence_number]
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    assert errors_logged(caplog) == []
    task = cqrs_app.tasks.get("acme", created.sk, consistent=True, context=SYSTEM)
    assert task.status == TaskStatus.CREATED

    assert cqrs_app.process_event({"Records": [insert]}).failed == []  # Lambda's redelivery
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, calls) == (TaskStatus.COMPLETED, [1])


@pytest.mark.parametrize(
    ("code", "retried"),
    [("ValidationException", False), ("ThrottlingException", True)],
    ids=["permanent", "transient"],
)
def test_only_transient_errors_of_a_batch_are_reported(cqrs_app, clock, caplog, code, retried):
    first = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    second = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    records = task_records(cqrs_app)
    with failing(cqrs_app, "UpdateItem", code):
        report = cqrs_app.process_event({"Records": records})
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert report.failed == (numbers if retried else [])
    logged = errors_logged(caplog)
    assert len(logged) == (0 if retried else 2)
    for task, message in zip((first, second), logged, strict=False):
        assert task.sk in message


def test_a_permanent_error_of_a_sub_task_transaction_is_acknowledged(cqrs_app, clock, caplog):
    cqrs_app.tasks.register("job", lambda task: task.input)
    parent = cqrs_app.tasks.create("acme", "job", subtasks=[1], context=SYSTEM)
    cqrs_app.process_event({"Records": task_records(cqrs_app)})  # fan-out
    child_insert = [
        r
        for r in task_records(cqrs_app)
        if r["eventName"] == "INSERT" and parse_record(r).new_image["sk"] == f"{parent.sk}#0"
    ]
    with failing(cqrs_app, "TransactWriteItems", "ValidationException"):
        report = cqrs_app.process_event({"Records": child_insert})
    assert report.failed == []
    [message] = errors_logged(caplog)
    assert f"{parent.sk}#0" in message and child_insert[0]["dynamodb"]["SequenceNumber"] in message


def test_a_malformed_task_image_never_holds_the_shard(cqrs_app, clock, caplog):
    """A bug-shaped failure (not a DynamoDB error at all) is permanent: acknowledged."""
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    [insert] = task_records(cqrs_app)
    image = insert["dynamodb"]["NewImage"]
    image["attempts"] = {"S": "not a number"}
    with failing(cqrs_app, "UpdateItem", "ThrottlingException") as requests:
        report = cqrs_app.process_event({"Records": [insert]})
    assert report.failed == []
    assert requests == []  # refused before any request
    [message] = errors_logged(caplog)
    assert created.sk in message and insert["dynamodb"]["SequenceNumber"] in message
