"""Tasks on moto, driven through real stream records (``drain`` / ``process_event``)."""

from __future__ import annotations

from typing import Any

import pytest
from injector import inject
from pydantic import BaseModel

import cqrs.aws
from cqrs import SYSTEM, Cqrs, InvokeContext, TenantMismatchError
from cqrs.store.stream_records import parse_record
from cqrs.system.tasks import (
    InvalidTaskInputError,
    PermanentTaskError,
    Task,
    TaskLeaseLostError,
    TaskStatus,
    UlidFactory,
    encode_ulid,
)
from cqrs.testing import RequestCounter, stream_records

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """A clock that moves only when told (leases expire without waiting)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Crash(BaseException):
    """Simulates the process dying inside a handler (not an ``Exception``: nothing catches it)."""


@pytest.fixture
def clock(cqrs_app: Cqrs) -> FakeClock:
    fake = FakeClock()
    cqrs_app.tasks.clock = fake
    return fake


def task_records(app: Cqrs) -> list[dict[str, Any]]:
    """Every record of the tasks stream so far (not handled), in Lambda's shape."""
    table = app.tasks.table_name
    return [r for r in stream_records(app) if f":table/{table}/" in r["eventSourceARN"]]


def transitions(app: Cqrs, sk: str) -> list[str]:
    """The statuses one task went through, from its stream records (repeats collapsed)."""
    out: list[str] = []
    for raw in task_records(app):
        image = parse_record(raw).new_image
        if image and image["sk"] == sk and (not out or out[-1] != image["status"]):
            out.append(image["status"])
    return out


class Feeder:
    """Feeds the tasks stream's new records through the app's event handler, counting requests."""

    def __init__(self, app: Cqrs) -> None:
        self.app = app
        self.seen: set[str] = set()

    def step(self) -> dict[str, int]:
        records = [
            r for r in task_records(self.app) if r["dynamodb"]["SequenceNumber"] not in self.seen
        ]
        self.seen.update(r["dynamodb"]["SequenceNumber"] for r in records)
        with RequestCounter(self.app.clients.dynamodb) as n:
            report = self.app.process_event({"Records": records})
        assert report.failed == []
        return dict(n.by_operation)


# -- lifecycle -------------------------------------------------------------------------


def test_a_task_runs_through_its_lifecycle(cqrs_app, drain, clock):
    calls: list[Task[Any]] = []

    @cqrs_app.tasks.handler("csv-import")
    def run(task: Task[Any]) -> dict[str, Any]:
        calls.append(task)
        assert task.status == TaskStatus.PROCESSING
        return {"rows": len(task.input["lines"])}

    ctx = InvokeContext(tenant_code="acme", user_id="u1", request_id="r1")
    created = cqrs_app.tasks.create("acme", "csv-import", {"lines": ["a", "b"]}, context=ctx)
    assert created.status == TaskStatus.CREATED
    assert created.pk == "TASK#acme"
    assert created.sk.startswith("csv-import#") and len(created.sk.split("#")[1]) == 26
    assert (created.attempts, created.max_attempts, created.name) == (0, 3, "csv-import")

    drain(cqrs_app)

    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert task is not None
    assert task.status == TaskStatus.COMPLETED
    assert task.result == {"rows": 2}
    assert task.attempts == 1
    assert task.error is None and task.lease_until is None
    assert task.started_at is not None and task.finished_at is not None
    assert (task.created_by, task.request_id, task.tenant_code) == ("u1", "r1", "acme")
    assert len(calls) == 1 and calls[0].input == {"lines": ["a", "b"]}
    assert transitions(cqrs_app, created.sk) == ["CREATED", "QUEUED", "PROCESSING", "COMPLETED"]
    assert cqrs_app.tasks.get(created.pk, created.sk, context=SYSTEM) == task  # by pk as well


