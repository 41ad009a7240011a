"""Past versions of an entity type (``<entity>-history``): :class:`HistoryService`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic

from ..core.context import Scope
from ..core.errors import InterfaceError
from ..core.items import AttrT, stored_str
from ..core.keys import (
    add_version,
    check_tenant,
    remove_version,
    validate_versioned_key,
    version_of,
)
from ..core.records import HistoryRecord
from ..store import Store, begins_with, equals

if TYPE_CHECKING:
    from ..core.spec import EntitySpec
    from ..schema.definitions import EntityTables


class HistoryService(Generic[AttrT]):
    """Reads past versions of an entity type (``<entity>-history``); tenant-scoped like
    :class:`DataService`."""

    def __init__(self, store: Store, tables: EntityTables, spec: EntitySpec[AttrT]):
        self._store = store
        self.tables = tables
        self._spec = spec

    def get(self, pk: str, sk: str, version: int, *, context: Scope) -> HistoryRecord[AttrT] | None:
        """The state right after ``version``, or ``None``."""
        base, _ = validate_versioned_key(pk, sk)
        pk = check_tenant(pk, context)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InterfaceError(f"version must be an integer >= 1, got {version!r}")
        key = {"pk": pk, "sk": add_version(base, version)}
        item = self._store.get(self.tables.history, key)
        return self._spec.history_model(self._store.objects.resolve(item)) if item else None

    def list(self, pk: str, sk: str, *, context: Scope) -> list[HistoryRecord[AttrT]]:
        """Every stored version of one entity, oldest first."""
        base, _ = validate_versioned_key(pk, sk)
        pk = check_tenant(pk, context)
        condition = equals("pk", pk) & begins_with("sk", base + "@")
        items = list(self._store.query(self.tables.history, condition))
        # Sort keys order versions as text ("@10" < "@9"): sort by number.
        own = [i for i in items if remove_version(stored_str(i["sk"])) == base]
        own.sort(key=lambda i: version_of(stored_str(i["sk"])) or 0)
        return [self._spec.history_model(self._store.objects.resolve(i)) for i in own]
