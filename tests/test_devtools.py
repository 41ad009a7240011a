"""``cqrs dev`` (local engine + follower) and ``cqrs show`` (entity inspector, version diffs)."""

from __future__ import annotations

import io
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cqrs import SYSTEM, CommandInput, CommandPartialInput, Cqrs, InvokeContext, TaskStatus
from cqrs.cli import main
from cqrs.cli.dev import AppFactory, _env_app_factory, run_dev
from cqrs.cli.diff import Change, diff_versions
from cqrs.cli.render import render_table
from cqrs.core.errors import ConfigurationError
from cqrs.core.settings import Settings
from cqrs.testing import free_port

REPO = Path(__file__).resolve().parents[1]
CTX = InvokeContext(tenant_code="acme", user_id="alice")
BOUND = 10.0  # seconds: generous upper bound for anything asynchronous below


def order(code: str, version: int = 0, **attributes: Any) -> CommandInput:
    return CommandInput(
        pk="ORDER#acme",
        sk=f"ORDER#{code}",
        code=code,
        name=f"Order {code}",
        tenant_code="acme",
        type="ORDER",
        version=version,
        attributes=attributes,
    )


def patch(code: str, version: int, **fields: Any) -> CommandPartialInput:
    return CommandPartialInput(pk="ORDER#acme", sk=f"ORDER#{code}", version=version, **fields)


# -- cqrs dev ------------------------------------------------------------------------


class DevThread:
    """``run_dev`` in a thread; ``endpoint`` once ready; ``close()`` stops and joins it."""

    def __init__(
        self, settings: Settings, port: int, app_factory: AppFactory | None = None
    ) -> None:
        self.stop = threading.Event()
        self.out = io.StringIO()
        self._ready: queue.Queue[str] = queue.Queue()
        self.error: BaseException | None = None
        self.app_factory = app_factory
        self.thread = threading.Thread(target=self._run, args=(settings, port), daemon=True)
        self.thread.start()

    def _run(self, settings: Settings, port: int) -> None:
        try:
            run_dev(
                settings,
                self.stop,
                port=port,
                ready=self._ready.put,
                interval=0.05,
                out=self.out,
                app_factory=self.app_factory,
            )
        except BaseException as exc:  # reported by the test
            self.error = exc

    def endpoint(self) -> str:
        try:
            return self._ready.get(timeout=BOUND)
        except queue.Empty:
            pytest.fail(f"cqrs dev did not become ready: {self.error!r}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=BOUND)


@pytest.fixture
def dev(cqrs_tables_dir: Path) -> Iterator[tuple[DevThread, int]]:
    port = free_port()
    runner = DevThread(Settings(tables_dir=cqrs_tables_dir, table_prefix="devtest-"), port)
    try:
        yield runner, port
    finally:
        runner.close()


def test_dev_serves_migrates_and_syncs(dev: tuple[DevThread, int], cqrs_tables_dir: Path) -> None:
    runner, port = dev
    endpoint = runner.endpoint()
    assert endpoint == f"http://127.0.0.1:{port}"
    service = Cqrs(
        Settings(endpoint_url=endpoint, table_prefix="devtest-", tables_dir=cqrs_tables_dir)
    )
    orders = service.entity("order")
    orders.commands.publish_async(order("D-1", note="hello"), CTX)

    row = None
    deadline = time.monotonic() + BOUND
    while row is None and time.monotonic() < deadline:
        row = orders.data.get("ORDER#acme", "ORDER#D-1", consistent=True, context=SYSTEM)
        if row is None:
            time.sleep(0.05)
    assert row is not None, "the follower did not project the command"
    assert row.attributes == {"note": "hello"}

    runner.close()
    assert not runner.thread.is_alive()
    assert runner.error is None
    banner = runner.out.getvalue()
    assert f"export CQRS_ENDPOINT_URL={endpoint}" in banner
    assert "export CQRS_TABLE_PREFIX=devtest-" in banner
    assert "AWS_ACCESS_KEY_ID" in banner and "any values work" in banner
    assert "create-table devtest-order-command" in banner


def test_dev_creates_the_bucket_of_large_attributes(cqrs_tables_dir: Path) -> None:
    """With ``CQRS_S3_BUCKET``, ``cqrs dev`` creates the bucket on its engine (S3 at the
    same endpoint, path-style), so large attributes work locally as on AWS."""
    settings = Settings(
        tables_dir=cqrs_tables_dir, table_prefix="devlarge-", s3_bucket="dev-large",
        attribute_limit_size=100,
    )  # fmt: skip
    runner = DevThread(settings, free_port())
    try:
        endpoint = runner.endpoint()
        service = Cqrs(settings.replace(endpoint_url=endpoint))
        orders = service.entity("order")
        orders.commands.publish_async(order("L-1", note="n" * 500), CTX)
        row = None
        deadline = time.monotonic() + BOUND
        while row is None and time.monotonic() < deadline:
            row = orders.data.get("ORDER#acme", "ORDER#L-1", consistent=True, context=SYSTEM)
            time.sleep(0.05 if row is None else 0)
        assert row is not None and row.attributes == {"note": "n" * 500}
        stored = service.clients.store.get(
            orders.tables.data, {"pk": "ORDER#acme", "sk": "ORDER#L-1"}
        )
        assert stored is not None and stored["attributes"].startswith("s3://dev-large/ddb/")
    finally:
        runner.close()
    assert runner.error is None
    banner = runner.out.getvalue()
    assert "created S3 bucket dev-large" in banner and "export CQRS_S3_BUCKET=dev-large" in banner


def _left_queued_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cqrs.system.tasks" and "stay QUEUED" in r.getMessage()
    ]


