"""Plain Python values ⇄ DynamoDB's typed wire format, refusing what DynamoDB cannot store.

The one place that bridges the two. Writing is checked against DynamoDB's own
rules before any request, so bad input gets a typed error instead of a raw
``decimal.Rounded``, ``RecursionError`` or a ``ValidationException`` that looks
retryable:

- numbers (``int``, ``float``, ``Decimal``) must be finite, have at most 38
  significant digits and a magnitude in 1e-130 .. 9.99…e125
  (:class:`~cqrs.core.errors.InvalidNumberError`); trailing zeros are not
  significant, so ``10**40`` is stored exactly as ``1E+40``;
- maps need string keys, nesting stops at 32 levels, sets must be non-empty and
  of one kind (strings, numbers or bytes), and only ``None``, ``bool``, ``str``,
  numbers, bytes, mappings, lists/tuples and sets are values
  (:class:`~cqrs.core.errors.InvalidValueError`).

Reading turns numbers into ``int`` when integral, else ``float``: services want
plain numbers, not ``Decimal``. Top-level ``None`` values are dropped on write
(the attribute is absent), nested ones are stored as ``NULL``.

A stream image decoded with :func:`decode_image` keeps its wire form, and
:func:`written_form` reuses it as is when it is already exactly what writing its
decoded values would produce (numbers in the text the codec writes, sets sorted):
the history item goes from the stream to ``BatchWriteItem`` without a round trip
through Python values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeAlias

from ..core.errors import InvalidNumberError, InvalidValueError
from ..core.items import PROJECTED_FIELDS, CommandItem, StoredValue
from ..core.items import Item as Item
from ..core.keys import add_version

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: An item in wire form: attribute names to DynamoDB attribute values (``{"S": "x"}``).
WireItem: TypeAlias = "dict[str, AttributeValueTypeDef]"

MAX_DEPTH = 32  # DynamoDB's nesting limit for maps and lists
MAX_DIGITS = 38
MIN_EXPONENT = -130  # adjusted exponent: 1e-130 is the smallest magnitude
MAX_EXPONENT = 125  # 9.99…e125 is the largest
MAX_ITEM_BYTES = 400 * 1024
_MAX_NUMBER_TEXT = 200  # characters; DynamoDB's are at most ~40


def to_wire_item(item: Mapping[str, object], what: str = "item") -> WireItem:
    """Plain item → DynamoDB attribute-value map. ``None`` values are dropped."""
    out: WireItem = {}
    for name, value in item.items():
        if not isinstance(name, str) or not name:
            raise InvalidValueError(
                f"{what}: attribute names must be non-empty strings, got {name!r}"
            )
        if value is not None:
            out[name] = _wire(value, f"{what}.{name}", 1)
    return out


def to_wire(value: object, what: str = "value") -> AttributeValueTypeDef:
    """One plain value → one DynamoDB attribute value (``None`` → ``NULL``)."""
    return _wire(value, what, 1)


def from_wire_item(wire: Mapping[str, object]) -> Item:
    """DynamoDB attribute-value map (from boto3, or DynamoDB JSON from a Lambda event)
    → plain item (numbers as int or float). Input that is not DynamoDB JSON raises
    ``TypeError``, ``ValueError`` or :class:`~cqrs.core.errors.InvalidValueError`."""
    return {k: from_wire(v) for k, v in wire.items()}


def from_wire(value: object) -> StoredValue:
    """One DynamoDB attribute value → plain value."""
    if not isinstance(value, Mapping):
        raise TypeError(f"a DynamoDB attribute value is a map, got {type(value).__name__}")
    ((kind, inner),) = value.items()
    if kind == "S":
        return _text(inner)
    if kind == "N":
        return _number_from_wire(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_wire(v) for k, v in _map(inner).items()}
    if kind == "L":
        return [from_wire(v) for v in _list(inner)]
    if kind == "B":
        return _bytes(inner)
    if kind == "SS":
        return {_text(s) for s in _list(inner)}
    if kind == "NS":
        return {_number_from_wire(n) for n in _list(inner)}
    if kind == "BS":
        return {_bytes(b) for b in _list(inner)}
    raise InvalidValueError(f"unknown DynamoDB type {kind!r}")


class WireImage(dict[str, Any]):
    """A decoded item (a plain ``dict``) that keeps the DynamoDB JSON it was decoded from."""

    __slots__ = ("wire",)
    wire: Mapping[str, Any]


def decode_image(wire: Mapping[str, object]) -> Item:
    """:func:`from_wire_item` for a stream image: the result also keeps ``wire``
    (:class:`WireImage`), for :func:`written_form`. Never mutate the result."""
    image = WireImage((k, from_wire(v)) for k, v in wire.items())
    image.wire = wire
    return image


def written_form(wire: Mapping[str, Any], names: Iterable[str]) -> WireItem | None:
    """The attributes ``names`` of a wire item (absent and top-level ``NULL`` ones left
    out), provided each is exactly what :func:`to_wire_item` writes for its decoded value;
    else ``None`` (then decode and write: the text of a number such as ``1.50`` or
    ``1e+21``, or an unsorted set, would be stored differently)."""
    out: WireItem = {}
    for name in names:
        value = wire.get(name)
        if value is None or "NULL" in value:
            continue
        if not _canonical(value, 1):
            return None
        out[name] = value
    return out


def history_form(command: CommandItem, what: str = "history item") -> WireItem:
    """The history item of ``command`` in wire form (its size not checked). A command
    decoded from a stream image keeps the image (``command.wire``): its projected
    attributes go as they came when :func:`written_form` allows, else the fields are
    encoded (and checked) again. Either way the same item is stored."""
    projected = written_form(command.wire, PROJECTED_FIELDS) if command.wire else None
    if projected is None:
        return to_wire_item(command.history_item().to_item(), what)
    keys = (command.pk, add_version(command.base_sk, command.version), command.pk, command.sk)
    head: WireItem = {n: {"S": v} for n, v in zip(("pk", "sk", "cpk", "csk"), keys, strict=True)}
    return {**head, **projected}


#: An integer as :func:`number_text` writes it (at most 38 digits); a plain decimal.
_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,37}")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]*[1-9]")


def _canonical(value: Mapping[str, Any], depth: int) -> bool:
    """Whether writing the decoded ``value`` gives back exactly ``value``."""
    if len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind == "S":
        return isinstance(inner, str)
    if kind == "N":
        return isinstance(inner, str) and _canonical_number(inner)
    if kind == "BOOL":
        return isinstance(inner, bool)
    if kind == "NULL":
        return inner is True
    if kind == "B":
        return isinstance(inner, bytes)
    if depth > MAX_DEPTH:
        return False
    if kind == "M":
        return isinstance(inner, Mapping) and all(
            isinstance(v, Mapping) and _canonical(v, depth + 1) for v in inner.values()
        )
    if kind == "L":
        return isinstance(inner, list) and all(
            isinstance(v, Mapping) and _canonical(v, depth + 1) for v in inner
        )
    if kind in ("SS", "BS"):  # written sorted, without duplicates
        kind_of = str if kind == "SS" else bytes
        return (
            isinstance(inner, list)
            and bool(inner)
            and all(isinstance(v, kind_of) for v in inner)
            and all(a < b for a, b in pairwise(inner))
        )
    if kind == "NS":  # written as sorted text; distinct numbers only
        return (
            isinstance(inner, list)
            and bool(inner)
            and all(isinstance(v, str) and _canonical_number(v) for v in inner)
            and all(a < b for a, b in pairwise(inner))
        )
    return False


def _canonical_number(text: str) -> bool:
    if _INTEGER.fullmatch(text) is not None:
        return True
    # Decimals are read back as float: text beyond a float's precision would change.
    return _DECIMAL.fullmatch(text) is not None and number_text(float(text)) == text


def item_size(wire: Mapping[str, AttributeValueTypeDef]) -> int:
    """An upper-bound estimate of DynamoDB's item size in bytes (names + values)."""
    return sum(len(k.encode()) + _value_size(v) for k, v in wire.items())


