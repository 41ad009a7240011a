"""Typed records of what is stored: commands, data rows, history items, pages.

Python names are snake_case; stored attribute names are MBC's camelCase
(``tenantCode``, ``createdAt`` …), via pydantic aliases. ``Command``,
``DataRecord`` and ``HistoryRecord`` are generic in the type of
``attributes``: a pydantic model for typed entities, a dict otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .items import AttrT


def now_iso() -> str:
    """Current UTC time, ISO 8601 with offset, millisecond precision (as MBC writes it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class CamelModel(BaseModel):
    """A model whose stored (and accepted) field names are MBC's camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _Record(CamelModel, Generic[AttrT]):
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
