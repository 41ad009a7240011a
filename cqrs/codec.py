"""Conversion between plain Python values and DynamoDB's typed wire format.

boto3's serializer refuses floats and its deserializer returns ``Decimal``;
services want plain ``int``/``float``. This module is the one place that
bridges the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]
WireItem = dict[str, Any]


def _to_wire_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: _to_wire_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_wire_value(v) for v in value]
    return value


def _from_wire_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_wire_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire_value(v) for v in value]
    if isinstance(value, set):
        return {_from_wire_value(v) for v in value}
    return value


def serialize(item: Mapping[str, Any]) -> WireItem:
    """Plain item → DynamoDB attribute-value map. ``None`` values are dropped."""
    return {k: _serializer.serialize(_to_wire_value(v)) for k, v in item.items() if v is not None}


def serialize_value(value: Any) -> Any:
    """One plain value → DynamoDB attribute value."""
    return _serializer.serialize(_to_wire_value(value))


def deserialize(wire: Mapping[str, Any]) -> Item:
    """DynamoDB attribute-value map → plain item (numbers as int or float)."""
    return {k: _from_wire_value(_deserializer.deserialize(v)) for k, v in wire.items()}


def item_size(wire: Mapping[str, Any]) -> int:
    """An upper-bound estimate of DynamoDB's item size in bytes (names + values)."""
    return sum(len(k.encode()) + _value_size(v) for k, v in wire.items())


def _value_size(v: Mapping[str, Any]) -> int:
    ((kind, inner),) = v.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(x) for k, x in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(x).encode()) for x in inner)
    return len(str(inner))
