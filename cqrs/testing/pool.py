"""Recycled in-process moto tables: a fresh prefix and empty tables without ``CreateTable``.

Creating a prefix's tables costs a request per table and one per TTL. In process the
test session can do better: a set of tables handed back unchanged in shape (key schema,
indexes, stream, TTL, tags, backups) is emptied, items and stream records, and when it
is leased again it is renamed to a fresh prefix. To the next test it is a new set of
empty tables: its own prefix, table and stream ARNs, no items, no stream records, the
shape ``migrate`` gives. A set whose shape changed (a test altered or deleted a table)
is never reused; a reset of moto (a test starting a mock of its own) retires every set.

This reaches into moto's in-process backend (``moto.dynamodb.models``: the tables of a
backend, a table's items, name, ARN and stream shard) and drops moto's record of every
object it made (``moto.core.model_instances``), which moto itself drops on a reset. If
moto's internals are not as expected the pool turns itself off, and every lease creates
its tables.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("cqrs.testing.pool")

#: Parts of a description that change with the items, not with the shape.
_VOLATILE = ("ItemCount", "TableSizeBytes", "IndexSizeBytes")


@dataclass
class TableSet:
    """The moto tables of one prefix, by name without the prefix, and their shapes."""

    prefix: str
    backend: Any
    tables: dict[str, Any]
    shapes: dict[str, str] = field(default_factory=dict)

    def names(self) -> dict[str, Any]:
        """Physical name → moto table."""
        return {self.prefix + suffix: table for suffix, table in self.tables.items()}


def _shape(table: Any) -> str:
    """What a test could change about a table, as text: its description less the item
    counts, its TTL, tags and backups."""
    described = dict(table.describe(base_key="Table")["Table"])
    for key in _VOLATILE:
        described.pop(key, None)
    return repr((described, table.ttl, table.tags, table.continuous_backups))


def _backends() -> Iterable[Any]:
    from moto.dynamodb.models import dynamodb_backends

    return [backend for _, _, backend in dynamodb_backends.iter_backends()]


def _forget_instances() -> None:
    """Drop moto's list of every model object it ever made (items, stream records…): kept
    only for its data dump, it would otherwise grow all session long."""
    from moto.core.model_instances import reset_model_data

    reset_model_data()


class TablePool:
    """Free table sets per key (a ``tables/`` folder's definitions). Thread-safe."""

    def __init__(self) -> None:
        self._free: dict[str, list[TableSet]] = {}
        self._lock = threading.Lock()
        self.enabled = True
        self.reused = 0  # leases served by a recycled set

    def _off(self, what: str) -> None:
        logger.warning("table pool off: %s failed; every lease creates its tables", what)
        self.enabled = False
        self._free.clear()

    def take(self, key: str, prefix: str) -> TableSet | None:
        """A free set of ``key``, renamed to ``prefix``; ``None`` if there is none alive."""
        with self._lock:
            free = self._free.get(key, [])
            while self.enabled and free:
                held = free.pop()
                try:
                    if self._alive(held):
                        self._rename(held, prefix)
                        self.reused += 1
                        return held
                except Exception:
                    self._off("renaming a table set")
            return None

    def hold(self, prefix: str, names: Iterable[str]) -> TableSet | None:
        """The moto tables of ``prefix`` (``names``: their physical names), shapes noted;
        ``None`` if they are not all in one in-process backend."""
        if not self.enabled:
            return None
        wanted = list(names)
        try:
            for backend in _backends():
                if all(n in backend.tables for n in wanted):
                    tables = {n[len(prefix) :]: backend.tables[n] for n in wanted}
                    held = TableSet(prefix, backend, tables)
                    held.shapes = {s: _shape(t) for s, t in tables.items()}
                    return held
        except Exception:
            self._off("finding the tables of a prefix")
        return None

    def give_back(self, key: str, held: TableSet | None) -> None:
        """Empty the set and keep it for ``key``, if its shape is unchanged."""
        if held is None:
            return
        with self._lock:
            if not self.enabled:
                return
            try:
                if not self._alive(held) or any(
                    _shape(t) != held.shapes[s] for s, t in held.tables.items()
                ):
                    return  # changed or gone: never reused
                for table in held.tables.values():
                    table.items.clear()
                    if table.stream_shard is not None:
                        table.stream_shard.items.clear()
                self._free.setdefault(key, []).append(held)
                _forget_instances()
            except Exception:
                self._off("emptying a table set")

    @staticmethod
    def _alive(held: TableSet) -> bool:
        """Every table is still in a live backend under its name (moto was not reset)."""
        if not any(b is held.backend for b in _backends()):
            return False
        current = held.backend.tables
        return all(current.get(name) is table for name, table in held.names().items())

    @staticmethod
    def _rename(held: TableSet, prefix: str) -> None:
        tables = held.backend.tables
        for suffix, table in held.tables.items():
            name = prefix + suffix
            del tables[held.prefix + suffix]
            table.name = name
            table.table_arn = table._generate_arn(name)
            tables[name] = table
        held.prefix = prefix
        held.shapes = {s: _shape(t) for s, t in held.tables.items()}
