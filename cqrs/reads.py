"""The read side: current state (:class:`DataService`), past versions (:class:`HistoryService`)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Generic

from .commands import latest_command
from .errors import InterfaceError
from .items import CREATION_FIELDS, data_item
from .keys import (
    add_version,
    check_tenant,
    remove_version,
    validate_key,
    validate_part,
    validate_pk,
    validate_versioned_key,
    version_of,
)
from .models import AttrT, Command, DataRecord, HistoryRecord, Page, Scope
from .schema import CODE_INDEX
from .store import Condition, Store, absent, begins_with, equals
from .store.codec import Item

if TYPE_CHECKING:
    from .entity import EntitySpec
    from .schema import EntityTables

#: Soft-deleted rows are filtered out unless asked for.
NOT_DELETED: Condition = absent("isDeleted") | equals("isDeleted", False)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """DynamoDB's LastEvaluatedKey → an opaque, URL-safe cursor."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(
    cursor: str, pk: str | None = None, sk_prefix: str | None = None
) -> dict[str, Any]:
    """The inverse of :func:`encode_cursor`; a tampered cursor is an :class:`InterfaceError`.

    The cursor must be a data-table key (``pk`` and ``sk`` strings); given ``pk``
    (and ``sk_prefix``), it must also lie inside that query, so a cursor can't
    be replayed against another partition (another tenant).
    """
    try:
        key: Any = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}") from exc
    valid = (
        isinstance(key, dict)
        and set(key) == {"pk", "sk"}
        and all(
            isinstance(v, dict) and isinstance(v.get("S"), str) and len(v) == 1
            for v in key.values()
        )
    )
    if valid and pk is not None:
        valid = key["pk"]["S"] == pk and key["sk"]["S"].startswith(sk_prefix or "")
    if not valid:
        raise InterfaceError(f"invalid pagination cursor {cursor!r}")
    return dict(key)


class DataService(Generic[AttrT]):
    """Reads the current state of an entity type (``<entity>-data``).

    Every read is tenant-scoped: ``context`` is the acting tenant's
    :class:`~cqrs.models.InvokeContext` (another tenant's key raises
    :class:`~cqrs.errors.TenantMismatchError`) or :data:`~cqrs.models.SYSTEM`.
    Keys are validated as writes validate them, before any request.
    """

    def __init__(self, store: Store, tables: EntityTables, spec: EntitySpec[AttrT]):
        self._store = store
        self.tables = tables
        self._spec = spec

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
        """The raw stored data row (camelCase dict), or ``None``."""
        validate_key(pk, sk)
        check_tenant(pk, context)
        return self._store.get(self.tables.data, {"pk": pk, "sk": sk}, consistent=consistent)

    def get_fresh(
        self,
        pk: str,
        sk: str,
        *,
        after: Command[Any] | None = None,
        include_deleted: bool = False,
        context: Scope,
    ) -> DataRecord[AttrT] | None:
        """Read your writes: the data row, or the newest accepted command while sync is behind.

        The command is projected exactly as the synchronizer will project it
        (:func:`~cqrs.items.data_item`, first ``createdAt/By/Ip`` kept), so the
        result equals the data row the caller will see once sync catches up.
        With ``after`` (the command a publish returned) this costs one read;
        without it, one more ``BatchGetItem`` looks for newer commands. Nothing
        is written: no session table on the publish path.
        """
        if after is not None and (after.pk, remove_version(after.sk)) != (pk, sk):
            raise InterfaceError(
                f"'after' is a command of {after.pk} / {after.sk}, not {pk} / {sk}"
            )
        row = self.get_item(pk, sk, consistent=True, context=context)
        version = int(row["version"]) if row else 0
        if after is not None:
            newer = None if version >= after.version else after.model_dump(by_alias=True)
        else:
            newer = latest_command(self._store, self.tables.command, pk, sk, version + 1)
        if newer is not None:
            projected = data_item(newer)
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
        check_tenant(pk, context)
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
        return Page[Any](
            items=[self._spec.data_model(i) for i in page.items],
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
        check_tenant(tenant_code, context, is_pk=False)
        page = self._store.query_page(
            self.tables.data,
            equals("tenantCode", tenant_code) & equals("code", code),
            limit=1,
            index=CODE_INDEX,
            filter=None if include_deleted else NOT_DELETED,
        )
        return self._spec.data_model(page.items[0]) if page.items else None


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
        check_tenant(pk, context)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InterfaceError(f"version must be an integer >= 1, got {version!r}")
        key = {"pk": pk, "sk": add_version(base, version)}
        item = self._store.get(self.tables.history, key)
        return self._spec.history_model(item) if item is not None else None

    def list(self, pk: str, sk: str, *, context: Scope) -> list[HistoryRecord[AttrT]]:
        """Every stored version of one entity, oldest first."""
        base, _ = validate_versioned_key(pk, sk)
        check_tenant(pk, context)
        condition = equals("pk", pk) & begins_with("sk", base + "@")
        items = list(self._store.query(self.tables.history, condition))
        # Sort keys order versions as text ("@10" < "@9"): sort by number.
        own = [i for i in items if remove_version(i["sk"]) == base]
        own.sort(key=lambda i: version_of(i["sk"]) or 0)
        return [self._spec.history_model(i) for i in own]
