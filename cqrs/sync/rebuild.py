"""Rebuild: recompute an entity type's data and history from its command table.

The command log is the truth; the read model is derived from it by the same
function the projector uses (``cqrs.sync.creation.data_row``: the history item of
version v is the data row at v). Rebuild scans the command, data
and history tables, compares what is stored with what the log implies, and writes
only the difference: on a healthy table it writes nothing.

Data rows are written conditionally (``version <= the log's version``), so a
rebuild running beside the live synchronizer never moves a row backwards.
Rows the log does not imply (orphans) are reported and deleted only with
``prune=True``. Custom ``DataSyncHandler`` projections are not re-run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.errors import InvalidEventError
from ..core.items import CommandItem, StoredValue, stored_key
from ..core.keys import version_of
from ..store.expressions import absent, at_most
from .creation import data_row

if TYPE_CHECKING:
    from ..schema.definitions import EntityTables
    from ..store.codec import Item
    from ..store.gateway import Store

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class RebuildReport:
    """What a rebuild found and did."""

    entities: int = 0
    commands: int = 0
    data_written: int = 0
    history_written: int = 0
    orphans: list[tuple[str, str, str]] = field(default_factory=list)  # (table, pk, sk)
    pruned: int = 0
    skipped_newer: int = 0  # data rows ahead of the log (the synchronizer raced us)
    malformed: int = 0  # items of the command table that are not valid commands (left alone)

    @property
    def changed(self) -> bool:
        """True when anything was written or deleted."""
        return bool(self.data_written or self.history_written or self.pruned)


def expected_read_model(
    commands: Iterable[CommandItem | Mapping[str, StoredValue]],
) -> tuple[dict[tuple[str, str], Item], dict[tuple[str, str], Item]]:
    """The stored data rows and history items a set of commands implies."""
    by_entity: dict[tuple[str, str], dict[int, CommandItem]] = defaultdict(dict)
    for raw in commands:
        cmd = raw if isinstance(raw, CommandItem) else CommandItem.from_item(raw)
        by_entity[cmd.key][cmd.version] = cmd
    data: dict[tuple[str, str], Item] = {}
    history: dict[tuple[str, str], Item] = {}
    for key, versions in by_entity.items():
        base = min(versions) - 1  # each field's first value wins, as in projection
        for version, cmd in versions.items():  # history @v: the data row at v
            history[(cmd.pk, cmd.sk)] = {**data_row(versions, base, version), "sk": cmd.sk}
        data[key] = data_row(versions, base, max(versions))
    return data, history


def _commands(items: Iterable[Item]) -> tuple[list[CommandItem], int]:
    """The valid commands among the command table's items, and how many were not."""
    commands, malformed = [], 0
    for item in items:
        if version_of(str(item.get("sk", ""))) is None:
            continue  # not a command version (e.g. another writer's marker item)
        try:
            commands.append(CommandItem.from_item(item))
        except InvalidEventError:
            malformed += 1
    return commands, malformed


def rebuild(
    store: Store,
    tables: EntityTables,
    *,
    prune: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RebuildReport:
    """Make data and history exactly what the command table implies; return the report.

    ``store`` is the app's :class:`~cqrs.store.gateway.Store`; its errors are classified
    (:mod:`cqrs.store.classify`).
    """
    tick = progress or (lambda _phase, _done, _total: None)
    scanned = store.scan(
        tables.command, consistent=True, on_page=lambda n: tick("scan commands", n, 0)
    )
    commands, malformed = _commands(scanned)
    want_data, want_history = expected_read_model(commands)
    have_data = {stored_key(i): i for i in store.scan(tables.data, consistent=True)}
    have_history = {stored_key(i): i for i in store.scan(tables.history, consistent=True)}
    report = RebuildReport(entities=len(want_data), commands=len(commands), malformed=malformed)

    history_fixes = [item for key, item in want_history.items() if have_history.get(key) != item]
    data_fixes = [item for key, item in want_data.items() if _differs(have_data.get(key), item)]
    total = len(history_fixes) + len(data_fixes)
    if not dry_run:
        store.batch_write(
            tables.history, puts=history_fixes, on_chunk=lambda n: tick("history", n, total)
        )
    report.history_written = len(history_fixes)
    for n, item in enumerate(data_fixes, 1):
        if dry_run or _put_data(store, tables.data, item):
            report.data_written += 1
        else:
            report.skipped_newer += 1
        tick("data", len(history_fixes) + n, total)

    report.orphans = [(tables.data, *k) for k in have_data if k not in want_data] + [
        (tables.history, *k) for k in have_history if k not in want_history
    ]
    if prune and not dry_run:
        for table, pk, sk in report.orphans:
            store.delete(table, {"pk": pk, "sk": sk})
            report.pruned += 1
    return report


def _differs(have: Item | None, want: Item) -> bool:
    # Attributes outside the projection (e.g. added by MBC's spread) don't count as damage.
    return (
        have is None
        or any(have.get(k) != v for k, v in want.items())
        or any(k not in want for k in have if k in _PROJECTED_NAMES)
    )


_PROJECTED_NAMES = frozenset(
    ["pk", "sk", "id", "code", "name", "version", "tenantCode", "type", "isDeleted", "seq",
     "ttl", "attributes", "requestId", "createdAt", "createdBy", "createdIp", "updatedAt",
     "updatedBy", "updatedIp", "cpk", "csk"]
)  # fmt: skip


def _put_data(store: Store, table: str, item: Item) -> bool:
    """Write a data row unless the stored one is newer; ``False`` when it was."""
    condition = absent("pk") | at_most("version", item["version"])
    return store.put(table, item, condition=condition) is None