def test_stored_attribute_names_are_camel_case(cqrs_app, drain, clock):
    cqrs_app.tasks.register("noop", lambda task: None)
    created = cqrs_app.tasks.create("acme", "noop", None, context=SYSTEM)
    drain(cqrs_app)
    raw = cqrs_app.clients.dynamodb.get_item(
        TableName=cqrs_app.tasks.table_name,
        Key={"pk": {"S": created.pk}, "sk": {"S": created.sk}},
    )["Item"]
    # A None input is not stored (the store drops top-level None on a put); SYSTEM created it.
    assert set(raw) == {
        "pk", "sk", "id", "tenantCode", "taskType", "name", "status", "result", "attempts",
        "maxAttempts", "createdAt", "updatedAt", "startedAt", "finishedAt", "createdBy",
    }  # fmt: skip
    assert raw["result"] == {"NULL": True} and raw["createdBy"] == {"S": "system"}
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).input is None


def test_requests_per_transition(cqrs_app, clock):
    @cqrs_app.tasks.handler("report")
    def run(task: Task[Any]) -> str:
        task.report_progress({"done": 1, "total": 1})
        return "ok"

    feed = Feeder(cqrs_app)
    with RequestCounter(cqrs_app.clients.dynamodb) as n:
        created = cqrs_app.tasks.create("acme", "report", {"month": "2026-01"}, context=SYSTEM)
    assert dict(n.by_operation) == {"PutItem": 1}
    assert feed.step() == {"UpdateItem": 1}  # INSERT: CREATED → QUEUED
    # QUEUED: claim, one progress report, COMPLETED
    assert feed.step() == {"UpdateItem": 3}
    assert feed.step() == {}  # PROCESSING and COMPLETED records: nothing to do
    assert feed.step() == {}
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).status == TaskStatus.COMPLETED


# -- failures and retries ----------------------------------------------------------------


def test_a_failing_task_is_retried_then_fails_with_the_error(cqrs_app, drain, clock):
    calls: list[int] = []

    @cqrs_app.tasks.handler("flaky")
    def run(task: Task[Any]) -> None:
        calls.append(task.attempts)
        raise ValueError(f"boom {task.attempts}")

    created = cqrs_app.tasks.create("acme", "flaky", {}, context=SYSTEM)
    drain(cqrs_app)

    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert task.status == TaskStatus.FAILED
    assert calls == [1, 2, 3]
    assert task.attempts == 3
    assert task.error is not None
    assert (task.error.type, task.error.message, task.error.attempt) == ("ValueError", "boom 3", 3)
    assert transitions(cqrs_app, created.sk) == [
        "CREATED", "QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "FAILED",
    ]  # fmt: skip


def test_a_retry_that_succeeds_clears_the_error(cqrs_app, drain, clock):
    @cqrs_app.tasks.handler("flaky")
    def run(task: Task[Any]) -> int:
        if task.attempts < 2:
            raise RuntimeError("transient")
        assert task.error is not None and task.error.type == "RuntimeError"  # the last error
        return task.attempts

    created = cqrs_app.tasks.create("acme", "flaky", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.result, task.attempts, task.error) == (
        TaskStatus.COMPLETED, 2, 2, None
    )  # fmt: skip


def test_max_attempts_per_task_and_permanent_errors(cqrs_app, drain, clock):
    calls: list[str] = []

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> None:
        calls.append(task.input)
        if task.input == "permanent":
            raise PermanentTaskError("bad data")
        raise KeyError("x")

    once = cqrs_app.tasks.create("acme", "job", "once", max_attempts=1, context=SYSTEM)
    permanent = cqrs_app.tasks.create("acme", "job", "permanent", context=SYSTEM)
    drain(cqrs_app)

    assert calls == ["once", "permanent"]
    failed_once = cqrs_app.tasks.get("acme", once.sk, context=SYSTEM)
    assert (failed_once.status, failed_once.attempts, failed_once.error.type) == (
        TaskStatus.FAILED, 1, "KeyError"
    )  # fmt: skip
    failed_permanent = cqrs_app.tasks.get("acme", permanent.sk, context=SYSTEM)
    assert failed_permanent.status == TaskStatus.FAILED
    assert (failed_permanent.attempts, failed_permanent.max_attempts) == (1, 3)
    assert failed_permanent.error.type == "PermanentTaskError"
    assert failed_permanent.error.message == "bad data"


