"""What changed between two versions of an entity, path by path (``cqrs show``)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

ChangeKind = Literal["added", "removed", "changed"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE_LIMIT = 60


@dataclass(frozen=True)
class Change:
    """One difference between two versions, at a dotted path like ``attributes.lines[0].qty``.

    ``before`` is ``None`` for ``added``, ``after`` is ``None`` for ``removed``.
    """

    path: str
    kind: ChangeKind
    before: object = None
    after: object = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {format_value(self.after)}"
        if self.kind == "removed":
            return f"- {self.path}: {format_value(self.before)}"
        return f"{self.path}: {format_value(self.before)} → {format_value(self.after)}"


def diff_versions(
    before: Mapping[str, object], after: Mapping[str, object], *, ignore: Collection[str] = ()
) -> list[Change]:
    """What changed from ``before`` to ``after``: nested mappings by key, lists by position.

    ``ignore`` names top-level keys to leave out (e.g. ``version``, ``updatedAt``).
    Values of different types always differ (``True`` is not ``1``); ``1`` equals
    ``1.0`` (DynamoDB numbers).
    """
    kept_before = {k: v for k, v in before.items() if k not in ignore}
    kept_after = {k: v for k, v in after.items() if k not in ignore}
    return list(_diff_mapping("", kept_before, kept_after))


def format_value(value: object, limit: int | None = _VALUE_LIMIT) -> str:
    """``value`` as JSON, cut to ``limit`` characters (ending with ``…``)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _diff(path: str, before: object, after: object) -> Iterator[Change]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        yield from _diff_mapping(path, before, after)
    elif isinstance(before, list) and isinstance(after, list):
        yield from _diff_list(path, before, after)
    elif not _same(before, after):
        yield Change(path, "changed", before, after)


def _diff_mapping(
    path: str, before: Mapping[str, object], after: Mapping[str, object]
) -> Iterator[Change]:
    for key in [*before, *(k for k in after if k not in before)]:
        sub = _key_path(path, str(key))
        if key not in after:
            yield Change(sub, "removed", before=before[key])
        elif key not in before:
            yield Change(sub, "added", after=after[key])
        else:
            yield from _diff(sub, before[key], after[key])


def _diff_list(path: str, before: list[object], after: list[object]) -> Iterator[Change]:
    for i in range(max(len(before), len(after))):
        sub = f"{path}[{i}]"
        if i >= len(after):
            yield Change(sub, "removed", before=before[i])
        elif i >= len(before):
            yield Change(sub, "added", after=after[i])
        else:
            yield from _diff(sub, before[i], after[i])


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    return bool(a == b)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key_path(path: str, key: str) -> str:
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
