"""Opaque pagination cursors: DynamoDB's ``LastEvaluatedKey``, checked on the way back."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from ..core.errors import InterfaceError

if TYPE_CHECKING:
    from ..store.codec import WireItem


def encode_cursor(key: WireItem | None) -> str | None:
    """DynamoDB's LastEvaluatedKey → an opaque, URL-safe cursor."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, pk: str | None = None, sk_prefix: str | None = None) -> WireItem:
    """The inverse of :func:`encode_cursor`; a tampered cursor is an :class:`InterfaceError`.

    The cursor must be a data-table key (``pk`` and ``sk`` strings); given ``pk``
    (and ``sk_prefix``), it must also lie inside that query, so a cursor can't
    be replayed against another partition (another tenant).
    """
    try:
        key: object = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}") from exc
    parts = key if isinstance(key, dict) and set(key) == {"pk", "sk"} else {}
    key_pk, key_sk = _text(parts.get("pk")), _text(parts.get("sk"))
    outside = pk is not None and (key_pk != pk or not (key_sk or "").startswith(sk_prefix or ""))
    if key_pk is None or key_sk is None or outside:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}")
    return {"pk": {"S": key_pk}, "sk": {"S": key_sk}}


def _text(value: object) -> str | None:
    """The string of a DynamoDB JSON ``{"S": ...}`` value, else ``None``."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("S"), str):
        return str(value["S"])
    return None
