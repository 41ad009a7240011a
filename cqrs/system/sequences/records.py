"""The stored counter item: a typed record inside, camelCase attributes only at the store.

One item per counter and period. :meth:`CounterItem.advance` is the one
``UpdateItem`` that issues numbers; :meth:`CounterItem.from_item` and
:meth:`CounterItem.to_item` convert at the gateway. The stored attribute names are
:class:`Attr`'s (MBC-compatible camelCase), spelled nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ...core.errors import InvalidSequenceItemError
from ...core.items import read_record
from ...store import Item, Update
from .models import RotateBy


class Attr:
    """The stored attribute names of a counter item."""

    PK: Final = "pk"
    SK: Final = "sk"
    SEQ: Final = "seq"
    TENANT_CODE: Final = "tenantCode"
    TYPE_CODE: Final = "typeCode"
    CODES: Final = "codes"
    ROTATE_BY: Final = "rotateBy"
    ROTATE_VALUE: Final = "rotateValue"
    CREATED_AT: Final = "createdAt"
    UPDATED_AT: Final = "updatedAt"
    UPDATED_BY: Final = "updatedBy"


@dataclass(frozen=True)
class CounterItem:
    """One counter in one period, as stored. ``seq`` is the last number issued (0: none);
    ``created_at`` is the first issue, ``updated_at`` / ``updated_by`` the last."""

    pk: str
    sk: str
    tenant_code: str
    type_code: str
    codes: tuple[str, ...]
    rotate_by: RotateBy
    rotate_value: str
    seq: int = 0
    created_at: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    @property
    def key(self) -> dict[str, str]:
        """The table key of the counter."""
        return {Attr.PK: self.pk, Attr.SK: self.sk}

    def advance(self, count: int, *, at: str, by: str | None) -> Update:
        """The update issuing ``count`` numbers at ``at`` (ISO 8601) for user ``by``:
        ``ADD seq`` (an absent counter starts from 0), the descriptive attributes and
        ``updatedAt``/``updatedBy`` set, ``createdAt`` only by the first issue."""
        return (
            Update()
            .add({Attr.SEQ: count})
            .set(
                {
                    Attr.TENANT_CODE: self.tenant_code,
                    Attr.TYPE_CODE: self.type_code,
                    Attr.CODES: list(self.codes),
                    Attr.ROTATE_BY: self.rotate_by.value,
                    Attr.ROTATE_VALUE: self.rotate_value,
                    Attr.UPDATED_AT: at,
                    Attr.UPDATED_BY: by,
                }
            )
            .set_if_absent({Attr.CREATED_AT: at})
        )

    @classmethod
    def from_item(cls, item: Mapping[str, object]) -> CounterItem:
        """A stored counter item as a record.

        Raises :class:`~cqrs.core.errors.InvalidSequenceItemError` if an attribute is
        missing or of the wrong type.
        """
        return read_record(item, _record, InvalidSequenceItemError, "counter item")

    def to_item(self) -> Item:
        """The item as stored (absent attributes left out)."""
        item: Item = {
            Attr.PK: self.pk,
            Attr.SK: self.sk,
            Attr.SEQ: self.seq,
            Attr.TENANT_CODE: self.tenant_code,
            Attr.TYPE_CODE: self.type_code,
            Attr.CODES: list(self.codes),
            Attr.ROTATE_BY: self.rotate_by.value,
            Attr.ROTATE_VALUE: self.rotate_value,
            Attr.CREATED_AT: self.created_at,
            Attr.UPDATED_AT: self.updated_at,
            Attr.UPDATED_BY: self.updated_by,
        }
        return {name: value for name, value in item.items() if value is not None}


def _record(item: Mapping[str, object]) -> CounterItem:
    codes = item.get(Attr.CODES, [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise TypeError(f"{Attr.CODES} must be a list of strings, got {codes!r}")
    return CounterItem(
        pk=_text(item, Attr.PK),
        sk=_text(item, Attr.SK),
        tenant_code=_text(item, Attr.TENANT_CODE),
        type_code=_text(item, Attr.TYPE_CODE),
        codes=tuple(codes),
        rotate_by=RotateBy(_text(item, Attr.ROTATE_BY)),
        rotate_value=_text(item, Attr.ROTATE_VALUE),
        seq=seq_of(item),
        created_at=_optional_text(item, Attr.CREATED_AT),
        updated_at=_optional_text(item, Attr.UPDATED_AT),
        updated_by=_optional_text(item, Attr.UPDATED_BY),
    )


def seq_of(item: Mapping[str, object] | None) -> int:
    """The ``seq`` of a counter item, or of a read of that attribute alone (0: none)."""
    value = None if item is None else item.get(Attr.SEQ)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSequenceItemError(f"{Attr.SEQ} must be an integer, got {value!r}")
    return value


def _text(item: Mapping[str, object], name: str) -> str:
    value = item[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


def _optional_text(item: Mapping[str, object], name: str) -> str | None:
    return None if item.get(name) is None else _text(item, name)
