"""What services pass in to publish: a full command, or a partial one."""

from __future__ import annotations

from pydantic import Field

from .keys import VERSION_LATEST
from .records import CamelModel


class CommandInput(CamelModel):
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
    attributes: object = Field(default_factory=dict)
    source: str | None = None


class CommandPartialInput(CamelModel):
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
    attributes: object = None
    source: str | None = None
