"""Progress on the command line: rich bars on a terminal, periodic plain lines otherwise.

:func:`progress_bars` picks one; both are
:data:`~cqrs.system.data_migrations.progress.ProgressBars` (``bars(total, label)``
makes a bar), so data migrations take them as they are. :class:`Phases` turns the
``(phase, done, total)`` callback of :meth:`Cqrs.rebuild <cqrs.app.Cqrs.rebuild>`
into one bar per phase.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from ..system.data_migrations.progress import ProgressBar, ProgressBars


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
