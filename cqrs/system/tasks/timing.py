"""The task service's clock and lease length, shared by the parts that need the time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class Timing:
    """``clock`` (epoch seconds) and ``lease_seconds``; both may be changed at any time."""

    clock: Callable[[], float]
    lease_seconds: float

    def now_ms(self) -> int:
        """The clock's time in epoch milliseconds."""
        return int(self.clock() * 1000)

    def now_iso(self) -> str:
        """The clock's time as stored (ISO 8601, UTC, milliseconds)."""
        return iso(self.now_ms())

    def lease_from(self, now_ms: int) -> int:
        """The lease (epoch ms) of an attempt claimed or renewed at ``now_ms``."""
        return now_ms + int(self.lease_seconds * 1000)

    def lease_expired(self, lease_until: int | None) -> bool:
        """Whether a task's lease (epoch ms) ran out, or it has none."""
        return lease_until is None or lease_until < self.now_ms()


def iso(ms: int) -> str:
    """Epoch milliseconds as stored: ISO 8601, UTC, millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
