"""The command log of one entity type: read versions, find the latest, append one.

The latest version is found from the data row's version (consistent read) plus
one ``BatchGetItem`` per window of command versions: versions are contiguous, so
the first hole ends the search, and no version is probed one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.items import CommandItem, stored_int
from ..core.keys import add_version
from ..store import Conflict, Store, item_absent

if TYPE_CHECKING:
    from ..schema.definitions import EntityTables

LATEST_WINDOW = 10  # command versions fetched per BatchGetItem when looking for the latest


class CommandLog:
    """Reads and appends the commands of one entity type (``<entity>-command``)."""

    def __init__(self, store: Store, tables: EntityTables) -> None:
        self._store = store
        self.tables = tables

    def get(self, pk: str, base_sk: str, version: int) -> CommandItem | None:
        """Command ``version`` of an entity (consistent read), or ``None``."""
        key = {"pk": pk, "sk": add_version(base_sk, version)}
        item = self._store.get(self.tables.command, key, consistent=True)
        return CommandItem.from_item(item) if item is not None else None

    def data_version(self, pk: str, base_sk: str) -> int:
        """The version the read model holds (consistent read; 0 without a data row)."""
        row = self._store.get(
            self.tables.data, {"pk": pk, "sk": base_sk}, consistent=True, attributes=("version",)
        )
        return stored_int(row.get("version", 0)) if row else 0

    def latest(self, pk: str, base_sk: str) -> CommandItem | None:
        """The latest command of an entity: from the data version, a window per request."""
        return self.latest_from(pk, base_sk, max(self.data_version(pk, base_sk), 1))

    def latest_from(self, pk: str, base_sk: str, start: int) -> CommandItem | None:
        """The latest of the contiguous versions from ``start`` on (``None`` if ``start``
        itself is absent): one ``BatchGetItem`` per window of versions."""
        latest: CommandItem | None = None
        while True:
            versions = range(start, start + LATEST_WINDOW)
            keys = [{"pk": pk, "sk": add_version(base_sk, v)} for v in versions]
            found = {
                c.version: c
                for c in map(
                    CommandItem.from_item, self._store.batch_get(self.tables.command, keys)
                )
            }
            for v in versions:  # versions are contiguous: stop at the first hole
                if v not in found:
                    return latest
                latest = found[v]
            start += LATEST_WINDOW

    def append(self, command: CommandItem) -> Conflict | None:
        """Write ``command`` unless its version exists (``Conflict``: another writer won)."""
        return self._store.put(self.tables.command, command.to_item(), condition=item_absent())
