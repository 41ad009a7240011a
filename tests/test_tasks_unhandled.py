"""A task type without a registered handler: FAILED by default (as on Lambda), or left
QUEUED with ``unhandled="leave"`` (``cqrs dev`` without ``--app``), said once per type."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from cqrs import SYSTEM, Cqrs, InterfaceError, TaskService, TaskStatus
from cqrs.testing import stream_records

LOGGER = "cqrs.system.tasks"
Drain = Callable[[Cqrs], object]


def left_queued_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and "stay QUEUED" in r.getMessage()
    ]


def test_the_default_fails_the_task_as_on_lambda(cqrs_app: Cqrs, drain: Drain) -> None:
    assert cqrs_app.tasks.unhandled == "fail"
    created = cqrs_app.tasks.create("acme", "nobody", {}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, context=SYSTEM)
    assert task is not None and task.error is not None
    assert (task.status, task.attempts, task.error.type) == (
        TaskStatus.FAILED, 0, "NoTaskHandlerError"
    )  # fmt: skip


def test_leave_keeps_tasks_queued_and_says_so_once_per_task_type(
    cqrs_app: Cqrs, drain: Drain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    cqrs_app.tasks.unhandled = "leave"
    created = [
        cqrs_app.tasks.create("acme", "csv-import", {"n": i}, context=SYSTEM) for i in range(3)
    ]
    created += [cqrs_app.tasks.create("acme", "mail", {}, context=SYSTEM) for _ in range(2)]
    drain(cqrs_app)
    redelivered = [r for r in stream_records(cqrs_app) if "tasks" in r["eventSourceARN"]]
    assert cqrs_app.process_event({"Records": redelivered}).failed == []  # Lambda retrying

    for c in created:
        task = cqrs_app.tasks.get("acme", c.sk, consistent=True, context=SYSTEM)
        assert task is not None
        assert (task.status, task.attempts, task.error) == (TaskStatus.QUEUED, 0, None)
    lines = left_queued_lines(caplog)
    assert len(lines) == 2, lines
    assert sorted(line.split("'")[1] for line in lines) == ["csv-import", "mail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_task_left_queued_runs_once_a_process_has_its_handler(
    cqrs_app: Cqrs, drain: Drain
) -> None:
    cqrs_app.tasks.unhandled = "leave"
    created = cqrs_app.tasks.create("acme", "csv-import", {"rows": 3}, context=SYSTEM)
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, consistent=True, context=SYSTEM)
    assert task is not None and task.status is TaskStatus.QUEUED

    cqrs_app.tasks.register("csv-import", lambda task: {"imported": task.input["rows"]})
    report = cqrs_app.tasks.sweep("acme", stale_after=0, context=SYSTEM)  # re-trigger it
    assert report.writes == 1
    drain(cqrs_app)
    task = cqrs_app.tasks.get("acme", created.sk, consistent=True, context=SYSTEM)
    assert task is not None
    assert (task.status, task.attempts, task.result) == (TaskStatus.COMPLETED, 1, {"imported": 3})


def test_the_option_on_the_constructor_and_its_values(cqrs_app: Cqrs) -> None:
    store, table = cqrs_app.clients.store, cqrs_app.tasks.table_name
    assert TaskService(store, table).unhandled == "fail"
    assert TaskService(store, table, unhandled="leave").unhandled == "leave"
    with pytest.raises(InterfaceError, match="unhandled must be one of"):
        TaskService(store, table, unhandled="ignore")  # type: ignore[arg-type]
    with pytest.raises(InterfaceError):
        cqrs_app.tasks.unhandled = "skip"  # type: ignore[assignment]
    assert cqrs_app.tasks.unhandled == "fail"


def test_cqrs_sync_without_app_leaves_unhandled_tasks_queued(
    moto_server: str, cqrs_tables_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cqrs.cli import main
    from cqrs.testing import make_test_app

    app = make_test_app(cqrs_tables_dir, moto_server)
    task = app.tasks.create("acme", "csv-import", {"f": 1}, context=SYSTEM)
    args = ["sync", "--endpoint-url", moto_server, "--tables-dir", str(cqrs_tables_dir)]
    args += ["--prefix", app.settings.table_prefix, "--checkpoints", str(tmp_path / "cp.json")]
    capsys.readouterr()
    code = main(args)
    assert code == 0, capsys.readouterr().err
    stored = app.tasks.get("acme", task.sk, consistent=True, context=SYSTEM)
    assert stored is not None and stored.status == TaskStatus.QUEUED
