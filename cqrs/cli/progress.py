"""Progress on the command line: rich bars on a terminal, periodic plain lines otherwise.

:func:`progress_bars` picks one; both are
:data:`~cqrs.system.data_migrations.progress.ProgressBars` (``bars(total, label)``
makes a bar), so data migrations take them as they are. :class:`Phases` turns the
``(phase, done, total)`` callback of :meth:`Cqrs.rebuild <cqrs.app.Cqrs.rebuild>`
into one bar per phase. :class:`SyncProgress` shows ``cqrs sync``'s records, their
rate and what became of them; :func:`batch_line` is the one line per batch of
``cqrs sync --follow`` and ``cqrs dev``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..sync.follower import StreamFollower
    from ..sync.telemetry import BatchSummary
    from ..system.data_migrations.progress import ProgressBar, ProgressBars

#: Seconds between the plain progress lines of ``cqrs sync`` (not on a terminal).
SYNC_LINE_SECONDS = 5.0


def progress_bars(out: Console | None = None) -> ProgressBars:
    """Rich bars if ``out`` (default: a console on stderr) is a terminal, else plain lines."""
    from ..system.data_migrations.progress import line_progress

    out = out if out is not None else Console(stderr=True)
    return RichBars(out) if out.is_terminal else line_progress()


class RichBars:
    """:data:`~cqrs.system.data_migrations.progress.ProgressBars` drawn by rich.

    Bars open at once share one live display; it stops (leaving the bars' last
    state on screen) when the last of them is closed. Lines printed to stdout in
    the meantime appear above the bars when stdout is the same terminal.
    """

    def __init__(self, out: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=out,
            redirect_stdout=_isatty(sys.stdout),
        )
        self._open = 0

    def __call__(self, total: int | None, label: str) -> ProgressBar:
        """A new bar of ``total`` items (``None``: unknown) named ``label``."""
        if self._open == 0:
            self._progress.start()
        self._open += 1
        return _RichBar(self, self._progress.add_task(label, total=total), label)

    def _advance(self, task: TaskID, n: int) -> None:
        self._progress.advance(task, n)

    def _close(self, task: TaskID, label: str, stopped: bool) -> None:
        done = self._progress.tasks[self._progress.task_ids.index(task)].completed
        if stopped:
            self._progress.update(task, description=f"{label} (stopped)")
        else:  # a total that was unknown, or an estimate that was off, ends at 100%
            self._progress.update(task, total=done)
        self._progress.stop_task(task)
        self._open -= 1
        if self._open == 0:
            self._progress.stop()
            for finished in list(self._progress.task_ids):
                self._progress.remove_task(finished)


class _RichBar:
    def __init__(self, owner: RichBars, task: TaskID, label: str) -> None:
        self._owner, self._task, self._label = owner, task, label
        self._closed = False

    def advance(self, n: int = 1) -> None:
        self._owner._advance(self._task, n)

    def close(self, *, stopped: bool = False) -> None:
        if not self._closed:
            self._closed = True
            self._owner._close(self._task, self._label, stopped)


class Phases:
    """A ``(phase, done, total)`` callback showing one bar per phase, opened at its first tick.

    ``done`` is a running count; a ``total`` of 0 means unknown. Call :meth:`close`
    at the end (``stopped=True`` on an error): nothing is shown if no tick came.
    """

    def __init__(self, bars: ProgressBars) -> None:
        self._bars = bars
        self._phase: str | None = None
        self._bar: ProgressBar | None = None
        self._done = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Advance ``phase``'s bar to ``done`` (closing the previous phase's)."""
        if phase != self._phase or self._bar is None:
            self.close()
            self._phase, self._done = phase, 0
            self._bar = self._bars(total or None, phase)
        if done > self._done:
            self._bar.advance(done - self._done)
            self._done = done

    def close(self, *, stopped: bool = False) -> None:
        """Close the current phase's bar, if any."""
        if self._bar is not None:
            self._bar.close(stopped=stopped)
            self._bar = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or odd streams
        return False


def batch_line(summary: BatchSummary) -> str:
    """One short line for a batch: ``12:04:05 sync: 3 record(s) of order-command: 3 applied; …``."""
    return f"{time.strftime('%H:%M:%S')} sync: {summary.line()}"