@pytest.mark.slow  # a server and a follower per test
def test_dev_without_app_leaves_tasks_queued_and_says_so_once(
    dev: tuple[DevThread, int], cqrs_tables_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cqrs.system.tasks")
    runner, _ = dev
    endpoint = runner.endpoint()
    assert "tasks stay QUEUED" in runner.out.getvalue()  # the banner says it up front
    service = Cqrs(
        Settings(endpoint_url=endpoint, table_prefix="devtest-", tables_dir=cqrs_tables_dir)
    )
    created = [
        service.tasks.create("acme", "csv-import", {"n": n}, context=SYSTEM) for n in range(3)
    ]

    deadline = time.monotonic() + BOUND
    while not _left_queued_lines(caplog) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _left_queued_lines(caplog), "cqrs dev did not say it leaves the tasks queued"
    time.sleep(0.5)  # ten idle polls: long enough for any FAILED write to show
    for task in created:
        now = service.tasks.get("acme", task.sk, consistent=True, context=SYSTEM)
        assert now is not None
        assert (now.status, now.attempts, now.error) == (TaskStatus.QUEUED, 0, None)
    (line,) = _left_queued_lines(caplog)  # once for the task type, not once per task
    assert "'csv-import'" in line
    assert runner.error is None


@pytest.mark.slow  # a server and a follower per test
def test_dev_with_app_fails_a_task_type_the_app_has_no_handler_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cqrs_tables_dir: Path
) -> None:
    name = f"dev_app_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text("from cqrs import Cqrs\napp = Cqrs.from_env()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CQRS_ENDPOINT_URL", raising=False)
    factory = _env_app_factory(f"{name}:app", cqrs_tables_dir, "devapp-")
    runner = DevThread(Settings(tables_dir=cqrs_tables_dir), free_port(), app_factory=factory)
    try:
        endpoint = runner.endpoint()
        assert "tasks stay QUEUED" not in runner.out.getvalue()
        service = Cqrs(
            Settings(endpoint_url=endpoint, table_prefix="devapp-", tables_dir=cqrs_tables_dir)
        )
        created = service.tasks.create("acme", "csv-import", {}, context=SYSTEM)
        task = None
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            task = service.tasks.get("acme", created.sk, consistent=True, context=SYSTEM)
            if task is not None and task.status.is_terminal:
                break
            time.sleep(0.05)
        assert task is not None and task.error is not None
        assert (task.status, task.error.type) == (TaskStatus.FAILED, "NoTaskHandlerError")
    finally:
        runner.close()
    assert runner.error is None


