"""Who is acting: a tenant's :class:`InvokeContext`, or the explicit :data:`SYSTEM` scope.

A service behind API Gateway or a load balancer builds the context from the request with
:meth:`InvokeContext.from_event` (or :meth:`InvokeContext.from_claims`), with the rules of
MBC CQRS Serverless (``context/user.ts`` and ``guard/roles.guard.ts``):

- the user is the ``sub`` claim;
- the tenant is the ``custom:tenant`` claim; only a user without one selects a tenant
  with the ``x-tenant-code`` header (a user bound to a tenant always acts on it, and the
  header is ignored, as in MBC);
- the user's roles are the ``custom:roles`` claim, a JSON list of ``{"tenant", "role"}``;
  a role without a tenant (or with ``""``) holds on every tenant;
- the tenant role (:attr:`InvokeContext.tenant_role`) is the role held on the tenant,
  else the (last listed) role held on every tenant, else ``""``;
- a tenant selected by the header is allowed only if it is a common tenant
  (:data:`COMMON_TENANT_CODES`, ``common``) or the tenant role is a cross-tenant role
  (:data:`CROSS_TENANT_ROLES`, ``system_admin``); otherwise
  :class:`~cqrs.core.errors.TenantForbiddenError` (HTTP 403), as ``RolesGuard`` refuses;
- tenant codes (claim, header, roles) are lowercased, as MBC does.

Claims that cannot be taken (no ``sub``, ``custom:roles`` that is not a JSON list of
roles, no tenant from either the claim or the header) raise
:class:`~cqrs.core.errors.InvalidClaimsError` (HTTP 400), before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from pydantic import BaseModel, ConfigDict

from .errors import InvalidClaimsError, TenantForbiddenError
from .keys import COMMON_TENANT

#: The header selecting the tenant to act on (MBC's ``HEADER_TENANT_CODE``).
TENANT_HEADER = "x-tenant-code"
#: The role that passes every role check (MBC's ``ROLE_SYSTEM_ADMIN``).
SYSTEM_ADMIN_ROLE = "system_admin"
#: The tenant of a role that holds on every tenant.
ANY_TENANT = ""
#: Tenants anyone may select with the header (MBC's ``DEFAULT_COMMON_TENANT_CODES``).
COMMON_TENANT_CODES: tuple[str, ...] = (COMMON_TENANT,)
#: Tenant roles that may select any tenant with the header (MBC's
#: ``DEFAULT_CROSS_TENANT_ROLES``).
CROSS_TENANT_ROLES: tuple[str, ...] = (SYSTEM_ADMIN_ROLE,)


class TenantRole(BaseModel):
    """One entry of the ``custom:roles`` claim: ``role`` on ``tenant`` (``""``: every tenant)."""

    model_config = ConfigDict(frozen=True)

    tenant: str = ANY_TENANT
    role: str


class InvokeContext(BaseModel):
    """Who is acting, for audit fields and tenant checks.

    ``tenant_role`` and ``roles`` are filled from the request's claims by
    :meth:`from_claims` and :meth:`from_event` (see the module docstring for the rules).
    """

    model_config = ConfigDict(frozen=True)

    tenant_code: str
    user_id: str = "system"
    source_ip: str | None = None
    request_id: str | None = None
    #: The user's role on ``tenant_code`` (MBC's ``tenantRole``), ``""`` if none.
    tenant_role: str = ""
    #: Every role of the user (the ``custom:roles`` claim), tenant codes lowercased.
    roles: tuple[TenantRole, ...] = ()

    @property
    def is_system_admin(self) -> bool:
        """Whether the tenant role is ``system_admin`` (it passes every role check)."""
        return self.tenant_role == SYSTEM_ADMIN_ROLE

    def has_role(self, *roles: str) -> bool:
        """MBC's ``@Roles(...)`` check (``RolesGuard.verifyRole``): the tenant role is one of
        ``roles``, or ``system_admin``; no role (``""``) never passes."""
        return bool(self.tenant_role) and (self.is_system_admin or self.tenant_role in roles)

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, object],
        *,
        headers: Mapping[str, str] | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        common_tenants: Collection[str] = COMMON_TENANT_CODES,
        cross_tenant_roles: Collection[str] = CROSS_TENANT_ROLES,
    ) -> InvokeContext:
        """The context of a user with these (already verified) JWT ``claims``.

        ``headers`` may carry ``x-tenant-code`` (any case of the name);
        ``common_tenants`` and ``cross_tenant_roles`` are MBC's ``COMMON_TENANT_CODES``
        and ``CROSS_TENANT_ROLES`` (lowercase tenant codes). Raises
        :class:`~cqrs.core.errors.InvalidClaimsError` for claims that cannot be taken and
        :class:`~cqrs.core.errors.TenantForbiddenError` for a tenant the user may not act
        on (the rules are in the module docstring).
        """
        if not isinstance(claims, Mapping):
            raise InvalidClaimsError(f"claims must be a mapping, got {type(claims).__name__}")
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not user_id.strip():
            raise InvalidClaimsError("the claims have no subject (sub): who is acting?")
        roles = parse_roles(claims.get("custom:roles"))
        own = _tenant(claims.get("custom:tenant"), "the custom:tenant claim")
        asked = _tenant(_header(headers or {}, TENANT_HEADER), f"the {TENANT_HEADER} header")
        tenant = own or asked
        if tenant is None:
            raise InvalidClaimsError(
                f"no tenant: the claims have no custom:tenant and there is no {TENANT_HEADER} "
                "header"
            )
        role = role_on(tenant, roles)
        if own is None and tenant not in common_tenants and role not in cross_tenant_roles:
            raise TenantForbiddenError(tenant, None, user_id)
        return cls(
            tenant_code=tenant,
            user_id=user_id,
            source_ip=source_ip,
            request_id=request_id,
            tenant_role=role,
            roles=roles,
        )

    @classmethod
    def from_event(
        cls, event: Mapping[str, object], lambda_context: object = None
    ) -> InvokeContext:
        """The context of an API Gateway (HTTP API, REST API) or ALB proxy event.

        Claims come from the authorizer (HTTP API: ``requestContext.authorizer.jwt.claims``;
        REST API: ``requestContext.authorizer.claims``; ALB: the payload of the
        ``x-amzn-oidc-data`` header, decoded without verifying it, since the load balancer
        did), the source IP from the request context, the request id from
        ``lambda_context`` (else API Gateway's). See :mod:`cqrs.core.requests`. Raises
        :class:`~cqrs.core.errors.InvalidEventError` for another kind of event.
        """
        from .requests import request_facts

        facts = request_facts(event, lambda_context)
        return cls.from_claims(
            facts.claims,
            headers=facts.headers,
            source_ip=facts.source_ip,
            request_id=facts.request_id,
        )


def parse_roles(value: object) -> tuple[TenantRole, ...]:
    """The ``custom:roles`` claim (a JSON text, or an already decoded list) as roles.

    ``None`` or ``""`` is no roles; tenant codes are lowercased.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidClaimsError("custom:roles is not JSON", cause=exc) from exc
    if not isinstance(value, list):
        raise InvalidClaimsError("custom:roles must be a JSON list of {tenant, role}")
    roles = []
    for entry in value:
        tenant = (entry.get("tenant") or ANY_TENANT) if isinstance(entry, dict) else None
        role = entry.get("role") if isinstance(entry, dict) else None
        if not isinstance(tenant, str) or not isinstance(role, str) or not role:
            raise InvalidClaimsError(
                f"custom:roles entries must look like {{'tenant': str, 'role': str}}, got {entry!r}"
            )
        roles.append(TenantRole(tenant=tenant.strip().lower(), role=role))
    return tuple(roles)


def role_on(tenant: str, roles: tuple[TenantRole, ...]) -> str:
    """The role held on ``tenant``, else the last role held on every tenant, else ``""``
    (MBC's ``getUserContext`` loop)."""
    found = ""
    for r in roles:
        if r.tenant == tenant:
            return r.role
        if r.tenant == ANY_TENANT:
            found = r.role
    return found


def _tenant(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidClaimsError(f"{where} must be a string, got {type(value).__name__}")
    return value.strip().lower() or None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


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
