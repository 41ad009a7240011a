"""What the gateway returns besides items: conflicts, writes, cancelled transactions, pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .codec import Item
from .expressions import Condition, Update

if TYPE_CHECKING:
    from .codec import WireItem

#: A table key (``pk``/``sk``), plain values (checked by the codec).
Key = Mapping[str, object]


@dataclass(frozen=True)
class Conflict:
    """A condition failed. ``current`` is the item as DynamoDB found it, or ``None`` when it
    returned none (the item is absent, or the engine does not return it: DynamoDB Local)."""

    current: Item | None


@dataclass(frozen=True)
class Written:
    """A write applied. ``attributes`` are the values asked for with ``returns`` (else ``{}``)."""

    attributes: Item = field(default_factory=dict)


@dataclass(frozen=True)
class CancellationReason:
    """Why one operation of a cancelled transaction failed (``code`` ``"None"``: it did not)."""

    code: str
    message: str = ""
    item: Item | None = None

    @property
    def condition_failed(self) -> bool:
        """This operation's condition failed."""
        return self.code == "ConditionalCheckFailed"


@dataclass(frozen=True)
class Cancelled:
    """A transaction was cancelled because a condition failed; one reason per operation."""

    reasons: tuple[CancellationReason, ...]

    def failed(self, index: int) -> bool:
        """Whether the condition of operation ``index`` failed."""
        return index < len(self.reasons) and self.reasons[index].condition_failed


@dataclass(frozen=True)
class TxUpdate:
    """An update inside :meth:`Store.transact_write`."""

    table: str
    key: Key
    update: Update
    condition: Condition | None = None


@dataclass(frozen=True)
class Page:
    """One page of a query: its items and the key to continue after (``None``: the end)."""

    items: list[Item]
    last_key: WireItem | None
