"""ULIDs: 48 bits of Unix time in ms and 80 random bits, as 26 Crockford base32 characters.

The text sorts by time, which is what task sort keys and the S3 keys of large
attributes need. It is a dozen lines; a
dependency for it would be one more package in every Lambda bundle and cold start,
and one more supply-chain risk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80


def encode_ulid(ms: int, randomness: int) -> str:
    """The 26-character ULID of a millisecond timestamp and 80 random bits."""
    if not 0 <= ms < 1 << 48 or not 0 <= randomness < 1 << _RANDOM_BITS:
        raise ValueError("ULID time must fit 48 bits and randomness 80 bits")
    value = (ms << _RANDOM_BITS) | randomness
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class UlidFactory:
    """Monotonic ULIDs: within one millisecond (or if the clock steps back) the previous
    randomness is incremented, so ULIDs from one factory always sort in creation order."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = (-1, 0)

    def __call__(self) -> str:
        """A new ULID, greater than every ULID this factory returned before."""
        with self._lock:
            ms = int(self._clock() * 1000)
            last_ms, last_random = self._last
            if ms > last_ms:
                randomness = int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
            elif last_random + 1 < 1 << _RANDOM_BITS:
                ms, randomness = last_ms, last_random + 1
            else:
                ms, randomness = last_ms + 1, 0
            self._last = (ms, randomness)
        return encode_ulid(ms, randomness)
