"""Deep merge used by partial updates: objects merge, lists and scalars replace."""

from __future__ import annotations

from collections.abc import Mapping

from ..core.items import Attributes, StoredValue


def deep_merge(base: Mapping[str, StoredValue], patch: Mapping[str, StoredValue]) -> Attributes:
    """Return ``base`` with ``patch`` merged in, without mutating either."""
    out = dict(base)
    for key, value in patch.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out
