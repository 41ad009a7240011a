"""The write path: validate, resolve the base version, write one command item.

A command is written as ``<base sk>@<N+1>`` with the condition
``attribute_not_exists(pk) AND attribute_not_exists(sk)``, so of two writers
based on the same version exactly one wins; the other gets
:class:`~cqrs.core.errors.VersionConflictError` and nothing is written.

Requests per publish: version 0 → 1 ``PutItem``; version N → 1 ``GetItem`` of
the base command + 1 ``PutItem``; version -1 → 1 ``GetItem`` of the data row + 1
``PutItem`` of the version after it when the read model is caught up; when it is
behind (the ``PutItem`` conflicts), or has no row yet, 1 ``BatchGetItem`` (a window
of command versions) finds the latest, then 1 ``PutItem``.
``publish_sync`` adds the projection (see :mod:`cqrs.sync.projection`) and marks its
command ``syncMode: "SYNC"`` as MBC's ``publishSync`` does, so the synchronizer skips its
stream record; if the projection fails, one ``UpdateItem`` removes the marker and the
stream applies it. With :class:`~cqrs.write.retention.Retention`, the version before the
new one gets its ``ttl``. Attributes over ``CQRS_ATTRIBUTE_LIMIT_SIZE`` (with a bucket)
add one ``PutObject`` before the ``PutItem``, and a base read that needs them one
``GetObject`` (:mod:`cqrs.store.objects`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Generic

from ..core.context import InvokeContext, Scope
from ..core.errors import (
    CommandNotAppliedError,
    CqrsError,
    InterfaceError,
    ItemTooLargeError,
    NotFoundError,
    SyncTimeoutError,
    VersionConflictError,
)
from ..core.inputs import CommandInput, CommandPartialInput
from ..core.items import SYNC_MODE, SYNC_MODE_SYNC, AttrT, CommandItem
from ..core.keys import VERSION_LATEST, check_tenant, validate_versioned_key
from ..core.large import AttributesRef
from ..core.records import Command
from ..store import Conflict, Store, WireItem
from .log import CommandLog
from .prepare import CommandBuilder, check_context, following
from .retention import Retention
from .rules import check_storable

if TYPE_CHECKING:
    from ..core.spec import EntitySpec
    from ..schema.definitions import EntityTables
    from ..sync.projection import Projector


class CommandService(Generic[AttrT]):
    """Publishes commands of one entity."""

    def __init__(
        self,
        store: Store,
        tables: EntityTables,
        spec: EntitySpec[AttrT],
        projector: Projector,
        retention: Retention | None = None,
    ) -> None:
        self.tables = tables
        self._spec = spec
        self._projector = projector
        self._store = store
        #: Retention of superseded versions (``None``: kept for ever).
        self.retention = retention
        self.log = CommandLog(store, tables)
        self._builder = CommandBuilder(self.log, spec)

    # -- publishing --------------------------------------------------------------

    def publish_async(self, input: CommandInput, context: InvokeContext) -> Command[AttrT] | None:
        """Write a full command; the synchronizer projects it later.

        Returns the stored command, or ``None`` if it changes nothing ("not dirty").
        """
        return self._publish_full(input, context, project=False)

    def publish_sync(self, input: CommandInput, context: InvokeContext) -> Command[AttrT] | None:
        """Write a full command and project it into data and history before returning."""
        return self._publish_full(input, context, project=True)

    def publish_partial_update_async(
        self, input: CommandPartialInput, context: InvokeContext
    ) -> Command[AttrT] | None:
        """Deep-merge ``input`` into its base command and write the result."""
        return self._publish(self._builder.partial(input, context), project=False)

    def publish_partial_update_sync(
        self, input: CommandPartialInput, context: InvokeContext
    ) -> Command[AttrT] | None:
        """Partial update, projected into data and history before returning."""
        return self._publish(self._builder.partial(input, context), project=True)

    def duplicate(self, pk: str, sk: str, context: InvokeContext) -> Command[AttrT]:
        """Re-publish a command (``sk`` with ``@version``, or the latest) as a new version.

        Useful to re-run projections. The copy is written even though it is not dirty.
        A malformed version suffix (``@abc``) is an :class:`~cqrs.core.errors.InvalidKeyError`.
        """
        base_sk, version = validate_versioned_key(pk, sk)
        pk = check_context(pk, context)
        base = self.log.get(pk, base_sk, version) if version else self.log.latest(pk, base_sk)
        if base is None:
            raise NotFoundError(f"no command {pk} / {sk} to duplicate")
        latest = self.log.latest(pk, base_sk) if version else base
        assert latest is not None
        command = self._publish(following(base, latest, context), project=False)
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
        pk = check_tenant(pk, context)
        if version is not None:
            _check_stored_version(version)
        version = version if version is not None else suffix
        item = self.log.get(pk, base_sk, version) if version else self.log.latest(pk, base_sk)
        return self._spec.command_model(item.to_item()) if item else None

    def latest_version(self, pk: str, sk: str, *, context: Scope) -> int:
        """The latest accepted version of an entity (0 if none)."""
        base_sk, _ = validate_versioned_key(pk, sk)
        pk = check_tenant(pk, context)
        return self.log.latest_version(pk, base_sk)

    def is_applied(self, pk: str, sk: str, version: int, *, context: Scope) -> bool:
        """True once the read model reflects ``version`` (data version ≥ version)."""
        base_sk, _ = validate_versioned_key(pk, sk)
        pk = check_tenant(pk, context)
        _check_stored_version(version)
        return self.log.data_version(pk, base_sk) >= version

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
        pk = check_tenant(pk, context)
        _check_stored_version(version)
        deadline = time.monotonic() + timeout
        while (applied := self.log.data_version(pk, base_sk)) < version:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SyncTimeoutError(
                    f"{pk} / {sk} version {version} not applied within {timeout:g}s "
                    f"(data is at {applied}); is a synchronizer running?"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, 1.0)

    # -- writing -----------------------------------------------------------------

    def _publish_full(
        self, input: CommandInput, context: InvokeContext, *, project: bool
    ) -> Command[AttrT] | None:
        start = None
        if input.version == VERSION_LATEST:  # the data row first: the latest when caught up
            guess, start = self._builder.latest_guess(input, context)
            if guess is not None:
                guess = _marked(guess) if project else guess
                written = self._append(guess, project=project)
                if not isinstance(written, Conflict):
                    return self._stored(guess, written, project=project)
                start = guess.version  # the read model is behind: the log decides from here
        return self._publish(self._builder.full(input, context, start=start), project=project)

    def _publish(self, command: CommandItem | None, *, project: bool) -> Command[AttrT] | None:
        if command is None:
            return None
        command = _marked(command) if project else command
        written = self._append(command, project=project)
        if isinstance(written, Conflict):
            actual = self.log.latest_version(command.pk, command.base_sk)
            raise VersionConflictError(
                command.pk, command.base_sk, command.version - 1, actual or None
            )
        return self._stored(command, written, project=project)

    def _append(self, command: CommandItem, *, project: bool) -> CommandItem | Conflict:
        """Append ``command``: the command as stored (large attributes in S3), or the
        :class:`Conflict` when its version exists. If a ``publish_sync`` command's write
        fails, its reply may be all that was lost: hand it to the stream (no-op when it was
        not stored)."""
        stored, wire = self._storable(command)  # refused before any request
        try:
            conflict = self.log.append(stored, wire)
        except CqrsError:
            if project:
                self.log.hand_back(stored)
            raise
        if conflict is None:
            return stored
        if isinstance(ref := stored.attributes, AttributesRef):  # lost the race: not ours
            mine = conflict.current is not None and conflict.current.get("attributes") == ref.uri
            if not mine:  # (a retried write that had landed finds its own pointer)
                with contextlib.suppress(CqrsError):
                    self._store.objects.delete(ref)
        return conflict

    def _storable(self, command: CommandItem) -> tuple[CommandItem, WireItem]:
        """``command`` as it will be stored, and its wire form: attributes over the limit,
        or too large to store inline, go to S3 (:mod:`cqrs.store.objects`). Values and the
        rest of the item are checked before that write: what DynamoDB would refuse is
        refused first, and :class:`~cqrs.core.errors.ItemTooLargeError` remains for an
        item too large even without its attributes."""
        objects, attributes = self._store.objects, command.attributes
        try:
            wire, too_large = check_storable(command), False
        except ItemTooLargeError:
            if not objects.enabled or not isinstance(attributes, dict):
                raise
            check_storable(replace(command, attributes=None))
            too_large = True
        ref = None
        if objects.enabled and isinstance(attributes, dict):
            table = self.tables.command
            ref = objects.offload(table, command.pk, command.sk, attributes, force=too_large)
        if ref is None:
            if too_large:  # attributes JSON cannot hold (sets, binary): they stay inline
                return command, check_storable(command)
            return command, wire
        stored = replace(command, attributes=ref)
        return stored, check_storable(stored)

    def _stored(
        self, command: CommandItem, stored: CommandItem, *, project: bool
    ) -> Command[AttrT]:
        """The command as the service returns it (``stored``: as written, attributes
        perhaps in S3), projected first if asked."""
        if self.retention is not None:
            self.retention.retire(self._store, self.tables.command, stored)
        model = self._spec.command_model(command.to_item())
        if project:
            outcome = self._projector.apply([stored])[command.key]
            if outcome.error is not None:  # stored all the same: say so, or callers republish
                handed = self.log.hand_back(command)
                raise CommandNotAppliedError(
                    f"command {command.pk} / {command.sk} is stored, but applying it to "
                    f"{self.tables.data} failed ({handed}): {outcome.error}",
                    command=model,
                    cause=outcome.error,
                ) from outcome.error
        return model


def _marked(command: CommandItem) -> CommandItem:
    """``command`` marked as projected by its writer (MBC's ``syncMode: "SYNC"``)."""
    return replace(command, extra={**command.extra, SYNC_MODE: SYNC_MODE_SYNC})


def _check_stored_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InterfaceError(f"a stored version is an integer >= 1, got {version!r}")