# -- writing ----------------------------------------------------------------------------------


def _wire(value: object, what: str, depth: int) -> AttributeValueTypeDef:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": number_text(value, what)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        _check_depth(what, depth)
        out: dict[str, AttributeValueTypeDef] = {}
        for key, inner in value.items():
            if not isinstance(key, str):
                raise InvalidValueError(
                    f"{what}: map keys must be strings, got {key!r} ({type(key).__name__})"
                )
            out[key] = _wire(inner, f"{what}.{key}", depth + 1)
        return {"M": out}
    if isinstance(value, (list, tuple)):
        _check_depth(what, depth)
        return {"L": [_wire(inner, f"{what}[{i}]", depth + 1) for i, inner in enumerate(value)]}
    if isinstance(value, Set):
        return _set(value, what)
    raise InvalidValueError(
        f"{what}: {type(value).__name__} cannot be stored in DynamoDB "
        "(use str, int, float, Decimal, bool, bytes, None, dict, list or set)"
    )


def _check_depth(what: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidValueError(f"{what}: nested deeper than DynamoDB's {MAX_DEPTH} levels")


def _set(value: Set[object], what: str) -> AttributeValueTypeDef:
    if not value:
        raise InvalidValueError(
            f"{what}: DynamoDB cannot store an empty set (use a list or omit it)"
        )
    strings = [v for v in value if isinstance(v, str)]
    if len(strings) == len(value):
        return {"SS": sorted(strings)}
    numbers = [v for v in value if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)]
    if len(numbers) == len(value):
        return {"NS": sorted({number_text(v, what) for v in numbers})}
    blobs = [bytes(v) for v in value if isinstance(v, (bytes, bytearray))]
    if len(blobs) == len(value):
        return {"BS": sorted(blobs)}
    kinds = sorted({type(v).__name__ for v in value})
    raise InvalidValueError(
        f"{what}: a set must hold only strings, only numbers or only bytes, got {kinds}"
    )


