"""The sequence service (``app.sequences``): one ``UpdateItem`` per number or block."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ...core.context import Scope
from ...core.errors import (
    ConfigurationError,
    InterfaceError,
    InvalidKeyError,
    InvalidSequenceFormatError,
)
from ...core.keys import KEY_SEPARATOR, check_tenant, validate_part
from ...store import Conflict, Store
from .formats import DEFAULT_FORMAT, MAX_CODES, SequenceFormat
from .models import RotateBy, SequenceBlock, SequenceNumber, parse_rotate_by
from .periods import Calendar
from .records import Attr, CounterItem, seq_of

SEQUENCE_PK_PREFIX = "SEQ"
#: Upper bound of ``count`` in :meth:`SequenceService.reserve` (every id is formatted).
MAX_RESERVE = 10_000

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class _Counter:
    """One counter in one period, as a call names it (validated, tenant checked): its
    stored item, and the issue time and fiscal year that decided the period."""

    item: CounterItem
    fiscal_year: int
    issued_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SequenceService:
    """Issues formatted, rotating sequence numbers from the ``sequences`` table.

    ``time_zone`` (an IANA name or a ``tzinfo``) decides which year, month and
    day a moment belongs to, for rotation and for the date tokens.
    ``fiscal_start_month`` (1-12, default April as in MBC) is the first month
    of a fiscal year. ``clock`` returns the current time (timezone-aware); it
    defaults to the system clock and is overridden per call by ``now``.

    Every call names a tenant and takes ``context``: the tenant's
    :class:`~cqrs.core.context.InvokeContext`, or :data:`~cqrs.core.context.SYSTEM` for trusted
    code (``updatedBy`` is then ``system``). The service keeps no state between
    calls and is safe to share across threads.
    """

    def __init__(
        self,
        store: Store,
        table_name: str,
        *,
        time_zone: str | tzinfo = "UTC",
        fiscal_start_month: int = 4,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise ConfigurationError("sequences table name must be a non-empty string")
        self._calendar = Calendar(time_zone, fiscal_start_month)
        self._store = store
        self.table_name = table_name
        self._clock: Clock = clock or _utc_now

    @property
    def time_zone(self) -> tzinfo:
        """The time zone that decides periods and date tokens."""
        return self._calendar.time_zone

    @property
    def fiscal_start_month(self) -> int:
        """The first month (1-12) of a fiscal year."""
        return self._calendar.fiscal_start_month

    # -- public API --------------------------------------------------------------------

    def next(
        self,
        tenant_code: str,
        type_code: str,
        *,
        rotate_by: RotateBy | str = RotateBy.NONE,
        fmt: str | SequenceFormat | None = None,
        codes: Sequence[str] = (),
        prefix: str = "",
        postfix: str = "",
        now: datetime | None = None,
        context: Scope,
    ) -> SequenceNumber:
        """Issue the next number of a counter with one ``UpdateItem``.

        The counter is identified by ``tenant_code``, ``type_code``, up to five
        ``codes`` and the period ``now`` falls in under ``rotate_by``. ``fmt`` is
        a template (:mod:`cqrs.system.sequences`; default ``"{prefix}{no}{postfix}"``).

        Raises, before any request: :class:`~cqrs.core.errors.InvalidKeyError` for a
        tenant code, type code or code that breaks the key rules (empty, only
        whitespace, control characters, ``#``/``@``),
        :class:`InvalidSequenceFormatError` for a bad template,
        :class:`~cqrs.core.errors.MissingContextError` without a context,
        :class:`~cqrs.core.errors.TenantMismatchError` if ``context`` belongs to another
        tenant, :class:`~cqrs.core.errors.InterfaceError` for a naive ``now``.
        DynamoDB failures raise :class:`~cqrs.core.errors.OperationalError`.
        """
        counter = self._counter(tenant_code, type_code, codes, rotate_by, now, context)
        template = _template(fmt, prefix, postfix, len(counter.item.codes))
        [number] = self._issue(counter, 1, template, prefix, postfix, context)
        return number

    def reserve(
        self,
        tenant_code: str,
        type_code: str,
        *,
        count: int,
        rotate_by: RotateBy | str = RotateBy.NONE,
        fmt: str | SequenceFormat | None = None,
        codes: Sequence[str] = (),
        prefix: str = "",
        postfix: str = "",
        now: datetime | None = None,
        context: Scope,
    ) -> SequenceBlock:
        """Issue ``count`` contiguous numbers with one ``UpdateItem``.

        The counter advances by ``count`` atomically, so the block ``first..last``
        is never shared with another caller. ``count`` must be 1..:data:`MAX_RESERVE`
        (else :class:`~cqrs.core.errors.InterfaceError`, before any request). The other
        arguments and errors are those of :meth:`next`.
        """
        if isinstance(count, bool) or not isinstance(count, int):
            raise InterfaceError(f"count must be an integer, got {count!r}")
        if not 1 <= count <= MAX_RESERVE:
            raise InterfaceError(f"count must be between 1 and {MAX_RESERVE}, got {count}")
        counter = self._counter(tenant_code, type_code, codes, rotate_by, now, context)
        template = _template(fmt, prefix, postfix, len(counter.item.codes))
        return self._issue(counter, count, template, prefix, postfix, context)

    def current(
        self,
        tenant_code: str,
        type_code: str,
        *,
        rotate_by: RotateBy | str = RotateBy.NONE,
        codes: Sequence[str] = (),
        now: datetime | None = None,
        context: Scope,
    ) -> int:
        """The last number issued in the period of ``now`` (0 if none); one strongly
        consistent ``GetItem``. For display only: never derive the next number from it.
        """
        counter = self._counter(tenant_code, type_code, codes, rotate_by, now, context)
        key = counter.item.key
        return seq_of(
            self._store.get(self.table_name, key, consistent=True, attributes=(Attr.SEQ,))
        )

    # -- key and period helpers --------------------------------------------------------

    @staticmethod
    def key(
        tenant_code: str, type_code: str, codes: Sequence[str], rotate_value: str
    ) -> tuple[str, str]:
        """The ``(pk, sk)`` of a counter (parts are not validated here)."""
        pk = f"{SEQUENCE_PK_PREFIX}{KEY_SEPARATOR}{tenant_code}"
        sk = KEY_SEPARATOR.join((type_code, *codes, rotate_value))
        return pk, sk

    def fiscal_year(self, moment: datetime) -> int:
        """The calendar year the fiscal year of ``moment`` (local time) starts in."""
        return self._calendar.fiscal_year(moment)

    def rotate_value(self, rotate_by: RotateBy | str, moment: datetime) -> str:
        """The period of ``moment`` under ``rotate_by``, as stored in the sort key."""
        return self._calendar.rotate_value(rotate_by, moment)

    # -- internals ---------------------------------------------------------------------

    def _counter(
        self,
        tenant_code: str,
        type_code: str,
        codes: Sequence[str],
        rotate_by: RotateBy | str,
        now: datetime | None,
        context: Scope,
    ) -> _Counter:
        """The counter a call names, after checking its keys and the caller's tenant."""
        codes_t = _validate_keys(tenant_code, type_code, codes)
        tenant_code = check_tenant(tenant_code, context, is_pk=False)  # lowercased, as MBC
        rotate = parse_rotate_by(rotate_by)
        issued_at = self._calendar.local(now if now is not None else self._clock())
        rotate_value = self._calendar.rotate_value(rotate, issued_at)
        pk, sk = self.key(tenant_code, type_code, codes_t, rotate_value)
        item = CounterItem(pk, sk, tenant_code, type_code, codes_t, rotate, rotate_value)
        return _Counter(item, self._calendar.fiscal_year(issued_at), issued_at)

    def _issue(
        self,
        counter: _Counter,
        count: int,
        template: SequenceFormat,
        prefix: str,
        postfix: str,
        context: Scope,
    ) -> SequenceBlock:
        """Advance the counter by ``count``; the block of numbers it issued, formatted."""
        last = self._increment(counter, count, context)
        first = last - count + 1
        values = _values(counter, prefix, postfix)
        formatted = tuple(template.render({**values, "no": n}) for n in range(first, last + 1))
        item = counter.item
        return SequenceBlock(
            tenant_code=item.tenant_code,
            type_code=item.type_code,
            codes=item.codes,
            rotate_by=item.rotate_by,
            rotate_value=item.rotate_value,
            fiscal_year=counter.fiscal_year,
            first=first,
            last=last,
            formatted=formatted,
            issued_at=counter.issued_at,
            pk=item.pk,
            sk=item.sk,
        )

    def _increment(self, counter: _Counter, count: int, context: Scope) -> int:
        """Advance the counter by ``count`` in one ``UpdateItem``; return the new value."""
        # Audit time is the clock's, even when ``now`` back- or post-dates the number.
        updated_at = self._calendar.local(self._clock()).astimezone(UTC)
        stamp = updated_at.isoformat(timespec="milliseconds")
        update = counter.item.advance(count, at=stamp, by=context.user_id)
        key = counter.item.key
        result = self._store.update(self.table_name, key, update, returns="ALL_NEW")
        if isinstance(result, Conflict):  # pragma: no cover - the update has no condition
            raise AssertionError("an unconditional update cannot conflict")
        return CounterItem.from_item(result.attributes).seq


# -- module helpers --------------------------------------------------------------------------


def _validate_keys(tenant_code: str, type_code: str, codes: Sequence[str]) -> tuple[str, ...]:
    validate_part("tenant code", tenant_code)
    validate_part("type code", type_code)
    if isinstance(codes, str | bytes) or not isinstance(codes, Sequence):
        raise InvalidKeyError(
            f"codes must be a sequence of strings such as ('A', 'B'), got {codes!r}"
        )
    if len(codes) > MAX_CODES:
        raise InvalidKeyError(f"at most {MAX_CODES} codes are allowed, got {len(codes)}")
    for i, code in enumerate(codes, start=1):
        validate_part(f"code{i}", code)
    return tuple(codes)


def _template(
    fmt: str | SequenceFormat | None, prefix: str, postfix: str, code_count: int
) -> SequenceFormat:
    """The parsed template, checked against the arguments it will be rendered with."""
    parsed = (
        fmt
        if isinstance(fmt, SequenceFormat)
        else SequenceFormat.parse(DEFAULT_FORMAT if fmt is None else fmt)
    )
    for what, value in (("prefix", prefix), ("postfix", postfix)):
        if not isinstance(value, str):
            raise InterfaceError(f"{what} must be a string, got {type(value).__name__}")
        if value and what not in parsed.tokens:
            raise InvalidSequenceFormatError(
                f"{what} {value!r} given but format {parsed.template!r} has no {{{what}}}"
            )
    for token in sorted(parsed.tokens):
        if token.startswith("code") and int(token[4:]) > code_count:
            raise InvalidSequenceFormatError(
                f"format {parsed.template!r} uses {{{token}}} but only "
                f"{code_count} code(s) were given"
            )
    return parsed


def _values(counter: _Counter, prefix: str, postfix: str) -> dict[str, str | int]:
    """The values of every token but ``{no}``."""
    issued_at, item = counter.issued_at, counter.item
    values: dict[str, str | int] = {
        "year": issued_at.year,
        "yy": issued_at.year % 100,
        "month": issued_at.month,
        "day": issued_at.day,
        "fiscal_year": counter.fiscal_year,
        "type": item.type_code,
        "prefix": prefix,
        "postfix": postfix,
    }
    values.update({f"code{i}": code for i, code in enumerate(item.codes, start=1)})
    return values
