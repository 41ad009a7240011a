"""Tasks refuse bad input with a typed error before any write, and always want a context."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from cqrs import SYSTEM, Cqrs, InvokeContext
from cqrs.core.errors import InvalidKeyError, InvalidValueError, MissingContextError
from cqrs.system.tasks import InvalidTaskInputError, PermanentTaskError, Task, TaskStatus
from cqrs.testing import RequestCounter, table_items


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


#: Values DynamoDB cannot store, each as an input, a sub-task input, progress or a result.
UNSTORABLE: dict[str, Any] = {
    "NaN": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "1e300": 1e300,
    "39 digits": Decimal("1.23456789012345678901234567890123456789"),
    "non-string key": {1: "x"},
    "nested 40 deep": nested(40),
    "empty set": set(),
    "mixed set": {1, "a"},
    "deep inside": {"rows": [{"value": math.nan}]},
}

BAD_PARTS = {
    "whitespace only": "   ",
    "a tab": "\t",
    "a newline": "ac\nme",
    "a NUL": "ac\x00me",
    "a zero-width space": "ac\u200bme",
}


def tasks_table_items(app: Cqrs) -> list[dict[str, Any]]:
    return table_items(app, app.tasks.table_name)


@pytest.fixture
def empty_check(cqrs_app: Cqrs) -> Callable[[Callable[[], object], type[Exception]], Exception]:
    """``check(call, error)``: ``call`` raises ``error`` with no request; the table stays empty."""

    def check(call: Callable[[], object], error: type[Exception]) -> Exception:
        with RequestCounter(cqrs_app.clients.dynamodb) as n, pytest.raises(error) as info:
            call()
        assert n.total == 0
        assert tasks_table_items(cqrs_app) == []
        return info.value

    return check


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_an_unstorable_input_is_refused_before_any_write(cqrs_app, empty_check, value):
    error = empty_check(
        lambda: cqrs_app.tasks.create("acme", "job", {"data": value}, context=SYSTEM),
        InvalidTaskInputError,
    )
    assert isinstance(error, InvalidValueError)
    assert isinstance(error.cause, InvalidValueError)  # the codec's error
    assert "input" in str(error)
    empty_check(
        lambda: cqrs_app.tasks.create("acme", "job", value, context=SYSTEM), InvalidTaskInputError
    )


@pytest.mark.parametrize("value", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_an_unstorable_sub_task_input_is_refused_before_any_write(cqrs_app, empty_check, value):
    error = empty_check(
        lambda: cqrs_app.tasks.create("acme", "job", subtasks=[1, value], context=SYSTEM),
        InvalidTaskInputError,
    )
    assert "subtasks[1]" in str(error)
    empty_check(  # the parent's own input as well
        lambda: cqrs_app.tasks.create("acme", "job", value, subtasks=[1], context=SYSTEM),
        InvalidTaskInputError,
    )


@pytest.mark.parametrize("value", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_unstorable_progress_is_refused_before_any_write(cqrs_app, drain, value):
    refused: list[Exception] = []

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> str:
        with RequestCounter(cqrs_app.clients.dynamodb) as n:
            try:
                task.report_progress({"done": value})
            except InvalidTaskInputError as exc:
                refused.append(exc)
        assert n.total == 0
        return "ok"

    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    drain(cqrs_app)
    assert len(refused) == 1 and "progress" in str(refused[0])
    [item] = tasks_table_items(cqrs_app)
    assert "progress" not in item  # nothing of it was written
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.result) == (TaskStatus.COMPLETED, "ok")


@pytest.mark.parametrize("value", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_an_unstorable_result_fails_the_attempt_permanently(cqrs_app, drain, value):
    calls: list[int] = []

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> Any:
        calls.append(task.attempts)
        return {"total": value}

    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    report = drain(cqrs_app)
    assert report.failed == 0  # handled as the task's failure, not DynamoDB's
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts, task.result) == (TaskStatus.FAILED, 1, None)
    assert task.error is not None and task.error.type == PermanentTaskError.__name__
    assert task.error.message.startswith("result cannot be stored")
    assert calls == [1]  # permanent: the other attempts were not used


def test_a_result_too_large_for_an_item_fails_the_attempt_permanently(cqrs_app, drain):
    cqrs_app.tasks.register("job", lambda task: "x" * 500_000)
    created = cqrs_app.tasks.create("acme", "job", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert (task.status, task.attempts, task.error.type) == (
        TaskStatus.FAILED, 1, "PermanentTaskError"
    )  # fmt: skip
    assert "400" in task.error.message or "limit" in task.error.message


def test_big_integers_and_sets_are_stored_exactly(cqrs_app, drain):
    big = 10**40

    @cqrs_app.tasks.handler("job")
    def run(task: Task[Any]) -> Any:
        assert task.input == {"n": big, "tags": {"a", "b"}, "ids": {1, 2}}
        task.report_progress({"n": big})
        return {"n": big + 10**39, "when": Decimal("0.5")}

    created = cqrs_app.tasks.create(
        "acme", "job", {"n": big, "tags": {"a", "b"}, "ids": {1, 2}}, context=SYSTEM
    )
    assert created.input["n"] == big
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert task.status == TaskStatus.COMPLETED
    assert task.input == {"n": big, "tags": {"a", "b"}, "ids": {1, 2}}
    assert task.progress == {"n": big}
    assert task.result == {"n": 11 * 10**39, "when": 0.5}


# -- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", list(BAD_PARTS.values()), ids=list(BAD_PARTS))
def test_a_bad_tenant_code_or_task_type_is_refused_before_any_write(cqrs_app, empty_check, bad):
    tasks = cqrs_app.tasks
    empty_check(lambda: tasks.create(bad, "job", {}, context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.create("acme", bad, {}, context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.create(f"TASK#{bad}", "job", {}, context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.get(bad, "job#x", context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.get("acme", f"job#{bad}", context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.list(bad, context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.list("acme", bad, context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.subtasks(bad, "job#x", context=SYSTEM), InvalidKeyError)
    empty_check(lambda: tasks.sweep(bad, context=SYSTEM), InvalidKeyError)
    with pytest.raises(InvalidKeyError):
        tasks.register(bad, lambda task: None)


# -- context -----------------------------------------------------------------------------

CALLS: dict[str, Callable[[Cqrs, Any], object]] = {
    "create": lambda app, ctx: app.tasks.create("acme", "job", {}, context=ctx),
    "create with sub-tasks": lambda app, ctx: app.tasks.create(
        "acme", "job", subtasks=[1], context=ctx
    ),
    "get": lambda app, ctx: app.tasks.get("acme", "job#x", context=ctx),
    "list": lambda app, ctx: app.tasks.list("acme", context=ctx),
    "subtasks": lambda app, ctx: app.tasks.subtasks("acme", "job#x", context=ctx),
    "sweep": lambda app, ctx: app.tasks.sweep("acme", context=ctx),
}


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
def test_no_context_is_refused_before_any_request(cqrs_app, empty_check, call):
    error = empty_check(lambda: call(cqrs_app, None), MissingContextError)
    assert "SYSTEM" in str(error)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("create", ("acme", "job", {})),
        ("get", ("acme", "job#x")),
        ("list", ("acme",)),
        ("subtasks", ("acme", "job#x")),
        ("sweep", ("acme",)),
    ],
)
def test_context_is_a_required_keyword(cqrs_app, empty_check, name, args):
    empty_check(lambda: getattr(cqrs_app.tasks, name)(*args), TypeError)


def test_system_acts_on_any_tenant_as_user_system(cqrs_app):
    for tenant in ("acme", "globex"):
        created = cqrs_app.tasks.create(tenant, "job", {}, context=SYSTEM)
        assert (created.created_by, created.created_ip, created.request_id) == (
            "system",
            None,
            None,
        )
        assert cqrs_app.tasks.get(tenant, created.sk, context=SYSTEM) == created
        assert cqrs_app.tasks.list(tenant, context=SYSTEM).items == [created]
    ctx = InvokeContext(tenant_code="acme", user_id="u1", source_ip="198.51.100.1")
    own = cqrs_app.tasks.create("acme", "job", {}, context=ctx)
    assert (own.created_by, own.created_ip) == ("u1", "198.51.100.1")
    assert cqrs_app.tasks.get("acme", own.sk, context=ctx) == own