def test_dev_refuses_a_port_in_use(cqrs_tables_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runner = DevThread(Settings(tables_dir=cqrs_tables_dir), port)
        runner.thread.join(timeout=BOUND)
    assert not runner.thread.is_alive()
    assert isinstance(runner.error, ConfigurationError)
    assert f"127.0.0.1:{port}" in str(runner.error)


def test_dev_command_stops_cleanly_on_sigint(cqrs_tables_dir: Path) -> None:
    args = ["dev", "--port", "0", "--tables-dir", str(cqrs_tables_dir), "--prefix", "sig-"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cqrs.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True)
    reader.start()
    try:
        seen = _wait_for_line(lines, "export CQRS_ENDPOINT_URL=http://127.0.0.1:")
        assert seen, "cqrs dev did not print its endpoint"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=BOUND) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=BOUND)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "cqrs dev: stopped\n" in rest


def _wait_for_line(lines: queue.Queue[str], needle: str) -> bool:
    deadline = time.monotonic() + 3 * BOUND  # a fresh interpreter imports moto first
    while time.monotonic() < deadline:
        try:
            if needle in lines.get(timeout=0.5):
                return True
        except queue.Empty:
            continue
    return False


def test_dev_app_reads_the_endpoint_and_the_environment_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cqrs_tables_dir: Path
) -> None:
    name = f"dev_app_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text("from cqrs import Cqrs\napp = Cqrs.from_env()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CQRS_ENDPOINT_URL", raising=False)
    environment = dict(os.environ)

    factory = _env_app_factory(f"{name}:app", cqrs_tables_dir, "devapp-")
    app = factory("http://127.0.0.1:9")  # building it contacts nothing

    assert app.settings.endpoint_url == "http://127.0.0.1:9"
    assert (app.settings.table_prefix, app.settings.tables_dir) == ("devapp-", cqrs_tables_dir)
    assert dict(os.environ) == environment


