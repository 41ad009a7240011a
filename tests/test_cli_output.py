"""What the command line prints: rich tables and bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from cqrs import CommandInput, Cqrs, InvokeContext
from cqrs.cli import main
from cqrs.cli.diff import Change
from cqrs.cli.progress import Phases, RichBars, progress_bars
from cqrs.cli.render import change_text, emit, plain, render_table, table
from cqrs.system.data_migrations.progress import LineProgress

CTX = InvokeContext(tenant_code="acme", user_id="alice")


def terminal(width: int = 100) -> Console:
    """A console that takes itself for a colour terminal, writing to a buffer."""
    return Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=width)


def written(console: Console) -> str:
    buffer = console.file
    assert isinstance(buffer, io.StringIO)
    return buffer.getvalue()


def options(app: Cqrs) -> list[str]:
    s = app.settings
    found = ["--tables-dir", str(s.tables_dir), "--prefix", s.table_prefix]
    return found + (["--endpoint-url", s.endpoint_url] if s.endpoint_url else [])


# -- tables and text -----------------------------------------------------------------


def test_plain_text_has_no_styles_no_wrapping_and_no_trailing_spaces() -> None:
    long = "x" * 300
    text = plain(Text("title", style="bold"), table(["A", "LONG"], [["1", long], ["22", "y"]]))
    assert text == f"title\nA   LONG\n1   {long}\n22  y\n"
    assert "\x1b[" not in text


def test_markup_in_values_is_printed_as_is() -> None:
    assert render_table(["V"], [["[bold]not markup[/bold] :smile:"]]) == [
        "V",
        "[bold]not markup[/bold] :smile:",
    ]


def test_emit_styles_on_a_terminal_and_writes_plain_text_otherwise() -> None:
    rows = [table(["A"], [[change_text(Change("a.b", "changed", 1, 2))]])]
    console = terminal()
    emit(rows, console)
    assert "\x1b[" in written(console) and "→" in written(console)

    pipe = Console(file=io.StringIO(), force_terminal=False)
    emit(rows, pipe)
    assert written(pipe) == "A\na.b: 1 → 2\n"


def test_changes_are_coloured_by_kind() -> None:
    added = change_text(Change("n", "added", after=1))
    removed = change_text(Change("n", "removed", before=1))
    changed = change_text(Change("n", "changed", 1, 2))
    assert (added.plain, str(added.style)) == ("+ n: 1", "green")
    assert (removed.plain, str(removed.style)) == ("- n: 1", "red")
    assert changed.plain == "n: 1 → 2"
    assert {str(span.style) for span in changed.spans} == {"red", "green"}


def test_show_on_a_terminal_is_styled(
    cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = cqrs_app.entity("order")
    orders.commands.publish_async(
        CommandInput(
            pk="ORDER#acme",
            sk="ORDER#T-1",
            code="T-1",
            name="Order T-1",
            tenant_code="acme",
            type="ORDER",
            attributes={"status": "open"},
        ),
        CTX,
    )
    cqrs_app.sync()
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stdout is a terminal

    assert main(["show", "order", "ORDER#acme", "ORDER#T-1", *options(cqrs_app)]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" in out
    assert "data: version 1" in out and "history: 1 version(s)" in out and "created" in out


# -- progress ----------------------------------------------------------------------------


def test_progress_bars_are_plain_lines_unless_on_a_terminal() -> None:
    plain_bars = progress_bars(Console(file=io.StringIO(), force_terminal=False))
    assert isinstance(plain_bars(3, "rows"), LineProgress)
    assert isinstance(progress_bars(terminal()), RichBars)


def test_rich_bars_share_one_display_and_end_complete() -> None:
    console = terminal()
    bars = RichBars(console)
    first, second = bars(3, "first"), bars(None, "second")
    for _ in range(3):
        first.advance()
    second.advance(5)
    first.close()
    second.close()
    second.close()  # once only
    text = written(console)
    assert "first" in text and "3/3" in text
    assert "second" in text and "5/5" in text  # an unknown total ends at 100%

    again = bars(2, "again [bold]as is[/bold]")  # a new display once all bars are closed
    again.advance()
    again.close(stopped=True)
    assert "again [bold]as is[/bold] (stopped)" in written(console)  # labels are not markup


class Recorded:
    def __init__(self, total: int | None, label: str) -> None:
        self.total, self.label, self.count, self.closed = total, label, 0, ""

    def advance(self, n: int = 1) -> None:
        self.count += n

    def close(self, *, stopped: bool = False) -> None:
        self.closed = "stopped" if stopped else "done"


def test_phases_open_one_bar_per_phase() -> None:
    bars: list[Recorded] = []

    def factory(total: int | None, label: str) -> Recorded:
        bars.append(Recorded(total, label))
        return bars[-1]

    phases = Phases(factory)
    phases.close()  # nothing ticked: nothing shown
    assert bars == []
    for tick in [("scan", 100, 0), ("scan", 250, 0), ("history", 2, 5), ("data", 5, 5)]:
        phases(*tick)
    phases.close(stopped=True)

    assert [(b.label, b.total, b.count, b.closed) for b in bars] == [
        ("scan", None, 250, "done"),
        ("history", 5, 2, "done"),
        ("data", 5, 5, "stopped"),
    ]


def test_sync_and_rebuild_print_progress_lines_when_not_on_a_terminal(
    cqrs_app: Cqrs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    orders = cqrs_app.entity("order")
    for code in ("P-1", "P-2"):
        orders.commands.publish_async(
            CommandInput(
                pk="ORDER#acme",
                sk=f"ORDER#{code}",
                code=code,
                name=code,
                tenant_code="acme",
                type="ORDER",
            ),
            CTX,
        )
    checkpoints = str(tmp_path / "checkpoints.json")

    assert main(["sync", *options(cqrs_app), "--checkpoints", checkpoints]) == 0
    captured = capsys.readouterr()
    assert "sync: 2 record(s)" in captured.out
    assert captured.err.startswith("records: 2 done in ")

    assert main(["rebuild", "order", "--dry-run", *options(cqrs_app)]) == 0
    err = capsys.readouterr().err
    assert "scan commands: 2 done in " in err


def test_migrate_hands_the_cli_bars_to_migrations(
    cqrs_app: Cqrs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "0001_count.py").write_text(
        textwrap.dedent(
            '''
            """Count to three."""


            def up(ctx):
                for _ in ctx.progress(range(3), label="counting"):
                    pass
            '''
        )
    )
    console = terminal()
    monkeypatch.setattr("cqrs.cli.commands.progress_bars", lambda: RichBars(console))
    argv = ["migrate", *options(cqrs_app), "--migrations-dir", str(tmp_path)]

    assert main(argv) == 0
    text = written(console)
    assert "counting" in text and "3/3" in text
