"""The invoke context from a request: MBC's rules (context/user.ts, RolesGuard) on the
claims of API Gateway HTTP API, REST API and ALB events."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from cqrs import (
    IntegrityError,
    InterfaceError,
    InvalidClaimsError,
    InvalidEventError,
    InvokeContext,
    TenantForbiddenError,
    TenantMismatchError,
    TenantRole,
    is_retryable,
)
from cqrs.core.requests import request_facts, unverified_jwt_claims

ROLES = json.dumps([{"tenant": "ACME", "role": "admin"}, {"tenant": "", "role": "viewer"}])
CLAIMS = {"sub": "u-1", "custom:tenant": "Acme", "custom:roles": ROLES}
ADMIN = {"sub": "root", "custom:roles": json.dumps([{"tenant": "", "role": "system_admin"}])}
LAMBDA = SimpleNamespace(aws_request_id="lambda-req-1")


def http_api(
    claims: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    authorizer = {"jwt": {"claims": claims, "scopes": None}} if claims is not None else {}
    return {
        "version": "2.0",
        "routeKey": "GET /orders",
        "rawPath": "/orders",
        "headers": headers or {},
        "requestContext": {
            "apiId": "abc",
            "authorizer": authorizer,
            "http": {"method": "GET", "path": "/orders", "sourceIp": "203.0.113.7"},
            "requestId": "apigw-req-1",
        },
    }


def rest_api(claims: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "resource": "/orders",
        "path": "/orders",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "requestContext": {
            "authorizer": {"claims": claims},
            "identity": {"sourceIp": "198.51.100.4"},
            "requestId": "rest-req-1",
        },
    }


def jwt(claims: dict[str, Any], *, standard: bool = False) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value).encode()
        if standard:  # as ALB sends it: standard alphabet, padded
            return base64.b64encode(raw).decode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'ES256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


def alb(claims: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:..."}},
        "httpMethod": "GET",
        "path": "/orders",
        "headers": {
            "X-Amzn-Oidc-Data": jwt(claims, standard=True),
            "X-Forwarded-For": "10.9.9.9, 192.0.2.55",
            **(headers or {}),
        },
    }


# -- the three event shapes ---------------------------------------------------------------


def test_http_api_event() -> None:
    ctx = InvokeContext.from_event(http_api(CLAIMS), LAMBDA)
    assert ctx.user_id == "u-1"
    assert ctx.tenant_code == "acme"  # lowercased
    assert ctx.tenant_role == "admin"
    assert ctx.roles == (TenantRole(tenant="acme", role="admin"), TenantRole(role="viewer"))
    assert ctx.source_ip == "203.0.113.7"
    assert ctx.request_id == "lambda-req-1"  # the Lambda invocation's


def test_api_gateways_request_id_without_a_lambda_context() -> None:
    assert InvokeContext.from_event(http_api(CLAIMS)).request_id == "apigw-req-1"


def test_rest_api_event() -> None:
    ctx = InvokeContext.from_event(rest_api(CLAIMS, {"X-Tenant-Code": "ACME"}), LAMBDA)
    assert (ctx.user_id, ctx.tenant_code, ctx.source_ip) == ("u-1", "acme", "198.51.100.4")
    assert ctx.request_id == "lambda-req-1"
    assert InvokeContext.from_event(rest_api(CLAIMS)).request_id == "rest-req-1"


def test_alb_event_decodes_the_oidc_data_payload() -> None:
    ctx = InvokeContext.from_event(alb(CLAIMS), LAMBDA)
    assert (ctx.user_id, ctx.tenant_code, ctx.tenant_role) == ("u-1", "acme", "admin")
    # The load balancer appends the client's address; earlier entries are the client's word.
    assert ctx.source_ip == "192.0.2.55"


def test_unverified_jwt_claims_takes_both_base64_alphabets() -> None:
    claims = {"sub": "ü?>>", "custom:tenant": "x" * 7}
    assert unverified_jwt_claims(jwt(claims)) == claims
    assert unverified_jwt_claims(jwt(claims, standard=True)) == claims


@pytest.mark.parametrize(
    "event",
    [
        {"Records": []},
        {"requestContext": "nope"},
        {"requestContext": {"accountId": "1"}},
    ],
)
def test_other_events_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventError):
        InvokeContext.from_event(event)


@pytest.mark.parametrize(
    "event",
    [
        http_api(None),
        http_api({}),
        {**alb(CLAIMS), "headers": {}},
        {**alb(CLAIMS), "headers": {"x-amzn-oidc-data": "not-a-jwt"}},
        {**alb(CLAIMS), "headers": {"x-amzn-oidc-data": "a.!!!.c"}},
    ],
)
def test_requests_without_claims_are_bad_input(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidClaimsError):
        InvokeContext.from_event(event)


def test_request_facts_lowercase_header_names() -> None:
    facts = request_facts(rest_api(CLAIMS, {"X-Tenant-Code": "acme", "Accept": "*/*"}))
    assert facts.kind == "rest-api"
    assert facts.headers["x-tenant-code"] == "acme"
    assert facts.headers["accept"] == "*/*"


# -- the tenant rule ----------------------------------------------------------------------


def test_the_users_own_tenant_without_a_header() -> None:
    ctx = InvokeContext.from_claims({"sub": "u", "custom:tenant": "Globex"})
    assert (ctx.tenant_code, ctx.tenant_role, ctx.roles) == ("globex", "", ())


def test_a_user_bound_to_a_tenant_always_acts_on_it() -> None:
    # MBC's getUserContext: custom:tenant || header, so the header is never read then.
    for header in ("GLOBEX", "acme", "common"):
        ctx = InvokeContext.from_claims(
            {"sub": "u", "custom:tenant": "globex", "custom:roles": ROLES},
            headers={"X-TENANT-CODE": header},
        )
        assert (ctx.tenant_code, ctx.tenant_role) == ("globex", "viewer")


def test_without_a_claimed_tenant_the_header_selects_a_common_tenant() -> None:
    ctx = InvokeContext.from_claims({"sub": "u"}, headers={"x-tenant-code": "Common"})
    assert (ctx.tenant_code, ctx.tenant_role) == ("common", "")
    shared = InvokeContext.from_claims(
        {"sub": "u"}, headers={"x-tenant-code": "shared"}, common_tenants=("common", "shared")
    )
    assert shared.tenant_code == "shared"


def test_a_role_on_the_tenant_is_not_enough_to_select_it_with_the_header() -> None:
    # RolesGuard.canOverrideTenant: only a common tenant or a cross-tenant role.
    claims = {"sub": "u", "custom:roles": ROLES}  # admin on acme, viewer on every tenant
    with pytest.raises(TenantForbiddenError) as info:
        InvokeContext.from_claims(claims, headers={"x-tenant-code": "ACME"})
    error = info.value
    assert (error.key_tenant, error.context_tenant, error.user_id) == ("acme", "", "u")
    assert "x-tenant-code" in str(error) and "acme" in str(error)
    # A tenant-scope violation like any other: not retryable, caught as a mismatch.
    assert isinstance(error, TenantMismatchError) and isinstance(error, IntegrityError)
    assert not is_retryable(error)
    ctx = InvokeContext.from_claims(
        claims, headers={"x-tenant-code": "acme"}, cross_tenant_roles=("system_admin", "admin")
    )
    assert (ctx.tenant_code, ctx.tenant_role) == ("acme", "admin")


def test_system_admin_selects_any_tenant() -> None:
    ctx = InvokeContext.from_claims(ADMIN, headers={"x-tenant-code": "Initech"})
    assert (ctx.tenant_code, ctx.tenant_role) == ("initech", "system_admin")
    assert ctx.is_system_admin
    # RolesGuard.verifyRole: system_admin passes every role check.
    assert ctx.has_role("admin") and ctx.has_role("editor", "viewer")
    assert not InvokeContext.from_claims({"sub": "u", "custom:tenant": "a"}).has_role("")


def test_system_admin_on_one_tenant_selects_that_tenant_only() -> None:
    claims = {"sub": "u", "custom:roles": json.dumps([{"tenant": "acme", "role": "system_admin"}])}
    assert InvokeContext.from_claims(claims, headers={"x-tenant-code": "acme"}).is_system_admin
    with pytest.raises(TenantForbiddenError):
        InvokeContext.from_claims(claims, headers={"x-tenant-code": "globex"})


def test_the_tenants_role_wins_over_the_role_on_every_tenant() -> None:
    ctx = InvokeContext.from_claims(CLAIMS)
    assert ctx.tenant_role == "admin" and ctx.has_role("admin", "editor")
    assert not ctx.has_role("editor") and not ctx.is_system_admin
    other = InvokeContext.from_claims({**CLAIMS, "custom:tenant": "globex"})
    assert other.tenant_role == "viewer"  # the role held on every tenant
    last = json.dumps([{"role": "a"}, {"tenant": "", "role": "b"}])
    assert InvokeContext.from_claims({**CLAIMS, "custom:roles": last}).tenant_role == "b"


def test_roles_may_come_decoded() -> None:
    claims = {"sub": "u", "custom:tenant": "a", "custom:roles": [{"role": "r"}]}
    assert InvokeContext.from_claims(claims).roles == (TenantRole(tenant="", role="r"),)


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"sub": ""},
        {"sub": 7, "custom:tenant": "a"},
        {"sub": "u"},  # no tenant, no header
        {"sub": "u", "custom:tenant": "  "},
        {"sub": "u", "custom:tenant": 3},
        {"sub": "u", "custom:tenant": "a", "custom:roles": "{not json"},
        {"sub": "u", "custom:tenant": "a", "custom:roles": '{"tenant": "a"}'},
        {"sub": "u", "custom:tenant": "a", "custom:roles": '[{"tenant": "a"}]'},
        {"sub": "u", "custom:tenant": "a", "custom:roles": '[{"tenant": 1, "role": "r"}]'},
        {"sub": "u", "custom:tenant": "a", "custom:roles": '["admin"]'},
    ],
)
def test_claims_that_cannot_be_taken_are_bad_input(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidClaimsError) as info:
        InvokeContext.from_claims(claims)
    assert isinstance(info.value, InterfaceError) and not is_retryable(info.value)


def test_the_context_carries_what_it_was_given() -> None:
    ctx = InvokeContext.from_claims(CLAIMS, source_ip="192.0.2.1", request_id="r-9")
    assert (ctx.source_ip, ctx.request_id) == ("192.0.2.1", "r-9")
    assert InvokeContext(tenant_code="acme").roles == ()  # plain contexts are unchanged
