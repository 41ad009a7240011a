"""Who is acting: a tenant's :class:`InvokeContext`, or the explicit :data:`SYSTEM` scope."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
