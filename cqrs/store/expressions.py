"""Condition, key-condition, filter, projection and update expressions, built from named parts.

Callers say what they mean (``absent("pk")``, ``equals("version", 3)``,
``Update().set(name="x").remove("ttl")``); rendering allocates the ``#n``/``:v``
placeholders once per request, so parts combine without name clashes and no
module writes expression strings by hand::

    condition = absent("pk") | equals("version", 2)
    update = Update().set(version=3).set_if_absent(createdAt=now).add(count=1)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from .codec import to_wire

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        DeleteItemInputTypeDef,
        PutItemInputTypeDef,
        QueryInputPaginateTypeDef,
        QueryInputTypeDef,
        ScanInputPaginateTypeDef,
        UpdateItemInputTypeDef,
        UpdateTypeDef,
    )

    #: A request that takes expressions with names and values.
    Request = TypeVar(
        "Request",
        PutItemInputTypeDef,
        DeleteItemInputTypeDef,
        UpdateItemInputTypeDef,
        UpdateTypeDef,
        QueryInputTypeDef,
        QueryInputPaginateTypeDef,
        ScanInputPaginateTypeDef,
    )


class Placeholders:
    """Allocates ``#nN`` for attribute names and ``:vN`` for values of one request."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValueTypeDef] = {}
        self._by_name: dict[str, str] = {}

    def name(self, attribute: str) -> str:
        """The placeholder of an attribute name (one per name, reused)."""
        found = self._by_name.get(attribute)
        if found is None:
            found = self._by_name[attribute] = f"#n{len(self._by_name)}"
            self.names[found] = attribute
        return found

    def value(self, value: object, what: str = "value") -> str:
        """The placeholder of a value (serialized and checked now)."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_wire(value, what)
        return placeholder

    def fill(self, request: Request) -> Request:
        """``request`` with ``ExpressionAttributeNames`` / ``Values`` (omitted when empty)."""
        if self.names:
            request["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            request["ExpressionAttributeValues"] = dict(self.values)
        return request


# -- conditions -----------------------------------------------------------------------------


class Condition(ABC):
    """A boolean expression over an item; combine with ``&`` and ``|``."""

    @abstractmethod
    def render(self, p: Placeholders) -> str:
        """The expression text, allocating placeholders in ``p``."""

    def __and__(self, other: Condition) -> Condition:
        return _Join("AND", (self, other))

    def __or__(self, other: Condition) -> Condition:
        return _Join("OR", (self, other))


@dataclass(frozen=True)
class _Join(Condition):
    operator: str
    parts: tuple[Condition, ...]

    def render(self, p: Placeholders) -> str:
        return "(" + f" {self.operator} ".join(c.render(p) for c in self.parts) + ")"


@dataclass(frozen=True)
class _Function(Condition):
    function: str
    attribute: str

    def render(self, p: Placeholders) -> str:
        return f"{self.function}({p.name(self.attribute)})"


@dataclass(frozen=True)
class _Compare(Condition):
    attribute: str
    operator: str
    value: object

    def render(self, p: Placeholders) -> str:
        return f"{p.name(self.attribute)} {self.operator} {p.value(self.value, self.attribute)}"


@dataclass(frozen=True)
class _BeginsWith(Condition):
    attribute: str
    prefix: str

    def render(self, p: Placeholders) -> str:
        return f"begins_with({p.name(self.attribute)}, {p.value(self.prefix, self.attribute)})"


@dataclass(frozen=True)
class _In(Condition):
    attribute: str
    values: tuple[object, ...]

    def render(self, p: Placeholders) -> str:
        placeholders = ", ".join(p.value(v, self.attribute) for v in self.values)
        return f"{p.name(self.attribute)} IN ({placeholders})"


def absent(attribute: str) -> Condition:
    """``attribute_not_exists(attribute)``: for a key attribute, "the item does not exist"."""
    return _Function("attribute_not_exists", attribute)


def present(attribute: str) -> Condition:
    """``attribute_exists(attribute)``."""
    return _Function("attribute_exists", attribute)


def equals(attribute: str, value: object) -> Condition:
    """``attribute = value``."""
    return _Compare(attribute, "=", value)


def at_most(attribute: str, value: object) -> Condition:
    """``attribute <= value``."""
    return _Compare(attribute, "<=", value)


def begins_with(attribute: str, prefix: str) -> Condition:
    """``begins_with(attribute, prefix)`` (also a sort-key condition)."""
    return _BeginsWith(attribute, prefix)


def one_of(attribute: str, values: Iterable[object]) -> Condition:
    """``attribute IN (values…)``."""
    return _In(attribute, tuple(values))


def all_of(*conditions: Condition) -> Condition:
    """Every condition holds (``AND``)."""
    return conditions[0] if len(conditions) == 1 else _Join("AND", conditions)


def item_absent() -> Condition:
    """The item does not exist yet (every cqrs table is keyed ``pk``/``sk``)."""
    return absent("pk")


def projection(attributes: Sequence[str], p: Placeholders) -> str:
    """A ``ProjectionExpression`` of attribute names."""
    return ", ".join(p.name(a) for a in attributes)


# -- updates -----------------------------------------------------------------------------------


@dataclass
class Update:
    """An ``UpdateExpression``: ``SET`` (plain or ``if_not_exists``), ``ADD`` and ``REMOVE``.

    Methods chain: ``Update().set(status="QUEUED").add(attempts=1).remove("leaseUntil")``.
    """

    _set: dict[str, object] = field(default_factory=dict)
    _set_if_absent: dict[str, object] = field(default_factory=dict)
    _add: dict[str, object] = field(default_factory=dict)
    _remove: list[str] = field(default_factory=list)

    def set(self, values: Mapping[str, object] | None = None, /, **more: object) -> Update:
        """``SET name = value`` for each pair."""
        self._set.update(values or {}, **more)
        return self

    def set_if_absent(
        self, values: Mapping[str, object] | None = None, /, **more: object
    ) -> Update:
        """``SET name = if_not_exists(name, value)``: the first writer's value wins."""
        self._set_if_absent.update(values or {}, **more)
        return self

    def add(self, values: Mapping[str, object] | None = None, /, **more: object) -> Update:
        """``ADD name value``: numbers are incremented (from 0 when absent)."""
        self._add.update(values or {}, **more)
        return self

    def remove(self, *attributes: str) -> Update:
        """``REMOVE name`` for each attribute."""
        self._remove.extend(a for a in attributes if a not in self._remove)
        return self

    def __bool__(self) -> bool:
        return bool(self._set or self._set_if_absent or self._add or self._remove)

    def render(self, p: Placeholders) -> str:
        """The expression text, allocating placeholders in ``p``."""
        sets = [f"{p.name(k)} = {p.value(v, k)}" for k, v in self._set.items()]
        sets += [
            f"{p.name(k)} = if_not_exists({p.name(k)}, {p.value(v, k)})"
            for k, v in self._set_if_absent.items()
        ]
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if self._add:
            clauses.append(
                "ADD " + ", ".join(f"{p.name(k)} {p.value(v, k)}" for k, v in self._add.items())
            )
        if self._remove:
            clauses.append("REMOVE " + ", ".join(p.name(a) for a in self._remove))
        return " ".join(clauses)
