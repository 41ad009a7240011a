"""The write path: validate, resolve the base version, write one command item.

A command is written as ``<base sk>@<N+1>`` with the condition
``attribute_not_exists(pk) AND attribute_not_exists(sk)``, so of two writers
based on the same version exactly one wins; the other gets
:class:`~cqrs.core.errors.VersionConflictError` and nothing is written.

Requests per publish: version 0 → 1 ``PutItem``; version N → 1 ``GetItem`` of
the base command + 1 ``PutItem``; version -1 → 1 ``GetItem`` (data version) + 1
``BatchGetItem`` (a window of command versions from there) + 1 ``PutItem``.
``publish_sync`` adds the projection (see :mod:`cqrs.sync.projection`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic

from ..core.context import InvokeContext, Scope
from ..core.errors import (
    CommandNotAppliedError,
    InterfaceError,
    NotFoundError,
    SyncTimeoutError,
    TenantMismatchError,
    VersionConflictError,
)
from ..core.inputs import CommandInput, CommandPartialInput
from ..core.keys import (
    VERSION_FIRST,
    VERSION_LATEST,
    add_version,
    check_tenant,
    remove_version,
    validate_key,
    validate_part,
    validate_versioned_key,
)
from ..core.records import AttrT, Command, now_iso
from ..store import Store, item_absent
from ..store.codec import Item
from .merge import deep_merge
from .rules import (
    check_command_key,
    check_custom_id,
    check_storable,
    check_version,
    is_dirty,
)

if TYPE_CHECKING:
    from ..core.spec import EntitySpec
    from ..schema.definitions import EntityTables
    from ..sync.projection import Projector

_LATEST_WINDOW = 10  # command versions fetched per BatchGetItem when looking for the latest


class CommandService(Generic[AttrT]):
    """Publishes commands of one entity."""

    def __init__(
        self,
        store: Store,
        tables: EntityTables,
        spec: EntitySpec[AttrT],
        projector: Projector,
    ) -> None:
        self._store = store
        self.tables = tables
        self._spec = spec
        self._projector = projector

    # -- publishing --------------------------------------------------------------

    def publish_async(self, input: CommandInput, context: InvokeContext) -> Command[AttrT] | None:
        """Write a full command; the synchronizer projects it later.

        Returns the stored command, or ``None`` if it changes nothing ("not dirty").
        """
        return self._publish(self._prepare_full(input, context), project=False)

    def publish_sync(self, input: CommandInput, context: InvokeContext) -> Command[AttrT] | None:
        """Write a full command and project it into data and history before returning."""
        return self._publish(self._prepare_full(input, context), project=True)

    def publish_partial_update_async(
        self, input: CommandPartialInput, context: InvokeContext
    ) -> Command[AttrT] | None:
        """Deep-merge ``input`` into its base command and write the result."""
        return self._publish(self._prepare_partial(input, context), project=False)

    def publish_partial_update_sync(
        self, input: CommandPartialInput, context: InvokeContext
    ) -> Command[AttrT] | None:
        """Partial update, projected into data and history before returning."""
        return self._publish(self._prepare_partial(input, context), project=True)

    def duplicate(self, pk: str, sk: str, context: InvokeContext) -> Command[AttrT]:
        """Re-publish a command (``sk`` with ``@version``, or the latest) as a new version.

        Useful to re-run projections. The copy is written even though it is not dirty.
        A malformed version suffix (``@abc``) is an :class:`~cqrs.core.errors.InvalidKeyError`.
        """
        base_sk, version = validate_versioned_key(pk, sk)
        self._check_context(pk, context)
        base = self._get_command(pk, base_sk, version) if version else self._latest(pk, base_sk)
        if base is None:
            raise NotFoundError(f"no command {pk} / {sk} to duplicate")
        latest = self._latest(pk, base_sk) if version else base
        assert latest is not None
        command = self._publish(self._next_item(base, latest, context), project=False)
        assert command is not None
        return command

    # -- reading commands --------------------------------------------------------
    # Each is tenant-scoped like every DataService/HistoryService read: ``context`` is the
    # acting tenant's InvokeContext, or SYSTEM for trusted code (never implied).

    def get(
        self, pk: str, sk: str, version: int | None = None, *, context: Scope
    ) -> Command[AttrT] | None:
        """One stored command: ``version`` (or the version in ``sk``), else the latest.

        A key of another tenant raises :class:`TenantMismatchError`.
        """
        base_sk, suffix = validate_versioned_key(pk, sk)
        check_tenant(pk, context)
        if version is not None:
            _check_stored_version(version)
        version = version if version is not None else suffix
        item = self._get_command(pk, base_sk, version) if version else self._latest(pk, base_sk)
        return self._spec.command_model(item) if item else None

    def latest_version(self, pk: str, sk: str, *, context: Scope) -> int:
        """The latest accepted version of an entity (0 if none)."""
        base_sk, _ = validate_versioned_key(pk, sk)
        check_tenant(pk, context)
        item = self._latest(pk, base_sk)
        return int(item["version"]) if item else 0

    def is_applied(self, pk: str, sk: str, version: int, *, context: Scope) -> bool:
        """True once the read model reflects ``version`` (data version ≥ version)."""
        base_sk, _ = validate_versioned_key(pk, sk)
        check_tenant(pk, context)
        _check_stored_version(version)
        return self._data_version(pk, base_sk) >= version

    def wait_until_applied(
        self,
        pk: str,
        sk: str,
        version: int,
        *,
        timeout: float = 10.0,
        interval: float = 0.05,
        context: Scope,
    ) -> None:
        """Block until the read model reflects ``version``, polling with backoff.

        Raises :class:`~cqrs.core.errors.SyncTimeoutError` after ``timeout`` seconds. Something
        must be synchronizing (Lambda, ``cqrs sync --follow`` or ``cqrs dev``).
        """
        base_sk, _ = validate_versioned_key(pk, sk)
        check_tenant(pk, context)
        _check_stored_version(version)
        deadline = time.monotonic() + timeout
        while self._data_version(pk, base_sk) < version:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SyncTimeoutError(
                    f"{pk} / {sk} version {version} not applied within {timeout:g}s "
                    f"(data is at {self._data_version(pk, base_sk)}); "
                    "is a synchronizer running?"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, 1.0)

    # -- preparation -------------------------------------------------------------

    def _prepare_full(self, input: CommandInput, context: InvokeContext) -> Item | None:
        validate_key(input.pk, input.sk)
        self._check_context(input.pk, context)
        if input.tenant_code != context.tenant_code:
            raise TenantMismatchError(input.tenant_code, context.tenant_code)
        check_command_key(
            input.pk, input.sk, type_=input.type, tenant_code=input.tenant_code, code=input.code
        )
        version = check_version(input.version)
        candidate = {
            "pk": input.pk,
            "sk": input.sk,
            "id": check_custom_id(input.pk, input.sk, input.id),
            "code": input.code,
            "name": input.name,
            "tenantCode": input.tenant_code,
            "type": input.type,
            "isDeleted": input.is_deleted,
            "seq": input.seq,
            "ttl": input.ttl,
            "attributes": self._spec.dump_attributes(input.attributes),
            "source": input.source,
        }
        if version == VERSION_FIRST:
            return self._first_item(candidate, context)
        if version == VERSION_LATEST:
            base = self._latest(input.pk, input.sk)
            if base is None:
                return self._first_item(candidate, context)
        else:
            base = self._get_command(input.pk, input.sk, version)
            if base is None:
                raise VersionConflictError(
                    input.pk, input.sk, version, self._latest_version_or_none(input)
                )
        if not is_dirty(base, candidate):
            return None
        return self._next_item(candidate, base, context)

    def _prepare_partial(self, input: CommandPartialInput, context: InvokeContext) -> Item | None:
        validate_key(input.pk, input.sk)
        self._check_context(input.pk, context)
        version = check_version(input.version)
        if version > VERSION_FIRST:
            base = self._get_command(input.pk, input.sk, version)
            if base is None:
                latest = self._latest_version_or_none(input)
                if latest is not None:  # the entity exists: the base is stale or unknown
                    raise VersionConflictError(input.pk, input.sk, version, latest)
        else:
            base = self._latest(input.pk, input.sk)
        if base is None:
            raise NotFoundError(f"no command {input.pk} / {input.sk} to update partially")
        patch = self._patch(input, base)
        candidate = {**base, **patch}
        candidate["attributes"] = self._spec.dump_attributes(candidate.get("attributes") or {})
        if "code" in patch or "type" in patch:  # the key parts must still agree
            check_command_key(
                candidate["pk"],
                remove_version(candidate["sk"]),
                type_=candidate["type"],
                tenant_code=candidate["tenantCode"],
                code=candidate["code"],
            )
        if not is_dirty(base, candidate):
            return None
        return self._next_item(candidate, base, context)

    def _patch(self, input: CommandPartialInput, base: Item) -> Item:
        """The stored fields a partial input changes (attributes deep-merged into the base)."""
        patch: dict[str, Any] = {}
        for name in input.model_fields_set - {"pk", "sk", "version", "attributes"}:
            value = getattr(input, name)
            if value is None and name in ("code", "name", "type"):
                continue  # required fields cannot be cleared: None means "unchanged"
            alias = type(input).model_fields[name].alias or name
            patch[alias] = value
        if "code" in patch:
            validate_part("code", patch["code"])
        if input.attributes is not None:
            raw = input.attributes
            if hasattr(raw, "model_dump"):
                raw = raw.model_dump(mode="json", exclude_unset=True)
            if not isinstance(raw, Mapping):
                raise InterfaceError("partial attributes must be a mapping or a pydantic model")
            patch["attributes"] = deep_merge(base.get("attributes") or {}, raw)
        return patch

    def _first_item(self, candidate: Item, context: InvokeContext) -> Item:
        now = now_iso()
        return {
            **candidate,
            "sk": add_version(candidate["sk"], 1),
            "version": 1,
            "requestId": context.request_id,
            "createdAt": now,
            "createdBy": context.user_id,
            "createdIp": context.source_ip,
            "updatedAt": now,
            "updatedBy": context.user_id,
            "updatedIp": context.source_ip,
        }

    def _next_item(self, candidate: Item, base: Item, context: InvokeContext) -> Item:
        version = int(base["version"]) + 1
        item = {k: v for k, v in candidate.items() if k not in ("cpk", "csk", "status")}
        item.update(
            sk=add_version(base["sk"], version),
            version=version,
            requestId=context.request_id,
            updatedAt=now_iso(),
            updatedBy=context.user_id,
            updatedIp=context.source_ip,
        )
        for field in ("createdAt", "createdBy", "createdIp"):  # kept from version 1 on
            item[field] = base.get(field)
        return item

    def _check_context(self, pk: str, context: InvokeContext) -> None:
        if not isinstance(context, InvokeContext):
            raise InterfaceError(
                f"publishing needs the acting tenant's InvokeContext, got {context!r}"
            )
        validate_part("tenant code", context.tenant_code)
        check_tenant(pk, context)

    # -- writing -----------------------------------------------------------------

    def _publish(self, item: Item | None, *, project: bool) -> Command[AttrT] | None:
        if item is None:
            return None
        check_storable(item)
        self._write(item)
        command = self._spec.command_model(item)
        if project:
            outcome = self._projector.apply([item])[(item["pk"], remove_version(item["sk"]))]
            if outcome.error is not None:  # stored all the same: say so, or callers republish
                raise CommandNotAppliedError(
                    f"command {item['pk']} / {item['sk']} is stored, but applying it to "
                    f"{self.tables.data} failed (the stream will apply it): {outcome.error}",
                    command=command,
                    cause=outcome.error,
                ) from outcome.error
        return command

    def _write(self, item: Item) -> None:
        conflict = self._store.put(self.tables.command, item, condition=item_absent())
        if conflict is not None:
            base_sk = remove_version(item["sk"])
            actual = self._latest(item["pk"], base_sk)
            raise VersionConflictError(
                item["pk"],
                base_sk,
                int(item["version"]) - 1,
                int(actual["version"]) if actual else None,
            )

    # -- reads -------------------------------------------------------------------

    def _get_command(self, pk: str, sk: str, version: int) -> Item | None:
        key = {"pk": pk, "sk": add_version(sk, version)}
        return self._store.get(self.tables.command, key, consistent=True)

    def _data_version(self, pk: str, sk: str) -> int:
        row = self._store.get(
            self.tables.data, {"pk": pk, "sk": sk}, consistent=True, attributes=("version",)
        )
        return int(row.get("version", 0)) if row else 0

    def _latest(self, pk: str, sk: str) -> Item | None:
        """The latest command: start at the data row's version, read a window per request."""
        return latest_command(
            self._store, self.tables.command, pk, sk, max(self._data_version(pk, sk), 1)
        )

    def _latest_version_or_none(self, input: CommandInput | CommandPartialInput) -> int | None:
        latest = self._latest(input.pk, input.sk)
        return int(latest["version"]) if latest else None


def _check_stored_version(version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InterfaceError(f"a stored version is an integer >= 1, got {version!r}")


def latest_command(store: Store, table: str, pk: str, sk: str, start: int) -> Item | None:
    """The latest of the contiguous command versions from ``start`` on (``None`` if ``start``
    itself is absent): one ``BatchGetItem`` per window of versions, never one read per version."""
    latest: Item | None = None
    while True:
        versions = range(start, start + _LATEST_WINDOW)
        keys = [{"pk": pk, "sk": add_version(sk, v)} for v in versions]
        found = {int(i["version"]): i for i in store.batch_get(table, keys)}
        for v in versions:  # versions are contiguous: stop at the first hole
            if v not in found:
                return latest
            latest = found[v]
        start += _LATEST_WINDOW