def number_text(value: int | float | Decimal, what: str = "number") -> str:
    """The exact DynamoDB text of a number, or :class:`InvalidNumberError`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidNumberError(f"{what}: {value!r} cannot be stored (not a finite number)")
        value = Decimal(repr(value))  # the shortest text that round-trips: 0.1, not 0.1000…
    elif isinstance(value, int):
        if value == 0:
            return "0"
        value = Decimal(value)
    if not value.is_finite():
        raise InvalidNumberError(f"{what}: {value} cannot be stored (not a finite number)")
    if value.is_zero():
        return "0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    while len(digits) > 1 and digits[-1] == 0:  # trailing zeros are not significant
        digits, exponent = digits[:-1], exponent + 1
    if len(digits) > MAX_DIGITS:
        raise InvalidNumberError(
            f"{what}: {value} has {len(digits)} significant digits; DynamoDB keeps {MAX_DIGITS}"
        )
    adjusted = exponent + len(digits) - 1
    if not MIN_EXPONENT <= adjusted <= MAX_EXPONENT:
        raise InvalidNumberError(
            f"{what}: {value} is outside DynamoDB's range (1e-130 to 9.99e125 in magnitude)"
        )
    normal = Decimal((sign, digits, exponent))
    plain = format(normal, "f")  # "1500", "0.001": engines parse plain integers for ADD
    # ... unless the plain text is long (10**40 stays "1E+40", 1e-130 "1E-130", which
    # every reader, boto3's deserializer included, parses within 38 digits).
    if (
        len(plain) <= MAX_DIGITS + 2
        and len(plain.lstrip("-").replace(".", "").lstrip("0")) <= MAX_DIGITS
    ):
        return plain
    return str(normal)


# -- reading ----------------------------------------------------------------------------------


def _number_from_wire(text: object) -> int | float:
    text = _text(text)
    if len(text) > _MAX_NUMBER_TEXT:  # DynamoDB's own numbers are short: refuse, don't grind
        raise InvalidNumberError(f"{text[:20]}…: not a DynamoDB number ({len(text)} characters)")
    if "." not in text and "e" not in text and "E" not in text:
        return int(text)
    number = Decimal(text)
    if (
        number.is_finite()
        and not number.is_zero()
        and not (MIN_EXPONENT <= number.adjusted() <= MAX_EXPONENT)
    ):
        raise InvalidNumberError(f"{text}: outside DynamoDB's range (1e-130 to 9.99e125)")
    return int(number) if number == number.to_integral_value() else float(number)


def _text(inner: object) -> str:
    if not isinstance(inner, str):
        raise TypeError(f"expected a string in DynamoDB JSON, got {type(inner).__name__}")
    return inner


def _bytes(inner: object) -> bytes:
    if not isinstance(inner, (bytes, bytearray)):
        raise TypeError(f"expected bytes in DynamoDB JSON, got {type(inner).__name__}")
    return bytes(inner)


def _map(inner: object) -> Mapping[str, object]:
    if not isinstance(inner, Mapping):
        raise TypeError(f"expected a map in DynamoDB JSON, got {type(inner).__name__}")
    return inner


def _list(inner: object) -> Sequence[object]:
    if not isinstance(inner, Sequence) or isinstance(inner, (str, bytes)):
        raise TypeError(f"expected a list in DynamoDB JSON, got {type(inner).__name__}")
    return inner


def _value_size(v: AttributeValueTypeDef) -> int:
    if "S" in v:
        return len(v["S"].encode())
    if "N" in v:
        return len(v["N"]) // 2 + 2
    if "B" in v:
        return len(v["B"])
    if "BOOL" in v or "NULL" in v:
        return 1
    if "M" in v:
        return 3 + sum(len(k.encode()) + 1 + _value_size(x) for k, x in v["M"].items())
    if "L" in v:
        return 3 + sum(1 + _value_size(x) for x in v["L"])
    if "SS" in v:
        return sum(len(x.encode()) for x in v["SS"])
    if "NS" in v:
        return sum(len(x.encode()) for x in v["NS"])
    if "BS" in v:
        return sum(len(x) for x in v["BS"])
    return sum(len(str(x)) for x in v.values())
