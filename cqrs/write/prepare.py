"""From an input to the next command: validate, resolve the base version, build the item.

Nothing here writes. :class:`CommandBuilder` turns a :class:`~cqrs.core.inputs.CommandInput`
(full state) or :class:`~cqrs.core.inputs.CommandPartialInput` (a patch, deep-merged
into its base) into the :class:`~cqrs.core.items.CommandItem` to append, or ``None``
when it would change nothing ("not dirty").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Generic

from ..core.context import InvokeContext
from ..core.errors import (
    InterfaceError,
    NotFoundError,
    VersionConflictError,
)
from ..core.inputs import CommandInput, CommandPartialInput
from ..core.items import RETAINED, SYNC_MODE, Attributes, AttrT, CommandItem
from ..core.keys import (
    VERSION_FIRST,
    VERSION_LATEST,
    add_version,
    check_tenant,
    validate_key,
    validate_part,
)
from ..core.large import AttributesRef
from ..core.records import now_iso
from .merge import deep_merge
from .rules import check_command_key, check_custom_id, check_version, is_dirty

if TYPE_CHECKING:
    from ..core.spec import EntitySpec
    from .log import CommandLog

#: Fields a partial input cannot clear: ``None`` there means "unchanged".
_REQUIRED = frozenset(("code", "name", "type"))

#: Stored attributes of a base command that never carry over to the next version.
_NOT_CARRIED = frozenset(("cpk", "csk", "status", SYNC_MODE, RETAINED))


class CommandBuilder(Generic[AttrT]):
    """Builds the next command of an entity from an input and the command log."""

    def __init__(self, log: CommandLog, spec: EntitySpec[AttrT]) -> None:
        self._log = log
        self._spec = spec

    def full(
        self, input: CommandInput, context: InvokeContext, *, start: int | None = None
    ) -> CommandItem | None:
        """The command a full input makes (``None``: not dirty).

        ``start`` (version -1 only): a version known to exist, or 1, where the search for
        the latest begins, when the caller has read the data row already.
        """
        candidate = self._candidate(input, context)
        version = check_version(input.version)
        if version == VERSION_FIRST:
            return first(candidate, context)
        if version == VERSION_LATEST:
            base = self._log.latest_from(input.pk, input.sk, start) if start else None
            if base is None and (start is None or start > 1):  # no hint, or a wrong one
                base = self._log.latest(input.pk, input.sk)
            if base is None:
                return first(candidate, context)
        else:
            base = self._log.get(input.pk, input.sk, version)
            if base is None:
                actual = self._log.latest_version(input.pk, input.sk)
                raise VersionConflictError(input.pk, input.sk, version, actual or None)
        return following(candidate, base, context) if is_dirty(base, candidate) else None

    def latest_guess(
        self, input: CommandInput, context: InvokeContext
    ) -> tuple[CommandItem | None, int]:
        """A full input based on the latest (-1), built on the data row: one consistent
        read, right whenever the read model is caught up.

        Returns ``(command, start)``: the command to try appending, ``None`` when only the
        command log can decide (no data row: new, or not projected yet; or the input
        changes nothing against the row, which may be behind); ``start`` is where
        :meth:`full` searches the log from.
        """
        candidate = self._candidate(input, context)
        row = self._log.data_base(input.pk, input.sk)
        if row is None or not is_dirty(row, candidate):
            return None, row.version if row is not None else 1
        return following(candidate, row, context), row.version

    def _candidate(self, input: CommandInput, context: InvokeContext) -> CommandItem:
        """The input's state, validated, as a command not yet placed at a version."""
        validate_key(input.pk, input.sk)
        check_context(input.pk, context)
        check_tenant(input.tenant_code, context, is_pk=False)  # compared lowercase (MBC >= 1.1)
        check_command_key(
            input.pk, input.sk, type_=input.type, tenant_code=input.tenant_code, code=input.code
        )
        check_version(input.version)
        return CommandItem(
            pk=input.pk,
            sk=input.sk,
            version=0,
            id=check_custom_id(input.pk, input.sk, input.id),
            code=input.code,
            name=input.name,
            tenant_code=input.tenant_code,
            type=input.type,
            is_deleted=input.is_deleted,
            seq=input.seq,
            ttl=input.ttl,
            attributes=self._spec.dump_attributes(input.attributes),
            source=input.source,
        )

    def partial(self, input: CommandPartialInput, context: InvokeContext) -> CommandItem | None:
        """The command a partial input makes: the patch deep-merged into its base."""
        validate_key(input.pk, input.sk)
        check_context(input.pk, context)
        version = check_version(input.version)
        base = self._base_of_partial(input, version)
        changed = _changed(input)
        candidate = patch(input, base)
        candidate = replace(
            candidate, attributes=self._spec.dump_attributes(candidate.attributes or {})
        )
        if "code" in changed or "type" in changed:  # the key parts must still agree
            check_command_key(
                candidate.pk,
                candidate.base_sk,
                type_=candidate.type or "",
                tenant_code=candidate.tenant_code or "",
                code=candidate.code or "",
            )
        return following(candidate, base, context) if is_dirty(base, candidate) else None

    def _base_of_partial(self, input: CommandPartialInput, version: int) -> CommandItem:
        if version > VERSION_FIRST:
            base = self._log.get(input.pk, input.sk, version)
            if base is None:
                actual = self._log.latest_version(input.pk, input.sk)
                if actual:  # the entity exists: the base is stale or unknown
                    raise VersionConflictError(input.pk, input.sk, version, actual)
        else:
            base = self._log.latest(input.pk, input.sk)
        if base is None:
            raise NotFoundError(f"no command {input.pk} / {input.sk} to update partially")
        return base


