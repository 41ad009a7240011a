"""The current state of an entity type (``<entity>-data``): :class:`DataService`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic

from ..core.context import Scope
from ..core.errors import InterfaceError
from ..core.items import CREATION_FIELDS, AttrT, CommandItem, Item, stored_int
from ..core.keys import (
    check_tenant,
    normalize_pk,
    remove_version,
    validate_key,
    validate_part,
    validate_pk,
)
from ..core.records import Command, DataRecord, Page
from ..schema.definitions import CODE_INDEX
from ..store import Condition, Store, absent, begins_with, equals
from ..write.log import CommandLog
from .cursor import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from ..core.spec import EntitySpec
    from ..schema.definitions import EntityTables

#: Soft-deleted rows are filtered out unless asked for.
NOT_DELETED: Condition = absent("isDeleted") | equals("isDeleted", False)


class DataService(Generic[AttrT]):
    """Reads the current state of an entity type (``<entity>-data``).

    Every read is tenant-scoped: ``context`` is the acting tenant's
    :class:`~cqrs.core.context.InvokeContext` (another tenant's key raises
    :class:`~cqrs.core.errors.TenantMismatchError`) or :data:`~cqrs.core.context.SYSTEM`.
    Keys are validated as writes validate them, before any request. Attributes kept in
    S3 (:mod:`cqrs.store.objects`) are loaded: one ``GetObject`` per such row returned.
    """

    def __init__(self, store: Store, tables: EntityTables, spec: EntitySpec[AttrT]):
        self._store = store
        self.tables = tables
        self._spec = spec
        self._log = CommandLog(store, tables)

    def get(
        self,
        pk: str,
        sk: str,
        *,
        include_deleted: bool = False,
        consistent: bool = False,
        context: Scope,
    ) -> DataRecord[AttrT] | None:
        """The current state of one entity, or ``None`` (also when soft-deleted, by default)."""
        item = self.get_item(pk, sk, consistent=consistent, context=context)
        if item is None or (item.get("isDeleted") and not include_deleted):
            return None
        return self._spec.data_model(item)

    def get_item(
        self, pk: str, sk: str, *, consistent: bool = False, context: Scope
    ) -> Item | None:
        """The stored data row (camelCase dict, attributes kept in S3 loaded), or ``None``."""
        validate_key(pk, sk)
        pk = check_tenant(pk, context)
        item = self._store.get(self.tables.data, {"pk": pk, "sk": sk}, consistent=consistent)
        return self._store.objects.resolve(item) if item is not None else None

    def get_fresh(
        self,
        pk: str,
        sk: str,
        *,
        after: Command[AttrT] | None = None,
        include_deleted: bool = False,
        context: Scope,
    ) -> DataRecord[AttrT] | None:
        """Read your writes: the data row, or the newest accepted command while sync is behind.

        The command is projected exactly as the synchronizer will project it
        (:meth:`~cqrs.core.items.CommandItem.data_row`, first ``createdAt/By/Ip`` kept), so the
        result equals the data row the caller will see once sync catches up.
        With ``after`` (the command a publish returned) this costs one read;
        without it, one more ``BatchGetItem`` looks for newer commands. Nothing
        is written: no session table on the publish path.
        """
        pk = normalize_pk(pk)
        if after is not None and (after.pk, remove_version(after.sk)) != (pk, sk):
            raise InterfaceError(
                f"'after' is a command of {after.pk} / {after.sk}, not {pk} / {sk}"
            )
        row = self.get_item(pk, sk, consistent=True, context=context)
        version = stored_int(row["version"]) if row else 0
        newer: CommandItem | None
        if after is not None:
            stored = after.model_dump(by_alias=True, mode="json")
            newer = None if version >= after.version else CommandItem.from_item(stored)
        else:
            newer = self._log.latest_from(pk, sk, version + 1)
        if newer is not None:
            projected = newer.data_row().to_item()
            for name in CREATION_FIELDS:  # as the projector's if_not_exists does
                if row and row.get(name) is not None:
                    projected[name] = row[name]
            row = projected
        if row is None or (row.get("isDeleted") and not include_deleted):
            return None
        return self._spec.data_model(row)

    def list_by_pk(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        descending: bool = False,
        include_deleted: bool = False,
        context: Scope,
    ) -> Page[AttrT]:
        """One page of the entities under ``pk``, ordered by sk; pass ``cursor`` back for more."""
        validate_pk(pk)
        pk = check_tenant(pk, context)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InterfaceError(f"limit must be an integer, got {limit!r}")
        if limit is not None and limit < 1:
            raise InterfaceError(f"limit must be >= 1, got {limit}")
        if sk_prefix is not None and not isinstance(sk_prefix, str):
            raise InterfaceError(f"sk_prefix must be a string, got {sk_prefix!r}")
        condition = equals("pk", pk)
        if sk_prefix:
            condition = condition & begins_with("sk", sk_prefix)
        page = self._store.query_page(
            self.tables.data,
            condition,
            limit=limit,
            start=decode_cursor(cursor, pk, sk_prefix) if cursor is not None else None,
            filter=None if include_deleted else NOT_DELETED,
            descending=descending,
        )
        return Page[AttrT](
            items=[self._spec.data_model(self._store.objects.resolve(i)) for i in page.items],
            cursor=encode_cursor(page.last_key),
        )

    def find_by_code(
        self,
        tenant_code: str,
        code: str,
        *,
        include_deleted: bool = False,
        context: Scope,
    ) -> DataRecord[AttrT] | None:
        """The entity with ``code`` in ``tenant_code``, via the ``code-index`` GSI."""
        validate_part("tenant code", tenant_code)
        validate_part("code", code)
        tenant_code = check_tenant(tenant_code, context, is_pk=False)
        page = self._store.query_page(
            self.tables.data,
            equals("tenantCode", tenant_code) & equals("code", code),
            limit=1,
            index=CODE_INDEX,
            filter=None if include_deleted else NOT_DELETED,
        )
        if not page.items:
            return None
        return self._spec.data_model(self._store.objects.resolve(page.items[0]))