def test_a_result_that_is_not_json_fails_at_once(cqrs_app, drain, clock):
    cqrs_app.tasks.register("job", lambda task: object())
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts, task.error.type) == (
        TaskStatus.FAILED, 1, "PermanentTaskError"
    )  # fmt: skip
    assert task.error.message.startswith("result is not JSON-able")


def test_a_task_type_without_handler_fails_without_using_an_attempt(cqrs_app, drain, clock):
    created = cqrs_app.tasks.create("acme", "unknown", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts, task.error.type) == (
        TaskStatus.FAILED, 0, "NoTaskHandlerError"
    )  # fmt: skip


def test_a_dynamodb_error_is_a_batch_item_failure_and_the_retry_completes(
    cqrs_app, drain, clock, monkeypatch
):
    from botocore.exceptions import ClientError

    calls: list[int] = []
    cqrs_app.tasks.register("job", lambda task: calls.append(task.attempts))
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    records = task_records(cqrs_app)  # the INSERT

    client = cqrs_app.clients.dynamodb
    real_update = client.update_item

    def throttled(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "Update")

    monkeypatch.setattr(client, "update_item", throttled)
    report = cqrs_app.process_event({"Records": records})
    assert report.failed == [records[0]["dynamodb"]["SequenceNumber"]]
    assert report.response() == {
        "batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    }
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).status == TaskStatus.CREATED

    monkeypatch.setattr(client, "update_item", real_update)
    drain(cqrs_app)  # Lambda would redeliver from the failed record
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).status == TaskStatus.COMPLETED
    assert calls == [1]


# -- redelivery ------------------------------------------------------------------------


def test_redelivered_records_never_run_a_handler_twice(cqrs_app, drain, clock):
    calls: list[int] = []

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> str:
        calls.append(task.attempts)
        return "done"

    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    feed = Feeder(cqrs_app)
    feed.step()  # CREATED → QUEUED
    queued = [r for r in task_records(cqrs_app) if r["eventName"] == "MODIFY"]
    assert len(queued) == 1

    # The QUEUED record delivered twice, in two invocations: the second claim fails.
    cqrs_app.process_event({"Records": queued})
    with RequestCounter(cqrs_app.clients.dynamodb) as n:
        cqrs_app.process_event({"Records": queued})
    assert calls == [1]
    assert dict(n.by_operation) == {"UpdateItem": 1}  # one failed conditional claim

    drain(cqrs_app)
    before = cqrs_app.tasks.get("acme", created.sk, consistent=True, context=SYSTEM)
    records = task_records(cqrs_app)
    for _ in range(2):  # the whole stream again, as one batch and record by record
        cqrs_app.process_event({"Records": records})
        for record in records:
            cqrs_app.process_event({"Records": [record]})
    assert calls == [1]
    assert cqrs_app.tasks.get("acme", created.sk, consistent=True, context=SYSTEM) == before
    assert len(task_records(cqrs_app)) == len(records)  # nothing was written
    assert before.status == TaskStatus.COMPLETED


def test_redelivery_through_the_lambda_handler(cqrs_app, clock):
    calls: list[int] = []
    cqrs_app.tasks.register("job", lambda task: calls.append(task.attempts))
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    cqrs.aws.set_app(cqrs_app)
    try:
        for _ in range(4):  # each round: every record so far, redelivered
            response = cqrs.aws.handler({"Records": task_records(cqrs_app)})
            assert response == {"batchItemFailures": []}
    finally:
        cqrs.aws.set_app(None)
    assert calls == [1]
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).status == TaskStatus.COMPLETED


# -- crashes and leases ----------------------------------------------------------------


