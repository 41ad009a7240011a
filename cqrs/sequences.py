"""Atomic, formatted, rotating ID counters per tenant (business numbers like ``ORD-2026-000123``).

Storage (the ``sequences`` system table)
----------------------------------------
One item per counter and period::

    pk = "SEQ#<tenantCode>"
    sk = "<typeCode>[#<code1>…#<code5>]#<rotateValue>"

The rotate value is part of the sort key, so a new period (year, fiscal year,
month, day) starts a new item and therefore a new counter at 1. Rotate values
are MBC's: ``none``, ``2026`` (yearly), ``2026`` (fiscal-yearly: the calendar
year the fiscal year starts in), ``202601`` (monthly), ``20260131`` (daily).
Yearly and fiscal-yearly values look alike, so do not use both rotations with
the same type code and codes.

Every number (and every block of :meth:`SequenceService.reserve`) costs exactly
**one** ``UpdateItem``::

    SET seq = if_not_exists(seq, :0) + :n, tenantCode = …, updatedAt = …
    ReturnValues = UPDATED_NEW

There is no read-modify-write, so concurrent callers never get the same number
and the numbers of a period have no gaps (unless a caller drops one it got).
Alongside ``seq`` the item stores ``tenantCode``, ``typeCode``, ``codes``,
``rotateBy``, ``rotateValue``, ``createdAt`` (first issue), ``updatedAt`` and
``updatedBy``.

Format templates
----------------
A template is text with ``{token}`` or ``{token:width}`` placeholders; write
``{{`` and ``}}`` for literal braces. ``width`` (1-32) zero-pads a numeric token
to at least that many digits; it never truncates. Tokens:

=================  ==========================================================
``{no}``           the counter; ``{no:6}`` → ``000123`` (required in every template)
``{year}``         four-digit year of ``issued_at`` (in the service time zone)
``{yy}``           two-digit year (``2026`` → ``26``)
``{month}``        month, two digits unless a width is given (``{month:1}`` → ``3``)
``{day}``          day of month, two digits unless a width is given
``{fiscal_year}``  the calendar year the fiscal year of ``issued_at`` starts in
``{type}``         the type code
``{code1}``…       the codes passed to the call (``{code1}`` … ``{code5}``)
``{prefix}``       the ``prefix`` argument (empty if not given)
``{postfix}``      the ``postfix`` argument (empty if not given)
=================  ==========================================================

Example: ``"{prefix}ORD-{year}-{no:6}{postfix}"`` → ``ORD-2026-000123``. The
default template is ``"{prefix}{no}{postfix}"``. Unknown tokens, malformed
braces, widths on text tokens, a missing ``{no}``, a ``{codeN}`` without an Nth
code, and a ``prefix``/``postfix`` argument the template does not use all raise
:class:`InvalidSequenceFormatError` before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clients import dynamo_errors
from .errors import ConfigurationError, InterfaceError, InvalidKeyError, TenantMismatchError
from .keys import KEY_SEPARATOR, validate_part
from .models import InvokeContext

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "DEFAULT_FORMAT",
    "MAX_CODES",
    "MAX_RESERVE",
    "SEQUENCE_PK_PREFIX",
    "InvalidSequenceFormatError",
    "RotateBy",
    "SequenceBlock",
    "SequenceFormat",
    "SequenceNumber",
    "SequenceService",
]

SEQUENCE_PK_PREFIX = "SEQ"
DEFAULT_FORMAT = "{prefix}{no}{postfix}"
MAX_CODES = 5
#: Upper bound of ``count`` in :meth:`SequenceService.reserve` (every id is formatted).
MAX_RESERVE = 10_000
_MAX_WIDTH = 32

Clock = Callable[[], datetime]


class InvalidSequenceFormatError(InterfaceError):
    """A sequence format template is malformed or uses an unknown token."""


class RotateBy(StrEnum):
    """When a counter starts again at 1 (MBC's ``RotateByEnum`` values)."""

    NONE = "none"
    YEARLY = "yearly"
    FISCAL_YEARLY = "fiscal_yearly"
    MONTHLY = "monthly"
    DAILY = "daily"


# -- templates ---------------------------------------------------------------------------

_NUMERIC_TOKENS: dict[str, int] = {  # token -> default width
    "no": 1,
    "year": 4,
    "yy": 2,
    "month": 2,
    "day": 2,
    "fiscal_year": 4,
}
_TEXT_TOKENS = frozenset(
    {"type", "prefix", "postfix", *(f"code{i}" for i in range(1, MAX_CODES + 1))}
)
_PLACEHOLDER = re.compile(r"([a-z_][a-z0-9_]*)(?::([0-9]+))?")


@dataclass(frozen=True)
class _Token:
    name: str
    width: int | None


_Segment = str | _Token


@dataclass(frozen=True)
class SequenceFormat:
    """A parsed, validated format template (see the module docstring for the syntax).

    Build one with :meth:`parse`; it raises :class:`InvalidSequenceFormatError`
    for anything malformed.
    """

    template: str
    segments: tuple[_Segment, ...]

    @classmethod
    def parse(cls, template: str) -> SequenceFormat:
        """Parse and validate ``template``."""
        if not isinstance(template, str):
            raise InvalidSequenceFormatError(
                f"format must be a string, got {type(template).__name__}"
            )
        return _parse(template)

    @property
    def tokens(self) -> frozenset[str]:
        """Names of the tokens the template uses."""
        return frozenset(s.name for s in self.segments if isinstance(s, _Token))

    def render(self, values: dict[str, str | int]) -> str:
        """Substitute ``values`` (every used token must be present)."""
        out: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                out.append(segment)
                continue
            value = values[segment.name]
            if isinstance(value, int):
                width = segment.width or _NUMERIC_TOKENS[segment.name]
                out.append(f"{value:0{width}d}")
            else:
                out.append(value)
        return "".join(out)


@lru_cache(maxsize=256)
def _parse(template: str) -> SequenceFormat:
    segments: list[_Segment] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch in "{}" and template.startswith(ch * 2, i):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            raise InvalidSequenceFormatError(
                f"format {template!r}: unmatched '}}' at position {i} (write '}}}}' for a brace)"
            )
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        end = template.find("}", i + 1)
        if end < 0:
            raise InvalidSequenceFormatError(
                f"format {template!r}: unclosed '{{' at position {i} (write '{{{{' for a brace)"
            )
        body = template[i + 1 : end]
        match = _PLACEHOLDER.fullmatch(body)
        if match is None:
            raise InvalidSequenceFormatError(
                f"format {template!r}: bad placeholder {{{body}}} at position {i}; "
                "expected {token} or {token:width}"
            )
        name, width_text = match.group(1), match.group(2)
        if name not in _NUMERIC_TOKENS and name not in _TEXT_TOKENS:
            known = ", ".join(sorted([*_NUMERIC_TOKENS, *_TEXT_TOKENS]))
            raise InvalidSequenceFormatError(
                f"format {template!r}: unknown token {{{name}}} (known: {known})"
            )
        width: int | None = None
        if width_text is not None:
            if name not in _NUMERIC_TOKENS:
                raise InvalidSequenceFormatError(
                    f"format {template!r}: {{{name}}} is text and takes no width"
                )
            width = int(width_text)
            if not 1 <= width <= _MAX_WIDTH:
                raise InvalidSequenceFormatError(
                    f"format {template!r}: width of {{{name}}} must be 1..{_MAX_WIDTH}, got {width}"
                )
        if literal:
            segments.append("".join(literal))
            literal = []
        segments.append(_Token(name, width))
        i = end + 1
    if literal:
        segments.append("".join(literal))
    parsed = SequenceFormat(template, tuple(segments))
    if "no" not in parsed.tokens:
        raise InvalidSequenceFormatError(
            f"format {template!r} has no {{no}} token: every id it makes would be the same"
        )
    return parsed


# -- results -----------------------------------------------------------------------------


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


# -- the service -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    tenant_code: str
    type_code: str
    codes: tuple[str, ...]
    rotate_by: RotateBy
    rotate_value: str
    fiscal_year: int
    issued_at: datetime
    fmt: SequenceFormat
    values: dict[str, str | int]
    pk: str
    sk: str
    user_id: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SequenceService:
    """Issues formatted, rotating sequence numbers from the ``sequences`` table.

    ``time_zone`` (an IANA name or a ``tzinfo``) decides which year, month and
    day a moment belongs to, for rotation and for the date tokens.
    ``fiscal_start_month`` (1-12, default April as in MBC) is the first month
    of a fiscal year. ``clock`` returns the current time (timezone-aware); it
    defaults to the system clock and is overridden per call by ``now``.

    The service keeps no state between calls and is safe to share across threads
    (boto3 clients are thread-safe).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        time_zone: str | tzinfo = "UTC",
        fiscal_start_month: int = 4,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise ConfigurationError("sequences table name must be a non-empty string")
        if isinstance(time_zone, tzinfo):
            self.time_zone: tzinfo = time_zone
        else:
            try:
                self.time_zone = ZoneInfo(time_zone)
            except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"unknown time zone {time_zone!r} for sequences", cause=exc
                ) from exc
        if (
            isinstance(fiscal_start_month, bool)
            or not isinstance(fiscal_start_month, int)
            or not 1 <= fiscal_start_month <= 12
        ):
            raise ConfigurationError(
                f"fiscal_start_month must be an integer 1..12, got {fiscal_start_month!r}"
            )
        self._client = client
        self.table_name = table_name
        self.fiscal_start_month = fiscal_start_month
        self._clock: Clock = clock or _utc_now

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
        context: InvokeContext | None = None,
    ) -> SequenceNumber:
        """Issue the next number of a counter with one ``UpdateItem``.

        The counter is identified by ``tenant_code``, ``type_code``, up to five
        ``codes`` and the period ``now`` falls in under ``rotate_by``. ``fmt`` is
        a template (module docstring; default ``"{prefix}{no}{postfix}"``).

        Raises, before any request: :class:`~cqrs.errors.InvalidKeyError` for an
        empty code or one containing ``#``/``@``,
        :class:`InvalidSequenceFormatError` for a bad template,
        :class:`~cqrs.errors.TenantMismatchError` if ``context`` belongs to another
        tenant, :class:`~cqrs.errors.InterfaceError` for a naive ``now``.
        DynamoDB failures raise :class:`~cqrs.errors.OperationalError`.
        """
        request = self._prepare(
            tenant_code, type_code, rotate_by, fmt, codes, prefix, postfix, now, context
        )
        last = self._increment(request, 1)
        return SequenceNumber(
            tenant_code=request.tenant_code,
            type_code=request.type_code,
            codes=request.codes,
            rotate_by=request.rotate_by,
            rotate_value=request.rotate_value,
            fiscal_year=request.fiscal_year,
            number=last,
            formatted=request.fmt.render({**request.values, "no": last}),
            issued_at=request.issued_at,
            pk=request.pk,
            sk=request.sk,
        )

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
        context: InvokeContext | None = None,
    ) -> SequenceBlock:
        """Issue ``count`` contiguous numbers with one ``UpdateItem``.

        The counter advances by ``count`` atomically, so the block ``first..last``
        is never shared with another caller. ``count`` must be 1..:data:`MAX_RESERVE`
        (else :class:`~cqrs.errors.InterfaceError`, before any request). The other
        arguments and errors are those of :meth:`next`.
        """
        if isinstance(count, bool) or not isinstance(count, int):
            raise InterfaceError(f"count must be an integer, got {count!r}")
        if not 1 <= count <= MAX_RESERVE:
            raise InterfaceError(f"count must be between 1 and {MAX_RESERVE}, got {count}")
        request = self._prepare(
            tenant_code, type_code, rotate_by, fmt, codes, prefix, postfix, now, context
        )
        last = self._increment(request, count)
        first = last - count + 1
        formatted = tuple(
            request.fmt.render({**request.values, "no": number})
            for number in range(first, last + 1)
        )
        return SequenceBlock(
            tenant_code=request.tenant_code,
            type_code=request.type_code,
            codes=request.codes,
            rotate_by=request.rotate_by,
            rotate_value=request.rotate_value,
            fiscal_year=request.fiscal_year,
            first=first,
            last=last,
            formatted=formatted,
            issued_at=request.issued_at,
            pk=request.pk,
            sk=request.sk,
        )

    def current(
        self,
        tenant_code: str,
        type_code: str,
        *,
        rotate_by: RotateBy | str = RotateBy.NONE,
        codes: Sequence[str] = (),
        now: datetime | None = None,
        context: InvokeContext | None = None,
    ) -> int:
        """The last number issued in the period of ``now`` (0 if none); one strongly
        consistent ``GetItem``. For display only: never derive the next number from it.
        """
        tenant_code, type_code, codes_t = self._validate_keys(tenant_code, type_code, codes)
        self._check_tenant(tenant_code, context)
        rotate = _rotate_by(rotate_by)
        issued_at = self._local_time(now)
        pk, sk = self.key(tenant_code, type_code, codes_t, self.rotate_value(rotate, issued_at))
        with dynamo_errors(f"read sequence {pk} / {sk}"):
            response = self._client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                ProjectionExpression="#seq",
                ExpressionAttributeNames={"#seq": "seq"},
                ConsistentRead=True,
            )
        item = response.get("Item") or {}
        seq = item.get("seq", {}).get("N")
        return int(seq) if seq is not None else 0

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
        local = self._to_local(moment)
        return local.year if local.month >= self.fiscal_start_month else local.year - 1

    def rotate_value(self, rotate_by: RotateBy | str, moment: datetime) -> str:
        """The period of ``moment`` under ``rotate_by``, as stored in the sort key."""
        rotate = _rotate_by(rotate_by)
        local = self._to_local(moment)
        if rotate is RotateBy.YEARLY:
            return f"{local.year:04d}"
        if rotate is RotateBy.FISCAL_YEARLY:
            return f"{self.fiscal_year(local):04d}"
        if rotate is RotateBy.MONTHLY:
            return f"{local.year:04d}{local.month:02d}"
        if rotate is RotateBy.DAILY:
            return f"{local.year:04d}{local.month:02d}{local.day:02d}"
        return RotateBy.NONE.value

    # -- internals ---------------------------------------------------------------------

    def _to_local(self, moment: datetime) -> datetime:
        if not isinstance(moment, datetime):
            raise InterfaceError(f"expected a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InterfaceError(
                f"datetime {moment.isoformat()} is naive; pass a timezone-aware datetime"
            )
        return moment.astimezone(self.time_zone)

    def _local_time(self, now: datetime | None) -> datetime:
        return self._to_local(now if now is not None else self._clock())

    @staticmethod
    def _validate_keys(
        tenant_code: str, type_code: str, codes: Sequence[str]
    ) -> tuple[str, str, tuple[str, ...]]:
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
        return tenant_code, type_code, tuple(codes)

    @staticmethod
    def _check_tenant(tenant_code: str, context: InvokeContext | None) -> None:
        if context is not None and context.tenant_code != tenant_code:
            raise TenantMismatchError(tenant_code, context.tenant_code)

    def _prepare(
        self,
        tenant_code: str,
        type_code: str,
        rotate_by: RotateBy | str,
        fmt: str | SequenceFormat | None,
        codes: Sequence[str],
        prefix: str,
        postfix: str,
        now: datetime | None,
        context: InvokeContext | None,
    ) -> _Request:
        tenant_code, type_code, codes_t = self._validate_keys(tenant_code, type_code, codes)
        self._check_tenant(tenant_code, context)
        rotate = _rotate_by(rotate_by)
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
            if token.startswith("code") and int(token[4:]) > len(codes_t):
                raise InvalidSequenceFormatError(
                    f"format {parsed.template!r} uses {{{token}}} but only "
                    f"{len(codes_t)} code(s) were given"
                )
        issued_at = self._local_time(now)
        rotate_value = self.rotate_value(rotate, issued_at)
        fiscal_year = self.fiscal_year(issued_at)
        values: dict[str, str | int] = {
            "year": issued_at.year,
            "yy": issued_at.year % 100,
            "month": issued_at.month,
            "day": issued_at.day,
            "fiscal_year": fiscal_year,
            "type": type_code,
            "prefix": prefix,
            "postfix": postfix,
        }
        values.update({f"code{i}": code for i, code in enumerate(codes_t, start=1)})
        pk, sk = self.key(tenant_code, type_code, codes_t, rotate_value)
        return _Request(
            tenant_code=tenant_code,
            type_code=type_code,
            codes=codes_t,
            rotate_by=rotate,
            rotate_value=rotate_value,
            fiscal_year=fiscal_year,
            issued_at=issued_at,
            fmt=parsed,
            values=values,
            pk=pk,
            sk=sk,
            user_id=context.user_id if context is not None else "system",
        )

    def _increment(self, request: _Request, count: int) -> int:
        """Advance the counter by ``count`` in one UpdateItem; return the new value."""
        # Audit time is the clock's, even when ``now`` back- or post-dates the number.
        updated_at = (
            self._to_local(self._clock()).astimezone(UTC).isoformat(timespec="milliseconds")
        )
        names = {
            "#seq": "seq",
            "#tenantCode": "tenantCode",
            "#typeCode": "typeCode",
            "#codes": "codes",
            "#rotateBy": "rotateBy",
            "#rotateValue": "rotateValue",
            "#createdAt": "createdAt",
            "#updatedAt": "updatedAt",
            "#updatedBy": "updatedBy",
        }
        values: dict[str, Any] = {
            ":zero": {"N": "0"},
            ":n": {"N": str(count)},
            ":tenantCode": {"S": request.tenant_code},
            ":typeCode": {"S": request.type_code},
            ":codes": {"L": [{"S": c} for c in request.codes]},
            ":rotateBy": {"S": request.rotate_by.value},
            ":rotateValue": {"S": request.rotate_value},
            ":now": {"S": updated_at},
            ":updatedBy": {"S": request.user_id},
        }
        expression = (
            "SET #seq = if_not_exists(#seq, :zero) + :n, #tenantCode = :tenantCode, "
            "#typeCode = :typeCode, #codes = :codes, #rotateBy = :rotateBy, "
            "#rotateValue = :rotateValue, #createdAt = if_not_exists(#createdAt, :now), "
            "#updatedAt = :now, #updatedBy = :updatedBy"
        )
        with dynamo_errors(f"issue sequence {request.pk} / {request.sk}"):
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": request.pk}, "sk": {"S": request.sk}},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        return int(response["Attributes"]["seq"]["N"])


def _rotate_by(value: RotateBy | str) -> RotateBy:
    try:
        return RotateBy(value)
    except ValueError as exc:
        choices = ", ".join(r.value for r in RotateBy)
        raise InterfaceError(
            f"unknown rotate_by {value!r} (choose from {choices})", cause=exc
        ) from exc
