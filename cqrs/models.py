"""Typed models of what services pass in and what they read back.

Python names are snake_case; stored attribute names are MBC's camelCase
(``tenantCode``, ``createdAt`` …), via pydantic aliases. ``Command``,
``DataRecord`` and ``HistoryRecord`` are generic in the type of
``attributes``: a pydantic model for typed entities, a dict otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .keys import VERSION_LATEST

AttrT = TypeVar("AttrT")


def now_iso() -> str:
    """Current UTC time, ISO 8601 with offset, millisecond precision (as MBC writes it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class InvokeContext(BaseModel):
    """Who is acting, for audit fields and tenant checks."""

    model_config = ConfigDict(frozen=True)

    tenant_code: str
    user_id: str = "system"
    source_ip: str | None = None
    request_id: str | None = None


class SystemScope:
    """The explicit scope of trusted code acting on any tenant (migrations, operators, jobs).

    Pass :data:`SYSTEM` as ``context`` where a tenant-scoped call should not be limited
    to one tenant. Audit fields written under it name the user ``"system"``.
    """

    __slots__ = ()
    user_id = "system"
    source_ip: str | None = None
    request_id: str | None = None

    def __repr__(self) -> str:
        return "SYSTEM"


#: Trusted code acting on any tenant: the one way to skip a tenant check, said out loud.
SYSTEM = SystemScope()

#: What a tenant-scoped call takes as ``context``.
Scope = InvokeContext | SystemScope


class CommandInput(_Camel):
    """A full command: the complete new state of an entity.

    ``version`` is the version the change is based on: 0 creates, N > 0 requires
    version N to be the latest, -1 means "whatever is latest".
    """

    pk: str
    sk: str
    code: str
    name: str
    tenant_code: str
    type: str
    version: int = 0
    id: str | None = None
    is_deleted: bool | None = None
    seq: int | None = None
    ttl: int | None = None
    attributes: Any = Field(default_factory=dict)
    source: str | None = None


class CommandPartialInput(_Camel):
    """A partial command: only the fields to change, deep-merged into the base.

    ``version`` is the base version (N > 0), or -1 (or 0, as MBC) for the latest.
    """

    pk: str
    sk: str
    version: int = VERSION_LATEST
    code: str | None = None
    name: str | None = None
    type: str | None = None
    is_deleted: bool | None = None
    seq: int | None = None
    ttl: int | None = None
    attributes: Any = None
    source: str | None = None


class _Record(_Camel, Generic[AttrT]):
    pk: str
    sk: str
    id: str
    code: str
    name: str
    version: int
    tenant_code: str
    type: str
    is_deleted: bool | None = None
    seq: int | None = None
    ttl: int | None = None
    attributes: AttrT
    request_id: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    created_ip: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
    updated_ip: str | None = None


class Command(_Record[AttrT], Generic[AttrT]):
    """One accepted command as stored in ``<entity>-command`` (``sk`` carries ``@version``)."""

    source: str | None = None


class DataRecord(_Record[AttrT], Generic[AttrT]):
    """Current state of an entity as stored in ``<entity>-data``."""

    cpk: str | None = None
    csk: str | None = None


class HistoryRecord(DataRecord[AttrT], Generic[AttrT]):
    """The state after one version, as stored in ``<entity>-history`` (``sk@version``)."""


class Page(BaseModel, Generic[AttrT]):
    """One page of a listing; pass ``cursor`` back to get the next page."""

    items: list[DataRecord[AttrT]]
    cursor: str | None = None
