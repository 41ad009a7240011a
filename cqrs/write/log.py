"""The command log of one entity type: read versions, find the latest, append one.

Commands it returns have their attributes, also when they are kept in S3 (one
``GetObject`` for the command returned, not for every version a search reads).

The latest version is found from the data row's version (consistent read) plus
one ``BatchGetItem`` per window of command versions: versions are contiguous (but for
superseded ones expired by retention), so the first hole after a version found ends the
search, and no version is probed one by one. A publish
based on the latest first tries the data row itself as the base
(:meth:`CommandLog.data_base`): when the read model is caught up that is the latest,
and the window is read only if appending after it conflicts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core.errors import CqrsError, InvalidEventError, TransientError
from ..core.items import SYNC_MODE, SYNC_MODE_SYNC, CommandItem, stored_int
from ..core.keys import add_version
from ..store import Conflict, Store, Update, equals, item_absent
from ..store.codec import WireItem

if TYPE_CHECKING:
    from ..schema.definitions import EntityTables

LATEST_WINDOW = 10  # command versions fetched per BatchGetItem when looking for the latest
HAND_BACK_ATTEMPTS = 3  # tries at handing a failed publish_sync's command to the stream


class CommandLog:
    """Reads and appends the commands of one entity type (``<entity>-command``)."""

    def __init__(self, store: Store, tables: EntityTables) -> None:
        self._store = store
        self.tables = tables

    def get(self, pk: str, base_sk: str, version: int) -> CommandItem | None:
        """Command ``version`` of an entity (consistent read), or ``None``."""
        key = {"pk": pk, "sk": add_version(base_sk, version)}
        item = self._store.get(self.tables.command, key, consistent=True)
        return self._loaded(CommandItem.from_item(item)) if item is not None else None

    def data_version(self, pk: str, base_sk: str) -> int:
        """The version the read model holds (consistent read; 0 without a data row)."""
        row = self._store.get(
            self.tables.data, {"pk": pk, "sk": base_sk}, consistent=True, attributes=("version",)
        )
        return stored_int(row.get("version", 0)) if row else 0

    def data_base(self, pk: str, base_sk: str) -> CommandItem | None:
        """The data row read back as the command it was projected from (consistent read;
        ``None`` without a row). Every field the dirty check compares, the version and the
        creation audit fields are on the row; ``source`` and attributes the framework does
        not model are not, so this serves full publishes, not partial ones."""
        row = self._store.get(self.tables.data, {"pk": pk, "sk": base_sk}, consistent=True)
        if row is None:
            return None
        item = {k: v for k, v in row.items() if k not in ("cpk", "csk")}
        try:
            version = stored_int(row.get("version", 0))
            item["sk"] = add_version(base_sk, version)
            command = CommandItem.from_item(item) if version > 0 else None
        except (InvalidEventError, TypeError, ValueError):
            return None  # not a row this framework projected: let the command log decide
        return self._loaded(command) if command is not None else None

    def latest(self, pk: str, base_sk: str) -> CommandItem | None:
        """The latest command of an entity: from the data version, a window per request."""
        return self.latest_from(pk, base_sk, max(self.data_version(pk, base_sk), 1))

    def latest_version(self, pk: str, base_sk: str) -> int:
        """The latest version of an entity (0: none), its attributes not loaded."""
        start = max(self.data_version(pk, base_sk), 1)
        latest = self._latest_from(pk, base_sk, start)
        return latest.version if latest is not None else 0

    def latest_from(self, pk: str, base_sk: str, start: int) -> CommandItem | None:
        """The latest of the contiguous versions from ``start`` on (``None`` if no version
        of the first window exists): one ``BatchGetItem`` per window of versions. Versions
        are contiguous, except that superseded ones may have expired (retention): holes
        before the first version found are skipped."""
        latest = self._latest_from(pk, base_sk, start)
        return self._loaded(latest) if latest is not None else None

    def _latest_from(self, pk: str, base_sk: str, start: int) -> CommandItem | None:
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
            for v in versions:  # stop at the first hole after a version found
                if v not in found:
                    if latest is None and any(f > v for f in found):
                        continue  # expired: a later version exists
                    return latest
                latest = found[v]
            start += LATEST_WINDOW

    def _loaded(self, command: CommandItem) -> CommandItem:
        return self._store.objects.resolved(command)

    def append(self, command: CommandItem, wire: WireItem | None = None) -> Conflict | None:
        """Write ``command`` unless its version exists (``Conflict``: another writer won).

        ``wire``: the command already encoded and checked (``rules.check_storable``).
        """
        table = self.tables.command
        wire = wire if wire is not None else self._store.wire(table, command.to_item())
        return self._store.put_wire(table, wire, condition=item_absent())

    def hand_back(self, command: CommandItem) -> str:
        """Hand a ``publish_sync`` command whose projection failed to the stream: remove its
        ``syncMode`` marker (one ``UpdateItem``); the synchronizer applies the MODIFY record
        this makes. Returns what happened, for the error message."""
        key = {"pk": command.pk, "sk": command.sk}
        error: CqrsError | None = None
        for attempt in range(HAND_BACK_ATTEMPTS):  # a lost reply: the retry's condition fails
            try:
                self._store.update(
                    self.tables.command,
                    key,
                    Update().remove(SYNC_MODE),
                    condition=equals(SYNC_MODE, SYNC_MODE_SYNC),
                )
                return "the stream will apply it"
            except CqrsError as exc:  # the command's only way to the read model: insist
                error = exc
                time.sleep(0.05 * 2**attempt if isinstance(exc, TransientError) else 0)
        return (
            f"handing it to the stream failed too ({error}): the entity's next command "
            "or `cqrs rebuild` applies it"
        )
