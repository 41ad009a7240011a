"""What sequences hand out: one number, or a contiguous block; and when counters rotate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ...core.errors import InterfaceError


class RotateBy(StrEnum):
    """When a counter starts again at 1 (MBC's ``RotateByEnum`` values)."""

    NONE = "none"
    YEARLY = "yearly"
    FISCAL_YEARLY = "fiscal_yearly"
    MONTHLY = "monthly"
    DAILY = "daily"


def parse_rotate_by(value: RotateBy | str) -> RotateBy:
    """``value`` as a :class:`RotateBy`; an unknown one is an :class:`InterfaceError`."""
    try:
        return RotateBy(value)
    except ValueError as exc:
        choices = ", ".join(r.value for r in RotateBy)
        raise InterfaceError(
            f"unknown rotate_by {value!r} (choose from {choices})", cause=exc
        ) from exc


@dataclass(frozen=True)
class SequenceNumber:
    """One issued number.

    ``number`` is the counter value (1 for the first of a period); ``formatted``
    is it rendered with the template; ``issued_at`` is the issue time in the
    service's time zone (it decided ``rotate_value`` and the date tokens).
    """

    tenant_code: str
    type_code: str
    codes: tuple[str, ...]
    rotate_by: RotateBy
    rotate_value: str
    fiscal_year: int
    number: int
    formatted: str
    issued_at: datetime
    pk: str
    sk: str


@dataclass(frozen=True)
class SequenceBlock:
    """A contiguous block of numbers ``first..last`` issued by one request.

    ``formatted[i]`` is the id of number ``first + i``. Iterating yields one
    :class:`SequenceNumber` per number.
    """

    tenant_code: str
    type_code: str
    codes: tuple[str, ...]
    rotate_by: RotateBy
    rotate_value: str
    fiscal_year: int
    first: int
    last: int
    formatted: tuple[str, ...]
    issued_at: datetime
    pk: str
    sk: str

    @property
    def count(self) -> int:
        """How many numbers the block holds."""
        return self.last - self.first + 1

    @property
    def numbers(self) -> range:
        """The numbers ``first..last``."""
        return range(self.first, self.last + 1)

    @property
    def first_formatted(self) -> str:
        """The formatted id of ``first``."""
        return self.formatted[0]

    @property
    def last_formatted(self) -> str:
        """The formatted id of ``last``."""
        return self.formatted[-1]

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[SequenceNumber]:
        for number, formatted in zip(self.numbers, self.formatted, strict=True):
            yield SequenceNumber(
                tenant_code=self.tenant_code,
                type_code=self.type_code,
                codes=self.codes,
                rotate_by=self.rotate_by,
                rotate_value=self.rotate_value,
                fiscal_year=self.fiscal_year,
                number=number,
                formatted=formatted,
                issued_at=self.issued_at,
                pk=self.pk,
                sk=self.sk,
            )
