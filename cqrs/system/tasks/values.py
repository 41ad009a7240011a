"""Inputs, progress and results as values DynamoDB can store, refused before any write.

A value is taken as it is when DynamoDB has a type for it (``None``, ``bool``,
``str``, numbers, bytes, maps, lists, sets); a pydantic model is dumped (JSON
mode) and any other leaf (a date, a UUID, an enum …) becomes its JSON form.
Then the store's codec checks what DynamoDB would refuse (NaN, ±infinity, more
than 38 digits, out-of-range magnitudes, map keys that are not strings, nesting
deeper than 32 levels, empty or mixed sets): every refusal is an
:class:`~cqrs.core.errors.InvalidTaskInputError` with the codec's error as ``cause``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal
from typing import TypeAlias

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ...core.errors import InvalidTaskInputError, InvalidValueError
from ...store import to_wire
from ...store.codec import MAX_DEPTH

#: A user's value as a task stores it (input, sub-task input, progress, result): JSON,
#: plus what DynamoDB also stores (``Decimal``, bytes and sets of one kind). Reading
#: gives numbers back as ``int`` or ``float``.
JsonValue: TypeAlias = (
    "bool | int | float | Decimal | str | bytes | bytearray | list[JsonValue]"
    " | dict[str, JsonValue] | set[str | int | float | Decimal | bytes] | None"
)

_STORED_AS_IS = (type(None), bool, str, int, float, Decimal, bytes, bytearray)


def storable(value: object, what: str, model: type[BaseModel] | None = None) -> JsonValue:
    """``value`` as a plain value DynamoDB can store, validated by ``model`` if given.

    Raises :class:`~cqrs.core.errors.InvalidTaskInputError` naming ``what``.
    """
    try:
        plain = _plain(value, what, 1)
        to_wire(plain, what)
    except PydanticSerializationError as exc:
        raise InvalidTaskInputError(f"{what} is not JSON-able: {exc}", cause=exc) from exc
    except InvalidValueError as exc:
        raise InvalidTaskInputError(f"{what} cannot be stored: {exc}", cause=exc) from exc
    if model is not None:
        try:
            model.model_validate(plain)
        except ValidationError as exc:
            raise InvalidTaskInputError(
                f"{what} does not validate as {model.__name__}: {exc}", cause=exc
            ) from exc
    return plain


def _plain(value: object, what: str, depth: int) -> JsonValue:
    """Containers rebuilt, models dumped, other leaves made JSON-able; no values changed."""
    if isinstance(value, _STORED_AS_IS):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping | list | tuple) and depth > MAX_DEPTH:
        raise InvalidValueError(f"{what}: nested deeper than DynamoDB's {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        return {k: _plain(v, f"{what}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{what}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Set):
        return set(value)  # the codec checks that it is non-empty and of one kind
    leaf: JsonValue = to_jsonable_python(value)
    return leaf
