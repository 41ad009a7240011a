"""Serve cqrs over HTTP with FastAPI: the request's context, and errors as HTTP statuses.

Needs the ``http`` extra (``pip install 'cqrs[http]'``: fastapi, mangum, uvicorn, httpx).
Nothing else in cqrs imports this module, so the stream handler never loads FastAPI.

- :func:`install_error_handlers` maps every :class:`~cqrs.core.errors.CqrsError` to a
  status by its class (:func:`status_for`) with a JSON body (:func:`error_body`), and
  FastAPI's own request validation errors to 400 with the same body.
- :func:`request_context` is a FastAPI dependency returning the caller's
  :class:`~cqrs.core.context.InvokeContext`. On Lambda behind API Gateway or an ALB
  (through Mangum, which puts the event in the ASGI scope as ``aws.event``) it is
  :meth:`InvokeContext.from_event <cqrs.core.context.InvokeContext.from_event>`. Off Lambda
  there is no authorizer: with ``CQRS_HTTP_UNVERIFIED_JWT=1`` (local development only) the
  claims are read from the ``Authorization: Bearer`` token **without verifying it**
  (:func:`dev_token` makes one); otherwise the request is refused with 400.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .core.context import InvokeContext
from .core.errors import (
    CqrsError,
    IntegrityError,
    InterfaceError,
    InvalidClaimsError,
    ItemTooLargeError,
    NotFoundError,
    TenantMismatchError,
    TransientError,
    VersionConflictError,
)
from .core.requests import unverified_jwt_claims

#: Off Lambda, take the claims of an unverified bearer token (local development only).
UNVERIFIED_JWT_ENV = "CQRS_HTTP_UNVERIFIED_JWT"

#: Error class → HTTP status; an error takes the status of its nearest listed class.
STATUS_BY_ERROR: Mapping[type[CqrsError], int] = {
    ItemTooLargeError: 413,
    InterfaceError: 400,
    TenantMismatchError: 403,  # and TenantForbiddenError
    NotFoundError: 404,
    IntegrityError: 409,  # VersionConflictError, ConditionFailedError, ...
    TransientError: 503,
    CqrsError: 500,
}


def status_for(exc: CqrsError) -> int:
    """The HTTP status of ``exc``: 400 bad input, 403 another tenant, 404 not found, 409
    conflict, 413 too large, 503 retryable, 500 anything else."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(exc: CqrsError) -> dict[str, object]:
    """The JSON body of an error: its class, message and whether a retry can help."""
    body: dict[str, object] = {
        "error": type(exc).__name__,
        "message": str(exc),
        "retryable": exc.retryable,
    }
    if isinstance(exc, VersionConflictError):
        body["expected"], body["actual"] = exc.expected, exc.actual
    return body


def install_error_handlers(api: FastAPI) -> None:
    """Answer every :class:`~cqrs.core.errors.CqrsError` with :func:`status_for` and
    :func:`error_body`, and request validation errors with 400 in the same shape."""

    async def cqrs_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CqrsError)
        status = status_for(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return JSONResponse(error_body(exc), status_code=status, headers=headers)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        body = {
            "error": "RequestValidationError",
            "message": "the request does not match the API",
            "retryable": False,
            "details": jsonable_encoder(exc.errors()),
        }
        return JSONResponse(body, status_code=400)

    api.add_exception_handler(CqrsError, cqrs_error)
    api.add_exception_handler(RequestValidationError, invalid_request)


def request_context(request: Request) -> InvokeContext:
    """The caller's context (a FastAPI dependency): from the Lambda event when served by
    Mangum, else from an unverified bearer token if :data:`UNVERIFIED_JWT_ENV` is ``1``."""
    event = request.scope.get("aws.event")
    if isinstance(event, Mapping):
        return InvokeContext.from_event(event, request.scope.get("aws.context"))
    if os.environ.get(UNVERIFIED_JWT_ENV) != "1":
        raise InvalidClaimsError(
            "no authorizer: serve this API on Lambda behind API Gateway, or set "
            f"{UNVERIFIED_JWT_ENV}=1 for local development (tokens are then NOT verified)"
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidClaimsError("no Authorization: Bearer <token> header")
    return InvokeContext.from_claims(
        unverified_jwt_claims(token),
        headers=dict(request.headers),
        source_ip=request.client.host if request.client else None,
        request_id=request.headers.get("x-request-id") or str(uuid.uuid4()),
    )


def dev_token(claims: Mapping[str, object]) -> str:
    """An unsigned JWT (``alg: none``) carrying ``claims``, for local development and tests.

    Only :func:`request_context` with :data:`UNVERIFIED_JWT_ENV` set takes it; API
    Gateway's JWT authorizer refuses it.
    """

    def part(value: Mapping[str, object]) -> str:
        raw = json.dumps(dict(value), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
