"""What an HTTP request delivered to Lambda says about its caller: claims, headers, IP, id.

:func:`request_facts` reads the three Lambda proxy event shapes:

- API Gateway **HTTP API** (payload 2.0): claims from
  ``requestContext.authorizer.jwt.claims`` (the JWT authorizer), source IP from
  ``requestContext.http.sourceIp``;
- API Gateway **REST API** (and HTTP API payload 1.0): claims from
  ``requestContext.authorizer.claims`` (a Cognito user pool authorizer) or
  ``requestContext.authorizer.jwt.claims``, source IP from
  ``requestContext.identity.sourceIp``;
- an **Application Load Balancer** with OIDC or Cognito authentication: claims from the
  payload of the ``x-amzn-oidc-data`` header, a JWT the load balancer signed. Its payload
  is decoded **without verifying the signature**: the load balancer authenticated the
  user and set the header, and it strips any such header the client sent. Only put a
  function behind a load balancer listener rule that authenticates, or verify the
  token yourself (its key is at ``https://public-keys.auth.elb.<region>.amazonaws.com``).
  The source IP is the last ``x-forwarded-for`` entry, the one the load balancer added
  (earlier entries are whatever the client sent).

Nothing here verifies a token: API Gateway's authorizer did. The request id is the Lambda
invocation's (``aws_request_id``), else API Gateway's ``requestContext.requestId``.
Header names are lowercased (HTTP API does so itself; REST and ALB keep the client's case).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import InvalidClaimsError, InvalidEventError

#: The header of an ALB that authenticated the user: a JWT with the user's claims.
ALB_OIDC_HEADER = "x-amzn-oidc-data"

EventKind = Literal["http-api", "rest-api", "alb"]


@dataclass(frozen=True)
class RequestFacts:
    """What one request says about its caller (see the module docstring for where from)."""

    kind: EventKind
    claims: Mapping[str, object]
    headers: Mapping[str, str] = field(default_factory=dict)
    source_ip: str | None = None
    request_id: str | None = None


def request_facts(event: Mapping[str, object], lambda_context: object = None) -> RequestFacts:
    """Read an API Gateway (HTTP or REST API) or ALB proxy event.

    Raises :class:`~cqrs.core.errors.InvalidEventError` for another kind of event and
    :class:`~cqrs.core.errors.InvalidClaimsError` when the request carries no claims.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"an HTTP event must be a mapping, got {type(event).__name__}")
    context = _mapping(event.get("requestContext"))
    headers = event_headers(event)
    kind = event_kind(event)
    if kind == "alb":
        claims = _alb_claims(headers)
        forwarded = [p.strip() for p in headers.get("x-forwarded-for", "").split(",")]
        source_ip = forwarded[-1] or None
    else:
        claims = _authorizer_claims(_mapping(context.get("authorizer")))
        where = "http" if kind == "http-api" else "identity"
        source_ip = _text(_mapping(context.get(where)).get("sourceIp"))
    request_id = _text(getattr(lambda_context, "aws_request_id", None)) or _text(
        context.get("requestId")
    )
    return RequestFacts(kind, claims, headers, source_ip, request_id)


def event_kind(event: Mapping[str, object]) -> EventKind:
    """Which proxy integration sent ``event`` (:class:`InvalidEventError` if none did)."""
    context = event.get("requestContext")
    if not isinstance(context, Mapping):
        raise InvalidEventError(
            "not an API Gateway or ALB event: no requestContext (is this function behind "
            "an HTTP API, a REST API or a load balancer?)"
        )
    if "elb" in context:
        return "alb"
    if event.get("version") == "2.0" and isinstance(context.get("http"), Mapping):
        return "http-api"
    if "httpMethod" in event or "identity" in context:
        return "rest-api"
    raise InvalidEventError("not an API Gateway or ALB event: unknown requestContext shape")


def event_headers(event: Mapping[str, object]) -> dict[str, str]:
    """The request's headers, names lowercased (multi-value headers joined with ``, ``)."""
    headers: dict[str, str] = {}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list):
                headers[name.lower()] = ", ".join(v for v in values if isinstance(v, str))
    single = event.get("headers")
    if isinstance(single, Mapping):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    return headers


def unverified_jwt_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, decoded **without verifying its signature**.

    For tokens something trusted already verified (an ALB's ``x-amzn-oidc-data``), or
    for local development. Accepts base64url and standard base64, padded or not (ALB
    pads). Raises :class:`~cqrs.core.errors.InvalidClaimsError` if it is not a JWT
    whose payload is a JSON object.
    """
    parts = token.strip().split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise InvalidClaimsError("not a JWT: expected three dot-separated parts")
    segment = parts[1].translate(str.maketrans("+/", "-_")).rstrip("=")
    try:
        payload = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidClaimsError("the JWT payload is not base64-encoded JSON", cause=exc) from exc
    if not isinstance(payload, dict):
        raise InvalidClaimsError("the JWT payload is not a JSON object")
    return payload


def _authorizer_claims(authorizer: Mapping[str, object]) -> Mapping[str, object]:
    claims = _mapping(authorizer.get("jwt")).get("claims", authorizer.get("claims"))
    if not isinstance(claims, Mapping) or not claims:
        raise InvalidClaimsError(
            "the request has no authorizer claims: put the route behind a JWT (or Cognito) "
            "authorizer"
        )
    return claims


def _alb_claims(headers: Mapping[str, str]) -> Mapping[str, object]:
    token = headers.get(ALB_OIDC_HEADER)
    if not token:
        raise InvalidClaimsError(
            f"the request has no {ALB_OIDC_HEADER} header: authenticate on the load "
            "balancer's listener rule (OIDC or Cognito)"
        )
    return unverified_jwt_claims(token)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