def test_a_crash_while_processing_is_reclaimed_by_a_sweep_after_the_lease(cqrs_app, drain, clock):
    calls: list[int] = []

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> int:
        calls.append(task.attempts)
        if task.attempts == 1:
            raise Crash()
        return task.attempts

    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    with pytest.raises(Crash):
        drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts) == (TaskStatus.PROCESSING, 1)
    assert task.lease_until == int((T0 + cqrs_app.tasks.lease_seconds) * 1000)

    drain(cqrs_app)  # the crashed batch comes back while the lease is live: nothing happens
    assert calls == [1]
    assert cqrs_app.tasks.sweep("acme", context=SYSTEM).writes == 0  # lease still live

    clock.advance(cqrs_app.tasks.lease_seconds + 1)
    report = cqrs_app.tasks.sweep("acme", context=SYSTEM)
    assert (report.examined, report.writes, report.errors) == (1, 1, [])
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.error.type, task.error.attempt) == (
        TaskStatus.QUEUED, "TaskLeaseExpiredError", 1
    )  # fmt: skip

    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts, task.result, task.error) == (
        TaskStatus.COMPLETED, 2, 2, None
    )  # fmt: skip
    assert calls == [1, 2]


def test_a_redelivery_after_the_lease_expired_reclaims_the_task(cqrs_app, drain, clock):
    calls: list[int] = []

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> None:
        calls.append(task.attempts)
        raise Crash()

    created = cqrs_app.tasks.create("acme", "job", {}, max_attempts=2, context=SYSTEM)
    with pytest.raises(Crash):
        drain(cqrs_app)
    clock.advance(cqrs_app.tasks.lease_seconds + 1)
    with pytest.raises(Crash):
        drain(cqrs_app)  # redelivered: reclaimed, then attempt 2 crashes as well
    assert calls == [1, 2]
    clock.advance(cqrs_app.tasks.lease_seconds + 1)
    drain(cqrs_app)  # the last attempt's lease expired: FAILED
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts, task.error.type) == (
        TaskStatus.FAILED, 2, "TaskLeaseExpiredError"
    )  # fmt: skip
    assert calls == [1, 2]


def test_a_reclaimed_worker_cannot_write_its_progress_or_result(cqrs_app, drain, clock):
    seen: list[str] = []

    @cqrs_app.tasks.handler("slow")
    def run(task: Task[Any]) -> str:
        if task.attempts == 1:
            clock.advance(cqrs_app.tasks.lease_seconds + 1)  # the worker stalls ...
            assert cqrs_app.tasks.sweep("acme", context=SYSTEM).writes == 1  # ... and is reclaimed
            with pytest.raises(TaskLeaseLostError):
                task.report_progress("late")
            seen.append("lost")
            return "stale result"
        seen.append("second")
        return "fresh result"

    created = cqrs_app.tasks.create("acme", "slow", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert seen == ["lost", "second"]
    assert (task.status, task.result, task.attempts, task.progress) == (
        TaskStatus.COMPLETED, "fresh result", 2, None
    )  # fmt: skip


def test_sweep_retriggers_tasks_whose_records_were_lost(cqrs_app, drain, clock):
    calls: list[int] = []
    cqrs_app.tasks.register("job", lambda task: calls.append(1))
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    # too recent: the stream will do it
    assert cqrs_app.tasks.sweep("acme", context=SYSTEM).writes == 0
    clock.advance(301)
    # queues it (as if the INSERT had been lost)
    report = cqrs_app.tasks.sweep("acme", context=SYSTEM)
    assert (report.examined, report.writes) == (1, 1)
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).status == TaskStatus.QUEUED
    clock.advance(301)
    assert cqrs_app.tasks.sweep("acme", context=SYSTEM).writes == 1  # touched: a new QUEUED record
    assert calls == []  # a sweep never runs handlers
    drain(cqrs_app)
    assert calls == [1]
    assert cqrs_app.tasks.get("acme", created.sk, context=SYSTEM).status == TaskStatus.COMPLETED
    assert cqrs_app.tasks.sweep("acme", context=SYSTEM).examined == 0


# -- progress ----------------------------------------------------------------------------


