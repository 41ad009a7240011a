"""Progress on long work: ``cqrs sync`` shows records and their rate (a live line on a
terminal, periodic plain lines otherwise); ``--follow`` and ``cqrs dev`` print one short
line per batch."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cqrs import Command, CommandInput, Cqrs, InvokeContext
from cqrs.cli import progress
from cqrs.cli.app import APP
from cqrs.cli.progress import SyncProgress, batch_line, follow_printing
from cqrs.sync.telemetry import BatchSummary

CTX = InvokeContext(tenant_code="acme", user_id="alice")
BOUND = 10.0  # seconds: generous upper bound for the follower to see a batch


def publish(app: Cqrs, *codes: str) -> None:
    for code in codes:
        app.entity("order").commands.publish_async(
            CommandInput(
                pk="ORDER#acme", sk=f"ORDER#{code}", code=code, name=code, tenant_code="acme",
                type="ORDER",
            ),
            CTX,
        )  # fmt: skip


def options(app: Cqrs) -> list[str]:
    s = app.settings
    found = ["--tables-dir", str(s.tables_dir), "--prefix", s.table_prefix]
    return found + (["--endpoint-url", s.endpoint_url] if s.endpoint_url else [])


def summary(records: int, applied: int, failed: int = 0, stuck: int = 0) -> BatchSummary:
    return BatchSummary(
        records=records, applied=applied, consumed=0, ignored=0, failed=failed, stuck=stuck,
        rejected=0, oldest_record_age_ms=1500, duration_ms=12.0, tables=("order-command",),
    )  # fmt: skip


def test_sync_prints_periodic_lines_when_not_on_a_terminal(
    cqrs_app: Cqrs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "SYNC_LINE_SECONDS", 0.0)  # a line after every batch
    publish(cqrs_app, "A", "B", "C", "D", "E")
    checkpoints = str(tmp_path / "checkpoints.json")

    result = CliRunner().invoke(
        APP, ["sync", *options(cqrs_app), "--checkpoints", checkpoints, "--batch-size", "2"]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"sync: reading {len(cqrs_app.streamed_tables())} stream(s)"
    periodic = [line for line in lines if re.fullmatch(r"records: \d+ done [\d,.]+/s \(.*", line)]
    assert [line.split(" done")[0] for line in periodic] == [
        "records: 2", "records: 4", "records: 5",
    ]  # fmt: skip
    assert all(re.search(r"[\d.]+/s \(\d applied, 0 failed\)$", line) for line in periodic)
    assert periodic[-1].endswith("(5 applied, 0 failed)")
    assert re.fullmatch(r"records: 5 done in [\d.]+s, [\d,.]+/s", lines[-2])
    assert lines[-1] == "sync: 5 record(s) in 3 batch(es), 0 failed; 5 applied"


def test_sync_says_nothing_on_stderr_before_the_first_batch(cqrs_app: Cqrs, tmp_path: Path) -> None:
    checkpoints = str(tmp_path / "checkpoints.json")
    result = CliRunner().invoke(APP, ["sync", *options(cqrs_app), "--checkpoints", checkpoints])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"sync: reading {len(cqrs_app.streamed_tables())} stream(s)",
        "sync: 0 record(s) in 0 batch(es), 0 failed; 0 applied",
    ]


def test_sync_progress_on_a_terminal_shows_records_rate_and_outcomes() -> None:
    out = Console(file=io.StringIO(), force_terminal=True, width=120)
    shown = SyncProgress(out)
    shown(summary(100, 98, failed=1))
    shown(summary(50, 49, stuck=1))
    shown.close()

    screen = out.file.getvalue()  # type: ignore[attr-defined]
    assert "150 records" in screen
    assert "147 applied, 1 failed, 1 stuck" in screen
    assert (shown.totals.records, shown.totals.applied, shown.totals.stuck) == (150, 147, 1)


def test_batch_line_is_one_short_line() -> None:
    line = batch_line(summary(3, 2, failed=1))
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d sync: 3 record\(s\) of order-command: 2 applied, 1 failed; "
        r"oldest 1\.5s, 12 ms",
        line,
    )


class FailOnBad:
    def up(self, command: Command[object]) -> None:
        if command.code == "BAD":
            raise RuntimeError("bad")

    def down(self, command: Command[object]) -> None:
        pass


def test_follow_prints_one_line_per_batch(cqrs_app: Cqrs) -> None:
    """What ``cqrs sync --follow`` and ``cqrs dev`` run: a line per batch, none when idle."""
    cqrs_app.register("order", handlers=[FailOnBad()])
    publish(cqrs_app, "F-1", "F-2", "BAD")
    out = io.StringIO()
    stop = threading.Event()
    follower = cqrs_app.follower(batch_size=2)
    thread = threading.Thread(
        target=follow_printing, args=(cqrs_app, follower, stop, 0.05), kwargs={"out": out}
    )
    thread.start()
    try:
        deadline = time.monotonic() + BOUND
        while "failed" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(BOUND)
    lines = out.getvalue().splitlines()
    table = cqrs_app.entity("order").tables.command
    assert lines, "the follower printed nothing"
    assert all(re.match(rf"\d\d:\d\d:\d\d sync: \d record\(s\) of {table}: ", x) for x in lines)
    assert "2 applied" in lines[0]
    assert any("1 failed" in x for x in lines[1:])
