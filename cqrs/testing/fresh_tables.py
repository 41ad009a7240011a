"""Table administration for a table prefix no table carries yet (a fresh test prefix)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..store.tables import TableAdmin

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class FreshTables(TableAdmin):
    """A :class:`~cqrs.store.TableAdmin` for a prefix no table carries yet.

    ``migrate`` asks whether each table exists before creating it: under a fresh prefix
    none does, so the answer needs no request. With ``wait=False`` (engines that create
    tables ACTIVE at once: moto, in process or as a server) a new table is not waited for.
    """

    def __init__(self, client: DynamoDBClient, prefix: str, *, wait: bool = True) -> None:
        super().__init__(client)
        self._prefix = prefix
        self._wait = wait
        self._created: set[str] = set()

    def describe(self, name: str) -> Mapping[str, Any] | None:
        """``None`` for a table of the fresh prefix not created yet, else ``DescribeTable``."""
        if name.startswith(self._prefix) and name not in self._created:
            return None
        return super().describe(name)

    def create(self, spec: Mapping[str, Any]) -> None:
        """``CreateTable``, then wait until ACTIVE (unless told not to)."""
        self._created.add(spec["TableName"])  # from now on describe asks the engine
        super().create(spec)

    def wait_active(self, name: str, timeout: float = 300) -> None:
        """Wait until the table and its indexes are ACTIVE (unless told not to)."""
        if self._wait:
            super().wait_active(name, timeout)
