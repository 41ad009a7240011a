"""Progress of long loops (backfills): a small protocol, and a plain default printing lines.

A :data:`ProgressBars` factory makes one :class:`ProgressBar` per loop;
:meth:`MigrationContext.progress <cqrs.system.data_migrations.MigrationContext.progress>`
advances it after each item and closes it at the end. The default,
:func:`line_progress`, prints a line every ``every_percent`` percent of the total
(or every ``every_seconds`` seconds when the total is unknown or the loop is slow)
and a final line with the count, the time taken and the rate::

    order priority: 350/1,000 (35%) 120.5/s, eta 5.4s
    order priority: 1,000 done in 8.3s, 120.5/s

``cqrs migrate`` passes rich progress bars instead when stderr is a terminal.
No dependency beyond the standard library.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TextIO, TypeVar

T = TypeVar("T")


class ProgressBar(Protocol):
    """One loop's progress: advanced after each item, closed once at the end."""

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more items done."""

    def close(self, *, stopped: bool = False) -> None:
        """End the bar (idempotent); ``stopped``: the loop ended early (an error)."""


#: ``bars(total, label)``: a new bar; ``total`` is ``None`` when unknown, or an estimate.
ProgressBars = Callable[[int | None, str], ProgressBar]


class LineProgress:
    """A :class:`ProgressBar` printing ``label: 350/1,000 (35%) 120.5/s, eta 5s`` lines.

    ``total`` may be ``None`` (unknown) or an estimate: a count beyond it is
    shown as is, with the percentage held at 99%. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        total: int | None = None,
        label: str = "",
        *,
        stream: TextIO | None = None,
        every_percent: float = 10.0,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total if total is None else max(int(total), 0)
        self.label = label
        self.count = 0
        self._stream = stream
        self._every_percent = every_percent
        self._every_seconds = every_seconds
        self._clock = clock
        self._started = self._last_print = clock()
        self._last_step = 0
        self._closed = False

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more items done; print a line if one is due."""
        self.count += n
        now = self._clock()
        step = self._percent_step()
        due_by_percent = step is not None and step > self._last_step
        if due_by_percent or now - self._last_print >= self._every_seconds:
            self._line(self.render(now))
            self._last_print = now
            if step is not None:
                self._last_step = step

    def close(self, *, stopped: bool = False) -> None:
        """Print the final line (once): ``label: N done in 3.0s, 1.0/s`` or ``stopped after N``."""
        if self._closed:
            return
        self._closed = True
        elapsed = self._clock() - self._started
        done = f"stopped after {self.count:,}" if stopped else f"{self.count:,} done"
        text = f"{self._prefix()}{done} in {duration(elapsed)}"
        if elapsed > 0 and self.count:
            text += f", {self.count / elapsed:,.1f}/s"
        self._line(text)

    def render(self, now: float | None = None) -> str:
        """The current progress line."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 0.0)
        rate = self.count / elapsed if elapsed > 0 else 0.0
        if self.total is None:
            text = f"{self._prefix()}{self.count:,} done"
        else:
            text = f"{self._prefix()}{self.count:,}/{self.total:,} ({self._percent()}%)"
        if rate:
            text += f" {rate:,.1f}/s"
            if self.total is not None and self.count < self.total:
                text += f", eta {duration((self.total - self.count) / rate)}"
        return text

    def _prefix(self) -> str:
        return f"{self.label}: " if self.label else ""

    def _percent(self) -> int:
        if not self.total:
            return 100 if self.total == 0 else 0
        if self.count > self.total:  # the total was an estimate: not done until closed
            return 99
        return int(self.count * 100 / self.total)

    def _percent_step(self) -> int | None:
        if not self.total or self._every_percent <= 0:
            return None
        return int(min(self.count, self.total) * 100 / self.total // self._every_percent)

    def _line(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        if stream is not sys.stdout:
            # Lines printed to stdout before this one come first, also when both
            # streams go to the same pipe (stdout is block-buffered there).
            with contextlib.suppress(AttributeError, ValueError):  # closed or replaced
                sys.stdout.flush()
        stream.write(text + "\n")
        stream.flush()


def line_progress(
    stream: TextIO | None = None, *, every_percent: float = 10.0, every_seconds: float = 5.0
) -> ProgressBars:
    """The default :data:`ProgressBars`: :class:`LineProgress` lines on ``stream`` (stderr)."""

    def bars(total: int | None, label: str) -> ProgressBar:
        return LineProgress(
            total, label, stream=stream, every_percent=every_percent, every_seconds=every_seconds
        )

    return bars


def track(iterable: Iterable[T], bar: ProgressBar) -> Iterator[T]:
    """Yield from ``iterable``, advancing ``bar`` after each item; close it at the end.

    A loop left early (``break``, an exception) closes it as stopped. Keep a
    reference to ``bar`` to close it yourself when the loop body raises: a
    suspended generator runs its cleanup only once it is garbage collected.
    """
    stopped = True  # unless the iterable runs to its end
    try:
        for item in iterable:
            yield item
            bar.advance()
        stopped = False
    finally:
        bar.close(stopped=stopped)


def duration(seconds: float) -> str:
    """``4.2s``, ``3m07s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