class SyncTotals:
    """What the batches of one ``cqrs sync`` did, added up."""

    def __init__(self) -> None:
        self.records = self.applied = self.failed = self.stuck = self.rejected = 0

    def add(self, summary: BatchSummary) -> None:
        """Count one more batch."""
        self.records += summary.records
        self.applied += summary.applied
        self.failed += summary.failed
        self.stuck += summary.stuck
        self.rejected += summary.rejected

    def outcome(self) -> str:
        """``98 applied`` (with stuck and rejected when there are some)."""
        parts = [f"{self.applied:,} applied"]
        parts += [
            f"{n:,} {what}" for n, what in ((self.stuck, "stuck"), (self.rejected, "rejected")) if n
        ]
        return ", ".join(parts)

    def detail(self) -> str:
        """``98 applied, 1 failed`` (stuck and rejected only when there are some)."""
        parts = [f"{self.applied:,} applied", f"{self.failed:,} failed"]
        parts += [
            f"{n:,} {what}" for n, what in ((self.stuck, "stuck"), (self.rejected, "rejected")) if n
        ]
        return ", ".join(parts)


class SyncProgress:
    """``cqrs sync``'s progress: records handled, their rate, and what became of them.

    On a terminal (``out``, default stderr), a live line shown from the start::

        ⠋ sync  1,200 records  240.1/s  1,180 applied, 20 failed  0:00:05

    Otherwise a plain line every :data:`SYNC_LINE_SECONDS` once the first batch is in,
    and a last one when closed::

        records: 1,200 done 240.1/s (1,180 applied, 20 failed)
        records: 2,005 done in 8.4s, 238.7/s
    """

    def __init__(self, out: Console | None = None) -> None:
        out = out if out is not None else Console(stderr=True)
        self.totals = SyncTotals()
        self._live: Progress | None = None
        self._lines: _SyncLines | None = None
        self._stream = out.file
        if out.is_terminal:
            self._live = Progress(
                SpinnerColumn(),
                TextColumn("sync"),
                TextColumn("{task.completed:,.0f} records"),
                _RateColumn(),
                TextColumn("{task.fields[detail]}", markup=False),
                TimeElapsedColumn(),
                console=out,
                redirect_stdout=_isatty(sys.stdout),
            )
            self._task = self._live.add_task("sync", total=None, detail="reading streams")
            self._live.start()

    def __call__(self, summary: BatchSummary) -> None:
        """Count one batch handled."""
        self.totals.add(summary)
        if self._live is not None:
            self._live.update(self._task, advance=summary.records, detail=self.totals.detail())
            return
        if self._lines is None:
            self._lines = _SyncLines(self._stream, SYNC_LINE_SECONDS)
        self._lines.advance(summary.records, self.totals.detail())

    def close(self, *, stopped: bool = False) -> None:
        """Stop the display (its last state stays on screen) or print the last line."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self._lines is not None:
            self._lines.close(stopped=stopped)


class _SyncLines:
    """The plain lines of :class:`SyncProgress` (the format of ``LineProgress``'s)."""

    def __init__(self, stream: IO[str], every_seconds: float) -> None:
        self._stream, self._every = stream, every_seconds
        self._started = self._last = time.monotonic()
        self.count = 0

    def advance(self, n: int, detail: str) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            elapsed = now - self._started
            rate = f" {self.count / elapsed:,.1f}/s" if elapsed > 0 else ""
            self._line(f"records: {self.count:,} done{rate} ({detail})")

    def close(self, *, stopped: bool = False) -> None:
        from ..system.data_migrations.progress import duration

        elapsed = time.monotonic() - self._started
        done = f"stopped after {self.count:,}" if stopped else f"{self.count:,} done"
        rate = f", {self.count / elapsed:,.1f}/s" if elapsed > 0 and self.count else ""
        self._line(f"records: {done} in {duration(elapsed)}{rate}")

    def _line(self, text: str) -> None:
        sys.stdout.flush()  # what stdout printed before comes first in a shared pipe
        self._stream.write(text + "\n")
        self._stream.flush()


class _RateColumn(ProgressColumn):
    """Items per second since the start (steadier than rich's recent-window estimate)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        speed = task.completed / elapsed if elapsed > 0 and task.completed else 0.0
        return Text(f"{speed:,.1f}/s" if speed else "", style="progress.data.speed")


def follow_printing(
    app: Cqrs,
    follower: StreamFollower,
    stop: threading.Event,
    interval: float,
    out: TextIO | None = None,
) -> None:
    """Follow until ``stop`` is set, printing one :func:`batch_line` per batch to ``out``
    (stdout)."""
    from ..sync.telemetry import observing

    def show(summary: BatchSummary) -> None:
        if summary.records:
            print(batch_line(summary), file=out if out is not None else sys.stdout, flush=True)

    follower.with_handler(observing(app.process_event, show)).follow(stop, interval=interval)