def test_dev_defaults(monkeypatch: pytest.MonkeyPatch, cqrs_tables_dir: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_run_dev(settings: Settings, stop: threading.Event, **options: Any) -> None:
        seen.update(options, prefix=settings.table_prefix)

    monkeypatch.setattr("cqrs.cli.dev.run_dev", fake_run_dev)
    monkeypatch.delenv("CQRS_TABLE_PREFIX", raising=False)
    assert main(["dev", "--tables-dir", str(cqrs_tables_dir)]) == 0
    assert (seen["port"], seen["interval"], seen["prefix"]) == (4566, 0.25, "")
    assert seen["app_factory"] is None and seen["verbose"] is False


# -- cqrs show -----------------------------------------------------------------------


def show(app: Cqrs, sk: str) -> int:
    argv = [
        "show",
        "order",
        "ORDER#acme",
        sk,
        "--prefix",
        app.settings.table_prefix,
        "--tables-dir",
        str(app.settings.tables_dir),
    ]
    if app.settings.endpoint_url:
        argv += ["--endpoint-url", app.settings.endpoint_url]
    return main(argv)


def test_show_prints_data_and_history_with_changes(
    cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = cqrs_app.entity("order")
    lines = [{"sku": "pen", "qty": 1}]
    orders.commands.publish_async(order("S-1", status="open", lines=lines), CTX)
    bob = InvokeContext(tenant_code="acme", user_id="bob")
    orders.commands.publish_partial_update_async(
        patch("S-1", 1, attributes={"lines": [{"sku": "pen", "qty": 2}], "note": "rush"}), bob
    )
    orders.commands.publish_partial_update_async(
        patch("S-1", 2, name="Renamed", attributes={"status": "paid"}), CTX
    )
    cqrs_app.sync()

    assert show(cqrs_app, "ORDER#S-1") == 0
    out = capsys.readouterr().out
    assert out.startswith("order  ORDER#acme / ORDER#S-1\n")
    assert "data: version 3\n" in out
    assert '"status": "paid"' in out
    assert "history: 3 version(s)\n" in out
    assert "VERSION  UPDATED AT" in out
    history = out[out.index("history:") :].splitlines()
    v1 = next(i for i, line in enumerate(history) if line.startswith("v1 "))
    assert history[v1].endswith("alice  created")
    assert history[v1 + 1].startswith("v2 ") and " bob " in history[v1 + 1]
    assert history[v1 + 1].endswith("attributes.lines[0].qty: 1 → 2")
    assert history[v1 + 2].strip() == '+ attributes.note: "rush"'
    assert history[v1 + 3].startswith("v3 ")
    assert history[v1 + 3].endswith('name: "Order S-1" → "Renamed"')
    assert history[v1 + 4].strip() == 'attributes.status: "open" → "paid"'
    assert "version:" not in out and "updatedAt:" not in out  # audit fields are columns


def test_show_marks_versions_not_yet_synced(
    cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = cqrs_app.entity("order")
    orders.commands.publish_async(order("S-2", status="open"), CTX)
    cqrs_app.sync()
    orders.commands.publish_partial_update_async(patch("S-2", 1, attributes={"status": "x"}), CTX)

    assert show(cqrs_app, "ORDER#S-2@1") == 0  # an @version suffix is ignored
    out = capsys.readouterr().out
    assert "data: version 1\n" in out
    assert "history: 2 version(s), 1 not synced" in out
    assert any(
        line.startswith("v2*") and line.endswith('attributes.status: "open" → "x"')
        for line in out.splitlines()
    )
    assert "run `cqrs sync`" in out


def test_show_unknown_entity_key_exits_1(
    cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str]
) -> None:
    assert show(cqrs_app, "ORDER#nothing") == 1
    out = capsys.readouterr().out
    assert "data: no row" in out and "history: no versions" in out


# -- diff_versions ---------------------------------------------------------------------


def test_diff_identical_is_empty() -> None:
    item = {"a": 1, "attributes": {"lines": [{"sku": "pen", "qty": 1}]}}
    assert diff_versions(item, {**item}) == []


def test_diff_nested_list_item_uses_dotted_path() -> None:
    before = {"attributes": {"lines": [{"sku": "pen", "qty": 1}]}}
    after = {"attributes": {"lines": [{"sku": "pen", "qty": 2}]}}
    changes = diff_versions(before, after)
    assert changes == [Change("attributes.lines[0].qty", "changed", 1, 2)]
    assert str(changes[0]) == "attributes.lines[0].qty: 1 → 2"


def test_diff_added_and_removed_keys() -> None:
    changes = diff_versions({"a": 1, "gone": "x"}, {"a": 1, "new": {"b": [1]}})
    assert changes == [
        Change("gone", "removed", before="x"),
        Change("new", "added", after={"b": [1]}),
    ]
    assert [str(c) for c in changes] == ['- gone: "x"', '+ new: {"b": [1]}']


def test_diff_lists_compare_by_position() -> None:
    assert diff_versions({"l": [1, 2, 3]}, {"l": [1, 5]}) == [
        Change("l[1]", "changed", 2, 5),
        Change("l[2]", "removed", before=3),
    ]
    assert diff_versions({"l": []}, {"l": ["x"]}) == [Change("l[0]", "added", after="x")]


def test_diff_type_changes_and_numbers() -> None:
    assert diff_versions({"f": True}, {"f": 1}) == [Change("f", "changed", True, 1)]
    assert diff_versions({"f": 1}, {"f": "1"}) == [Change("f", "changed", 1, "1")]
    assert diff_versions({"f": {"a": 1}}, {"f": [1]}) == [Change("f", "changed", {"a": 1}, [1])]
    assert diff_versions({"f": None}, {"f": 0}) == [Change("f", "changed", None, 0)]
    assert diff_versions({"f": 1}, {"f": 1.0}) == []  # DynamoDB numbers


def test_diff_ignores_top_level_keys_only() -> None:
    before = {"version": 1, "attributes": {"version": "a"}}
    after = {"version": 2, "attributes": {"version": "b"}}
    assert diff_versions(before, after, ignore={"version"}) == [
        Change("attributes.version", "changed", "a", "b")
    ]


def test_diff_quotes_keys_that_are_not_identifiers() -> None:
    changes = diff_versions({"m": {"a.b": 1, "x-y": 1}}, {"m": {"a.b": 2, "x-y": 2}})
    assert [c.path for c in changes] == ['m["a.b"]', 'm["x-y"]']


def test_change_text_truncates_long_values() -> None:
    text = str(Change("note", "added", after="x" * 500))
    assert text.startswith('+ note: "xxx') and text.endswith("…") and len(text) < 80


def test_render_table_continues_multiline_cells() -> None:
    assert render_table(["A", "B"], [["1", "x\ny"], ["22", "z"]]) == [
        "A   B",
        "1   x",
        "    y",
        "22  z",
    ]
