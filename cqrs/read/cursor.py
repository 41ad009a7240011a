"""Opaque pagination cursors: DynamoDB's ``LastEvaluatedKey``, checked on the way back."""

from __future__ import annotations

import base64
import json
from typing import Any

from ..core.errors import InterfaceError


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """DynamoDB's LastEvaluatedKey → an opaque, URL-safe cursor."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(
    cursor: str, pk: str | None = None, sk_prefix: str | None = None
) -> dict[str, Any]:
    """The inverse of :func:`encode_cursor`; a tampered cursor is an :class:`InterfaceError`.

    The cursor must be a data-table key (``pk`` and ``sk`` strings); given ``pk``
    (and ``sk_prefix``), it must also lie inside that query, so a cursor can't
    be replayed against another partition (another tenant).
    """
    try:
        key: Any = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}") from exc
    valid = (
        isinstance(key, dict)
        and set(key) == {"pk", "sk"}
        and all(
            isinstance(v, dict) and isinstance(v.get("S"), str) and len(v) == 1
            for v in key.values()
        )
    )
    if valid and pk is not None:
        valid = key["pk"]["S"] == pk and key["sk"]["S"].startswith(sk_prefix or "")
    if not valid:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}")
    return dict(key)
