"""Consumed capacity per request: asked of the engine, and computed by DynamoDB's rules.

:class:`CapacityMeter` hooks a boto3 DynamoDB client:

- ``provide-client-params``: adds ``ReturnConsumedCapacity=TOTAL`` to every request
  that takes it (nothing else in the request changes), and notes the items the
  request is about to overwrite, read from the in-process engine (moto's backend,
  no API request);
- ``after-call``: reads ``ConsumedCapacity`` from the response (what the engine
  *reports*), and computes the units DynamoDB would bill from the sizes of the
  items before and after the request (:func:`write_units`, :func:`read_units`).

moto reports placeholders, not DynamoDB's figures (a fixed 1.0 per ``PutItem`` or
``Query`` whatever the size, 0.5 per ``GetItem`` even when strongly consistent,
nothing for ``UpdateItem`` and ``BatchWriteItem``, nothing for a failed conditional
write), so the report shows the computed units and the reported ones apart.

The rules (DynamoDB developer guide, "Item sizes and formats" and the read/write
capacity unit pages): a write costs 1 unit per KB of the larger of the item's old
and new sizes (at least 1), also when its condition fails (then the existing
item's size); each global secondary index the write changes costs 1 unit per KB of
the index entry (2 writes when an index key changes); a strongly consistent read
costs 1 unit per 4 KB (at least 1, also for a missing item), an eventually
consistent one half of that; ``BatchGetItem`` and ``BatchWriteItem`` charge each
item as its own request; a ``Query`` charges the items it reads, summed then
rounded up to 4 KB; transactions charge twice.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from .engine import REGION

WireItem = dict[str, Any]

KB = 1024
READ_BLOCK = 4 * KB


# -- sizes ------------------------------------------------------------------------------


def item_size(item: WireItem) -> int:
    """DynamoDB's size of an item in attribute-value form (names + values)."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: dict[str, Any]) -> int:
    """Size of one attribute value; lists and maps: 3 bytes + 1 byte per element."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    raise ValueError(f"unknown attribute value type {kind!r}")


def number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed)."""
    digits = text.lstrip("-").replace(".", "").split("e")[0].split("E")[0]
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


# -- units --------------------------------------------------------------------------------


def write_units(size: int) -> int:
    """Write units of one item write of ``size`` bytes (at least 1)."""
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool) -> float:
    """Read units of reading ``size`` bytes in one go (at least one 4 KB block)."""
    blocks = max(1, math.ceil(size / READ_BLOCK))
    return blocks * (1.0 if consistent else 0.5)


@dataclass
class Units:
    """Capacity counted over some requests."""

    read: float = 0.0
    write: float = 0.0
    index_write: float = 0.0  # the part of ``write`` spent on global secondary indexes
    failed_writes: int = 0  # conditional writes whose condition failed (billed)
    reported: float = 0.0  # what the engine said in ConsumedCapacity
    approximate: int = 0  # reads whose filtered-out items could not be sized
    write_by_op: dict[str, float] = field(default_factory=dict)
    read_by_op: dict[str, float] = field(default_factory=dict)

    def __iadd__(self, other: Units) -> Units:
        self.read += other.read
        self.write += other.write
        self.index_write += other.index_write
        self.failed_writes += other.failed_writes
        self.reported += other.reported
        self.approximate += other.approximate
        for op, n in other.write_by_op.items():
            self.write_by_op[op] = self.write_by_op.get(op, 0.0) + n
        for op, n in other.read_by_op.items():
            self.read_by_op[op] = self.read_by_op.get(op, 0.0) + n
        return self


# -- the engine's items -------------------------------------------------------------------


class EngineTables:
    """Items as the in-process engine (moto) holds them, looked up without a request."""

    def __init__(self) -> None:
        self._tables: dict[str, Any] = {}

    def table(self, name: str) -> Any:
        """moto's table object (cached)."""
        if name not in self._tables:
            from moto.dynamodb.models import dynamodb_backends

            for account in list(dynamodb_backends.keys()):
                tables = dynamodb_backends[account][REGION].tables
                if name in tables:
                    self._tables[name] = tables[name]
                    break
            else:
                raise KeyError(f"table {name!r} not found in the engine")
        return self._tables[name]

    def key_of(self, table: str, item: WireItem) -> WireItem:
        """The primary key attributes of ``item``."""
        t = self.table(table)
        names = [t.hash_key_attr] + ([t.range_key_attr] if t.range_key_attr else [])
        return {n: item[n] for n in names}

    def get(self, table: str, key: WireItem) -> WireItem | None:
        """The stored item at ``key`` (attribute-value form), or ``None``."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        t = self.table(table)
        hash_key = DynamoType(key[t.hash_key_attr])
        range_key = DynamoType(key[t.range_key_attr]) if t.range_key_attr else None
        try:
            found = t.get_item(hash_key, range_key)
        except KeyError:
            return None
        return dict(found.to_json()["Attributes"]) if found is not None else None

    def index_write_units(self, table: str, old: WireItem | None, new: WireItem | None) -> int:
        """Units the table's global secondary indexes charge for ``old`` becoming ``new``."""
        t = self.table(table)
        units = 0
        base_keys = [t.hash_key_attr] + ([t.range_key_attr] if t.range_key_attr else [])
        for index in t.global_indexes:
            keys = [k["AttributeName"] for k in index.schema]
            before = _entry(old, keys, base_keys, index.projection)
            after = _entry(new, keys, base_keys, index.projection)
            if before is None and after is None:
                continue
            if before is not None and after is not None:
                if all(old and new and old.get(k) == new.get(k) for k in keys):
                    units += write_units(item_size(after)) if before != after else 0
                else:  # an index key changed: delete the old entry, put the new one
                    units += write_units(item_size(before)) + write_units(item_size(after))
            else:
                units += write_units(item_size(after if after is not None else before or {}))
        return units


