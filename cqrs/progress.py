"""A tiny progress printer for long loops (backfills), written to stderr.

```python
for row in progress(rows, total=1000, label="order priority"):
    ...
```

On a terminal one line is rewritten in place (at most ten times a second);
otherwise (CI logs, pipes) a line is printed every ``every_percent`` percent of
``total``, or every ``every_seconds`` seconds when the total is unknown or the
loop is slow. A final line with the count, the elapsed time and the rate is
always printed. No dependency beyond the standard library.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TextIO, TypeVar

T = TypeVar("T")

_TTY_INTERVAL = 0.1  # seconds between rewrites of the terminal line


class ProgressPrinter:
    """Counts work done and prints it: ``label: 350/1,000 (35%) 120.5/s, eta 5s``.

    ``total`` may be ``None`` (unknown) or an estimate: a count beyond it is
    shown as is, with the percentage held at 99%.
    ``tty`` forces (or suppresses) the rewrite-in-place mode; by default it
    follows ``stream.isatty()``. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        total: int | None = None,
        label: str = "",
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        every_percent: float = 10.0,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total if total is None else max(int(total), 0)
        self.label = label
        self.count = 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = tty if tty is not None else _isatty(self._stream)
        self._every_percent = every_percent
        self._every_seconds = every_seconds
        self._clock = clock
        self._started = clock()
        self._last_print = self._started
        self._last_percent_step = 0
        self._closed = False
        self._width = 0  # length of the last terminal line, to blank leftovers

    # -- counting --------------------------------------------------------------

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more items done; print if it is time to."""
        self.count += n
        now = self._clock()
        if self._tty:
            if now - self._last_print >= _TTY_INTERVAL:
                self._rewrite(self.render(now))
                self._last_print = now
            return
        step = self._percent_step()
        due_by_percent = step is not None and step > self._last_percent_step
        due_by_time = now - self._last_print >= self._every_seconds
        if due_by_percent or due_by_time:
            self._line(self.render(now))
            self._last_print = now
            if step is not None:
                self._last_percent_step = step

    def close(self, *, stopped: bool = False) -> None:
        """Print the final line (once); ``stopped`` says the loop ended early (an error)."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        elapsed = now - self._started
        done = f"stopped after {self.count:,}" if stopped else f"{self.count:,} done"
        text = f"{self._prefix()}{done} in {_duration(elapsed)}"
        if elapsed > 0 and self.count:
            text += f", {self.count / elapsed:,.1f}/s"
        if self._tty:
            self._rewrite(text)
            self._stream.write("\n")
            self._stream.flush()
        else:
            self._line(text)

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.close(stopped=exc_type is not None)

    # -- rendering -------------------------------------------------------------

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
                text += f", eta {_duration((self.total - self.count) / rate)}"
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

    def _flush_stdout(self) -> None:
        # Lines printed to stdout before this one should come first, also when both
        # streams go to the same pipe (stdout is block-buffered there).
        if self._stream is not sys.stdout:
            with contextlib.suppress(AttributeError, ValueError):  # closed or replaced stdout
                sys.stdout.flush()

    def _rewrite(self, text: str) -> None:
        self._flush_stdout()
        pad = " " * max(self._width - len(text), 0)
        self._stream.write("\r" + text + pad)
        self._stream.flush()
        self._width = len(text)

    def _line(self, text: str) -> None:
        self._flush_stdout()
        self._stream.write(text + "\n")
        self._stream.flush()


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    label: str = "",
    *,
    stream: TextIO | None = None,
    tty: bool | None = None,
    every_percent: float = 10.0,
    every_seconds: float = 5.0,
) -> Iterator[T]:
    """Yield from ``iterable``, counting each item once the loop body is done with it.

    ``total`` defaults to ``len(iterable)`` when it has one. The final line is
    printed when the loop ends, breaks or raises.
    """
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    printer = ProgressPrinter(
        total,
        label,
        stream=stream,
        tty=tty,
        every_percent=every_percent,
        every_seconds=every_seconds,
    )
    return track(iterable, printer)


def track(iterable: Iterable[T], printer: ProgressPrinter) -> Iterator[T]:
    """Yield from ``iterable``, advancing ``printer`` after each item; close it at the end.

    A loop left early (``break``, an exception) prints ``stopped after N``. Keep a
    reference to ``printer`` to close it yourself when the loop body raises: a
    suspended generator runs its cleanup only once it is garbage collected.
    """
    stopped = True  # unless the iterable runs to its end
    try:
        for item in iterable:
            yield item
            printer.advance()
        stopped = False
    finally:
        printer.close(stopped=stopped)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or odd streams
        return False


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