def test_progress_is_stored_and_kept_across_attempts(cqrs_app, drain, clock):
    resumed_from: list[Any] = []

    @cqrs_app.tasks.handler("import")
    def run(task: Task[Any]) -> str:
        resumed_from.append(task.progress)
        start = task.progress["rows"] if task.progress else 0
        task.report_progress({"rows": start + 10})
        assert task.progress == {"rows": start + 10}
        if task.attempts == 1:
            raise OSError("connection reset")
        return "done"

    created = cqrs_app.tasks.create("acme", "import", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert resumed_from == [None, {"rows": 10}]
    assert (task.status, task.progress) == (TaskStatus.COMPLETED, {"rows": 20})


def test_only_a_running_handler_can_report_progress(cqrs_app, clock):
    from cqrs.core.errors import ProgrammingError

    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    with pytest.raises(ProgrammingError):
        created.report_progress(1)


# -- handlers ----------------------------------------------------------------------------


class Greeter:
    def greet(self, name: str) -> str:
        return f"hello {name}"


class GreetInput(BaseModel):
    name: str


class GreetResult(BaseModel):
    text: str
    tenant: str


built: list[object] = []


class GreetHandler:
    """A handler class: the injector builds it, with services it asks for."""

    @inject
    def __init__(self, app: Cqrs, greeter: Greeter) -> None:
        self.app = app
        self.greeter = greeter
        built.append(self)

    def run(self, task: Task[GreetInput]) -> GreetResult:
        assert isinstance(task.input, GreetInput)
        return GreetResult(text=self.greeter.greet(task.input.name), tenant=task.tenant_code)


def test_a_handler_class_is_built_by_the_injector(cqrs_app, drain, clock):
    built.clear()
    cqrs_app.tasks.handler("greet", input_model=GreetInput)(GreetHandler)
    first = cqrs_app.tasks.create("acme", "greet", GreetInput(name="ann"), context=SYSTEM)
    second = cqrs_app.tasks.create("acme", "greet", {"name": "bob"}, context=SYSTEM)
    assert built == []  # built on first use, not at registration
    drain(cqrs_app)
    assert len(built) == 1 and built[0].app is cqrs_app
    assert cqrs_app.tasks.get("acme", first.sk, context=SYSTEM).result == {
        "text": "hello ann",
        "tenant": "acme",
    }
    assert cqrs_app.tasks.get("acme", second.sk, context=SYSTEM).result["text"] == "hello bob"


def test_inputs_are_validated_against_the_input_model_before_any_request(cqrs_app, clock):
    from cqrs.core.errors import ProgrammingError

    cqrs_app.tasks.register("greet", GreetHandler, input_model=GreetInput)
    with RequestCounter(cqrs_app.clients.dynamodb) as n:
        with pytest.raises(InvalidTaskInputError):
            cqrs_app.tasks.create("acme", "greet", {"nom": "x"}, context=SYSTEM)
        with pytest.raises(InvalidTaskInputError):
            cqrs_app.tasks.create("acme", "greet", subtasks=[{"name": "a"}, {}], context=SYSTEM)
        with pytest.raises(InvalidTaskInputError):
            cqrs_app.tasks.create("acme", "other", {"when": object()}, context=SYSTEM)
    assert n.total == 0
    with pytest.raises(ProgrammingError):
        cqrs_app.tasks.register("greet", GreetHandler)
    with pytest.raises(ProgrammingError):
        cqrs_app.tasks.register("broken", Greeter)  # no run()
    assert cqrs_app.tasks.task_types == ["greet"]


# -- sub-tasks ---------------------------------------------------------------------------


def parent_transitions_to_terminal(app: Cqrs, sk: str) -> int:
    """How many stream records moved the task ``sk`` into COMPLETED or FAILED."""
    count = 0
    for raw in task_records(app):
        record = parse_record(raw)
        new, old = record.new_image, record.old_image
        if new and new["sk"] == sk and new["status"] in ("COMPLETED", "FAILED"):
            count += old is None or old["status"] != new["status"]
    return count


def test_sub_tasks_fan_out_count_and_complete_the_parent_exactly_once(cqrs_app, drain, clock):
    calls: list[int] = []

    @cqrs_app.tasks.handler("resize")
    def run(task: Task[Any]) -> int:
        assert task.is_subtask and task.parent_sk is not None
        calls.append(task.input["n"])
        return int(task.input["n"]) * 2

    parent = cqrs_app.tasks.create(
        "acme", "resize", {"album": 7}, subtasks=[{"n": 1}, {"n": 2}, {"n": 3}], context=SYSTEM
    )
    assert parent.is_parent and parent.subtask_count == 3
    drain(cqrs_app)

    done = cqrs_app.tasks.get("acme", parent.sk, context=SYSTEM)
    assert done.status == TaskStatus.COMPLETED
    assert (done.succeeded, done.failed, done.running) == (3, 0, 0)
    assert done.result == {"total": 3, "succeeded": 3, "failed": 0}
    assert done.input == {"album": 7}
    assert sorted(calls) == [1, 2, 3]
    children = cqrs_app.tasks.subtasks("acme", parent.sk, context=SYSTEM)
    assert [c.sk for c in children] == [f"{parent.sk}#{i}" for i in range(3)]
    assert [c.result for c in children] == [2, 4, 6]
    assert all(c.status == TaskStatus.COMPLETED for c in children)
    assert transitions(cqrs_app, parent.sk) == ["CREATED", "QUEUED", "PROCESSING", "COMPLETED"]
    assert parent_transitions_to_terminal(cqrs_app, parent.sk) == 1

    records = task_records(cqrs_app)
    for record in records:  # every record again, one invocation each
        cqrs_app.process_event({"Records": [record]})
    cqrs_app.process_event({"Records": records})
    assert sorted(calls) == [1, 2, 3]
    assert parent_transitions_to_terminal(cqrs_app, parent.sk) == 1
    assert cqrs_app.tasks.get("acme", parent.sk, context=SYSTEM) == done
    assert len(task_records(cqrs_app)) == len(records)


def test_a_failed_sub_task_fails_the_parent(cqrs_app, drain, clock):
    @cqrs_app.tasks.handler("check")
    def run(task: Task[Any]) -> str:
        if task.input == "bad":
            raise ValueError("bad input")
        return "ok"

    parent = cqrs_app.tasks.create(
        "acme", "check", subtasks=["ok", "bad", "ok"], max_attempts=2, context=SYSTEM
    )
    drain(cqrs_app)
    done = cqrs_app.tasks.get("acme", parent.sk, context=SYSTEM)
    assert done.status == TaskStatus.FAILED
    assert (done.succeeded, done.failed, done.running) == (2, 1, 0)
    assert (done.error.type, done.error.message) == (
        "SubtaskFailedError",
        "1 of 3 sub-tasks failed",
    )
    bad = cqrs_app.tasks.subtasks("acme", parent.sk, context=SYSTEM)[1]
    assert (bad.status, bad.attempts, bad.error.message) == (TaskStatus.FAILED, 2, "bad input")
    assert parent_transitions_to_terminal(cqrs_app, parent.sk) == 1


def test_a_transaction_conflict_on_the_parent_is_retried(cqrs_app, drain, clock, monkeypatch):
    from botocore.exceptions import ClientError

    client = cqrs_app.clients.dynamodb
    real_transact = client.transact_write_items
    conflicts: list[int] = []

    def conflict_twice(**kwargs: Any) -> Any:
        if len(conflicts) < 2:  # the first two transactions lose a race once each
            conflicts.append(1)
            error = {
                "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
            }
            raise ClientError(error, "TransactWriteItems")
        return real_transact(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", conflict_twice)
    cqrs_app.tasks.register("job", lambda task: task.input)
    parent = cqrs_app.tasks.create("acme", "job", subtasks=["a", "b"], context=SYSTEM)
    report = drain(cqrs_app)
    assert report.failed == 0 and len(conflicts) == 2
    done = cqrs_app.tasks.get("acme", parent.sk, context=SYSTEM)
    assert (done.status, done.succeeded, done.running) == (TaskStatus.COMPLETED, 2, 0)


def test_requests_per_sub_task_transition(cqrs_app, clock):
    cqrs_app.tasks.register("job", lambda task: task.input)
    feed = Feeder(cqrs_app)
    parent = cqrs_app.tasks.create("acme", "job", subtasks=[1, 2, 3], context=SYSTEM)
    # fan-out: parent → QUEUED, 3 sub-task puts, the parent's inputs removed
    assert feed.step() == {"UpdateItem": 2, "PutItem": 3}
    # parent QUEUED (nothing) + 3 sub-task INSERTs: claim and complete, each with the parent
    assert feed.step() == {"TransactWriteItems": 6}
    assert feed.step() == {"UpdateItem": 1}  # the parent's last counter update completes it
    assert feed.step() == {}
    assert cqrs_app.tasks.get("acme", parent.sk, context=SYSTEM).status == TaskStatus.COMPLETED


def test_a_fan_out_cut_short_is_finished_by_the_redelivery(cqrs_app, drain, clock, monkeypatch):
    from botocore.exceptions import ClientError

    calls: list[int] = []
    cqrs_app.tasks.register("job", lambda task: calls.append(task.input) or task.input)
    parent = cqrs_app.tasks.create("acme", "job", subtasks=list(range(8)), context=SYSTEM)
    insert = task_records(cqrs_app)

    client = cqrs_app.clients.dynamodb
    real_put = client.put_item
    puts: list[int] = []

    def put_then_throttle(**kwargs: Any) -> Any:
        puts.append(1)
        if len(puts) > 5:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "Put")
        return real_put(**kwargs)

    monkeypatch.setattr(client, "put_item", put_then_throttle)
    report = cqrs_app.process_event({"Records": insert})
    assert report.failed == [insert[0]["dynamodb"]["SequenceNumber"]]
    assert len(cqrs_app.tasks.subtasks("acme", parent.sk, context=SYSTEM)) == 5
    monkeypatch.setattr(client, "put_item", real_put)

    with RequestCounter(client) as n:
        report = cqrs_app.process_event({"Records": insert})  # Lambda's redelivery
    assert report.failed == []
    # the parent is QUEUED already (a failed condition, then one read), 5 puts fail, 3 land
    assert dict(n.by_operation) == {"UpdateItem": 2, "GetItem": 1, "PutItem": 8}
    with RequestCounter(client) as n:
        cqrs_app.process_event({"Records": insert})  # once more: finished, nothing to do
    assert dict(n.by_operation) == {"UpdateItem": 1, "GetItem": 1}

    drain(cqrs_app)
    done = cqrs_app.tasks.get("acme", parent.sk, context=SYSTEM)
    assert (done.status, done.succeeded, done.failed, done.running) == (
        TaskStatus.COMPLETED, 8, 0, 0
    )  # fmt: skip
    assert sorted(calls) == list(range(8))
    children = cqrs_app.tasks.subtasks("acme", parent.sk, context=SYSTEM)
    assert [c.result for c in children] == list(range(8))


def test_empty_subtasks_are_refused(cqrs_app, clock):
    from cqrs.core.errors import InterfaceError

    with pytest.raises(InterfaceError):
        cqrs_app.tasks.create("acme", "job", subtasks=[], context=SYSTEM)


# -- reads -------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages(cqrs_app, clock):
    tasks = cqrs_app.tasks
    a1 = tasks.create("acme", "a", 1, context=SYSTEM)
    b1 = tasks.create("acme", "b", 1, context=SYSTEM)
    a2 = tasks.create("acme", "a", 2, context=SYSTEM)  # same clock millisecond: ULIDs stay in order
    clock.advance(1)
    a3 = tasks.create("acme", "a", 3, context=SYSTEM)
    parent = tasks.create("acme", "a", subtasks=[1, 2], context=SYSTEM)
    tasks.create("other", "a", 1, context=SYSTEM)

    page = tasks.list("acme", "a", context=SYSTEM)
    assert [t.sk for t in page.items] == [parent.sk, a3.sk, a2.sk, a1.sk]
    assert page.cursor is None

    first = tasks.list("acme", "a", limit=2, context=SYSTEM)
    assert [t.sk for t in first.items] == [parent.sk, a3.sk]
    assert first.cursor is not None
    rest = tasks.list("acme", "a", limit=2, cursor=first.cursor, context=SYSTEM)
    assert [t.sk for t in rest.items] == [a2.sk, a1.sk]

    everything = tasks.list("acme", context=SYSTEM)
    assert [t.sk for t in everything.items] == [b1.sk, parent.sk, a3.sk, a2.sk, a1.sk]

    cqrs_app.tasks.register("a", lambda task: None)
    with_children = Feeder(cqrs_app)
    with_children.step()  # fans the parent out
    listed = tasks.list("acme", "a", include_subtasks=True, context=SYSTEM).items
    assert [t.sk for t in listed][:3] == [f"{parent.sk}#1", f"{parent.sk}#0", parent.sk]
    assert tasks.get("acme", "a#01ARZ3NDEKTSV4RRFFQ69G5FAV", context=SYSTEM) is None


def test_tenant_isolation_before_any_request(cqrs_app, clock):
    other = InvokeContext(tenant_code="globex")
    own = InvokeContext(tenant_code="acme")
    created = cqrs_app.tasks.create("acme", "job", {}, context=own)
    with RequestCounter(cqrs_app.clients.dynamodb) as n:
        with pytest.raises(TenantMismatchError):
            cqrs_app.tasks.create("acme", "job", {}, context=other)
        with pytest.raises(TenantMismatchError):
            cqrs_app.tasks.get("acme", created.sk, context=other)
        with pytest.raises(TenantMismatchError):
            cqrs_app.tasks.get(created.pk, created.sk, context=other)
        with pytest.raises(TenantMismatchError):
            cqrs_app.tasks.list("acme", context=other)
        with pytest.raises(TenantMismatchError):
            cqrs_app.tasks.subtasks("acme", created.sk, context=other)
        with pytest.raises(TenantMismatchError):
            cqrs_app.tasks.sweep("acme", context=other)
    assert n.total == 0
    assert cqrs_app.tasks.get("acme", created.sk, context=own) is not None
    assert cqrs_app.tasks.list("globex", context=SYSTEM).items == []


def test_bad_keys_are_refused(cqrs_app):
    from cqrs.core.errors import InvalidKeyError

    with pytest.raises(InvalidKeyError):
        cqrs_app.tasks.create("ac#me", "job", {}, context=SYSTEM)
    with pytest.raises(InvalidKeyError):
        cqrs_app.tasks.create("acme", "jo@b", {}, context=SYSTEM)
    with pytest.raises(InvalidKeyError):
        cqrs_app.tasks.get("ORDER#acme", "job#x", context=SYSTEM)
    with pytest.raises(InvalidKeyError):
        cqrs_app.tasks.get("acme", "job", context=SYSTEM)


# -- ULIDs -------------------------------------------------------------------------------


def test_ulids():
    assert encode_ulid(0, 0) == "0" * 26
    assert encode_ulid((1 << 48) - 1, (1 << 80) - 1) == "7" + "Z" * 25
    assert encode_ulid(1469918176385, 0).startswith("01ARYZ6S41")  # the spec's example time
    with pytest.raises(ValueError):
        encode_ulid(1 << 48, 0)

    now = [1000.0]
    make = UlidFactory(lambda: now[0])
    same_ms = [make() for _ in range(50)]
    assert same_ms == sorted(same_ms) and len(set(same_ms)) == 50
    now[0] = 999.0  # the clock steps back: still increasing
    assert make() > same_ms[-1]
    now[0] = 1001.0
    later = make()
    assert later > same_ms[-1] and later[:10] != same_ms[0][:10]