def _entry(
    item: WireItem | None, keys: list[str], base_keys: list[str], projection: dict[str, Any]
) -> WireItem | None:
    """The index entry of ``item`` (``None`` when it lacks an index key)."""
    if item is None or not all(k in item for k in keys):
        return None
    kind = (projection or {}).get("ProjectionType", "ALL")
    if kind == "ALL":
        return item
    wanted = {*keys, *base_keys, *((projection or {}).get("NonKeyAttributes") or [])}
    return {k: v for k, v in item.items() if k in wanted}


# -- the meter ----------------------------------------------------------------------------


WRITES = ("PutItem", "UpdateItem", "DeleteItem")


class CapacityMeter:
    """Requests ``ReturnConsumedCapacity=TOTAL`` on some DynamoDB clients and counts units.

    ``units`` accumulates; ``overhead`` is the CPU time its own hooks took (subtract it
    from CPU measured around the requests). Single-threaded use.
    """

    def __init__(self, *clients: Any, engine: EngineTables | None = None) -> None:
        self._clients = clients
        self.engine = engine or EngineTables()
        self.units = Units()
        self.overhead = 0.0

    def __enter__(self) -> CapacityMeter:
        for client in self._clients:
            client.meta.events.register("provide-client-params.dynamodb", self._before)
            client.meta.events.register("after-call.dynamodb", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.meta.events.unregister("provide-client-params.dynamodb", self._before)
            client.meta.events.unregister("after-call.dynamodb", self._after)

    # -- hooks --------------------------------------------------------------------------

    def _before(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        start = time.process_time()
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
            context["bench_capacity"] = (params, self._targets(model.name, params))
        self.overhead += time.process_time() - start

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        start = time.process_time()
        noted = context.pop("bench_capacity", None)
        if noted is not None:
            params, targets = noted
            self.units.reported += _reported(parsed.get("ConsumedCapacity"))
            error = (parsed.get("Error") or {}).get("Code")
            self._count(model.name, params, targets, parsed, error)
        self.overhead += time.process_time() - start

    # -- what a request touches -----------------------------------------------------------

    def _targets(self, op: str, params: dict[str, Any]) -> list[tuple[str, WireItem, Any]]:
        """``(table, key, old item)`` of every item a write request may change."""
        keys: list[tuple[str, WireItem]] = []
        if op == "PutItem":
            keys = [(params["TableName"], self.engine.key_of(params["TableName"], params["Item"]))]
        elif op in ("UpdateItem", "DeleteItem"):
            keys = [(params["TableName"], params["Key"])]
        elif op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for r in requests:
                    if "PutRequest" in r:
                        keys.append((table, self.engine.key_of(table, r["PutRequest"]["Item"])))
                    else:
                        keys.append((table, r["DeleteRequest"]["Key"]))
        elif op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                key = body["Item"] if kind == "Put" else body["Key"]
                keys.append((body["TableName"], self.engine.key_of(body["TableName"], key)))
        return [(table, key, self.engine.get(table, key)) for table, key in keys]

    def _count(
        self,
        op: str,
        params: dict[str, Any],
        targets: list[tuple[str, WireItem, Any]],
        parsed: dict[str, Any],
        error: str | None,
    ) -> None:
        failed = error in ("ConditionalCheckFailedException", "TransactionCanceledException")
        if error and not failed:
            return  # refused (validation, throttling): not billed
        if op in WRITES or op in ("BatchWriteItem", "TransactWriteItems"):
            factor = 2 if op == "TransactWriteItems" else 1
            if failed:
                self.units.failed_writes += 1
            for table, key, old in targets:
                new = old if failed else self.engine.get(table, key)
                units = write_units(max(item_size(old or {}), item_size(new or {})))
                index = 0 if failed else self.engine.index_write_units(table, old, new)
                self.units.write += factor * (units + index)
                self.units.index_write += factor * index
                by_op = self.units.write_by_op
                by_op[op] = by_op.get(op, 0.0) + factor * (units + index)
        else:
            read = self._read_units(op, params, parsed)
            self.units.read += read
            self.units.read_by_op[op] = self.units.read_by_op.get(op, 0.0) + read

    def _read_units(self, op: str, params: dict[str, Any], parsed: dict[str, Any]) -> float:
        if op == "GetItem":
            item = self.engine.get(params["TableName"], params["Key"])
            return read_units(item_size(item or {}), bool(params.get("ConsistentRead")))
        if op == "BatchGetItem":
            total = 0.0
            for table, request in params["RequestItems"].items():
                consistent = bool(request.get("ConsistentRead"))
                for key in request["Keys"]:
                    item = self.engine.get(table, key)
                    total += read_units(item_size(item or {}), consistent)
            return total
        if op in ("Query", "Scan"):
            table = params["TableName"]
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            sizes = [item_size(self.engine.get(table, self.engine.key_of(table, i)) or i)
                     for i in parsed.get("Items", [])]  # fmt: skip
            if parsed.get("ScannedCount", 0) > parsed.get("Count", 0):
                self.units.approximate += 1  # filtered-out items were read too: not sized here
            return read_units(sum(sizes), consistent)
        if op == "TransactGetItems":
            total = 0.0
            for entry in params["TransactItems"]:
                body = entry["Get"]
                item = self.engine.get(body["TableName"], body["Key"])
                total += 2 * read_units(item_size(item or {}), True)
            return total
        return 0.0


def _reported(consumed: Any) -> float:
    if isinstance(consumed, dict):
        return float(consumed.get("CapacityUnits") or 0.0)
    if isinstance(consumed, list):
        return sum(_reported(c) for c in consumed)
    return 0.0