def _loaded(attributes: Attributes | AttributesRef | None) -> Attributes:
    """A base command's attributes: the log loads them (:mod:`cqrs.write.log`)."""
    if isinstance(attributes, AttributesRef):  # pragma: no cover - the log never returns one
        raise AssertionError(f"base attributes not loaded from {attributes.uri}")
    return attributes or {}


def patch(input: CommandPartialInput, base: CommandItem) -> CommandItem:
    """``base`` with the fields a partial input changes (attributes deep-merged into the
    base's)."""
    changed = _changed(input)
    if "code" in changed and input.code is not None:
        validate_part("code", input.code)
    attributes = base.attributes
    if input.attributes is not None:
        raw = input.attributes
        if hasattr(raw, "model_dump"):
            raw = raw.model_dump(mode="json", exclude_unset=True)
        if not isinstance(raw, Mapping):
            raise InterfaceError("partial attributes must be a mapping or a pydantic model")
        attributes = deep_merge(_loaded(base.attributes), raw)
    return replace(
        base,
        code=input.code if "code" in changed else base.code,
        name=input.name if "name" in changed else base.name,
        type=input.type if "type" in changed else base.type,
        is_deleted=input.is_deleted if "is_deleted" in changed else base.is_deleted,
        seq=input.seq if "seq" in changed else base.seq,
        ttl=input.ttl if "ttl" in changed else base.ttl,
        source=input.source if "source" in changed else base.source,
        attributes=attributes,
    )


def _changed(input: CommandPartialInput) -> set[str]:
    """The fields a partial input sets (``None`` for a required field means "unchanged")."""
    given = input.model_fields_set - {"pk", "sk", "version", "attributes"}
    return {n for n in given if getattr(input, n) is not None or n not in _REQUIRED}


def first(candidate: CommandItem, context: InvokeContext) -> CommandItem:
    """Version 1 of a new entity, with its creation audit fields."""
    now = now_iso()
    return replace(
        candidate,
        sk=add_version(candidate.sk, 1),
        version=1,
        request_id=context.request_id,
        created_at=now,
        created_by=context.user_id,
        created_ip=context.source_ip,
        updated_at=now,
        updated_by=context.user_id,
        updated_ip=context.source_ip,
    )


def following(candidate: CommandItem, base: CommandItem, context: InvokeContext) -> CommandItem:
    """The version after ``base`` with ``candidate``'s state; creation fields kept."""
    version = base.version + 1
    return replace(
        candidate,
        sk=add_version(base.base_sk, version),
        version=version,
        request_id=context.request_id,
        updated_at=now_iso(),
        updated_by=context.user_id,
        updated_ip=context.source_ip,
        created_at=base.created_at,  # kept from version 1 on
        created_by=base.created_by,
        created_ip=base.created_ip,
        extra={k: v for k, v in candidate.extra.items() if k not in _NOT_CARRIED},
    )


def check_context(pk: str, context: InvokeContext) -> str:
    """Publishing acts for one tenant: an :class:`InvokeContext` whose tenant owns ``pk``.
    Returns ``pk`` with its tenant lowercased (MBC >= 1.1)."""
    if not isinstance(context, InvokeContext):
        raise InterfaceError(f"publishing needs the acting tenant's InvokeContext, got {context!r}")
    validate_part("tenant code", context.tenant_code)
    return check_tenant(pk, context)
