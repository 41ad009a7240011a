"""Command statuses to an AWS AppSync GraphQL API, the way MBC CQRS Serverless sends them.

MBC's ``AppSyncService.sendMessage`` (``packages/core/src/notifications/appsync.service.ts``)
POSTs each notification to the API's GraphQL endpoint as the mutation :data:`QUERY`,
the notification JSON being the ``AWSJSON`` variable ``message`` (a JSON *string*)::

    {"query": "mutation SEND_MESSAGE($message: AWSJSON!) { sendMessage(...) {...} }",
     "variables": {"message": "{\\"action\\":\\"command-status\\",\\"pk\\":...}"}}

authenticated with the ``x-api-key`` header when an API key is configured, else signed
with SigV4 (service ``appsync``) using the credentials of the default chain (Lambda's
role). Front-ends subscribed to ``sendMessage`` receive it. The request goes through
:mod:`urllib.request`; botocore is loaded only to sign.

Errors are classified like DynamoDB's: a timeout or connection error is a
:class:`~cqrs.core.errors.NetworkError`, HTTP 429 a :class:`~cqrs.core.errors.ThrottledError`,
5xx a :class:`~cqrs.core.errors.ServiceUnavailableError` (all retryable); 401/403 and
missing credentials an :class:`~cqrs.core.errors.AccessDeniedError`; any other 4xx, a
reply that is not JSON, or a GraphQL reply carrying ``errors`` a
:class:`~cqrs.core.errors.RequestRejectedError` (not retryable).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.errors import (
    AccessDeniedError,
    ConfigurationError,
    CqrsError,
    NetworkError,
    RequestRejectedError,
    ServiceUnavailableError,
    ThrottledError,
)

if TYPE_CHECKING:
    from ..core.settings import Settings

#: MBC's mutation, verbatim (its selection set is what subscribers receive).
QUERY = """
  mutation SEND_MESSAGE($message: AWSJSON!) {
    sendMessage(message: $message) {
      id
      table
      pk
      sk
      tenantCode
      action
      content
    }
  }
"""
#: The environment variable holding the API key (read when there are no settings).
API_KEY_ENV = "CQRS_APPSYNC_API_KEY"
#: The header carrying an AppSync API key.
API_KEY_HEADER = "x-api-key"
#: SigV4's service name for AppSync.
SERVICE = "appsync"
_HOST_REGION = re.compile(r"\.appsync-api\.([a-z0-9-]+)\.amazonaws\.com$")


def region_of(endpoint: str) -> str | None:
    """The region in an AppSync endpoint's host (``<id>.appsync-api.<region>.amazonaws.com``),
    or ``None`` (a custom domain)."""
    found = _HOST_REGION.search(urlsplit(endpoint).hostname or "")
    return found.group(1) if found else None


def request_body(notification: Mapping[str, object]) -> bytes:
    """The GraphQL request MBC sends for one notification."""
    message = json.dumps(notification, ensure_ascii=False, separators=(",", ":"))
    payload = {"query": QUERY, "variables": {"message": message}}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class AppSyncClient:
    """Sends notifications to one AppSync GraphQL endpoint.

    - ``endpoint``: ``https://<id>.appsync-api.<region>.amazonaws.com/graphql`` (any http(s) URL).
    - ``api_key``: sent as ``x-api-key``; without one, requests are SigV4-signed.
    - ``region``: the signing region when the endpoint's host names none (a custom
      domain); default ``ap-northeast-1``, MBC's.
    - ``credentials``: botocore credentials to sign with; default: botocore's chain.
    - ``timeout``: seconds per request (a notification must not hold a Lambda batch).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str | None = None,
        region: str | None = None,
        credentials: Any = None,
        timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"AppSync endpoint {endpoint!r} must be an http(s) URL")
        self.endpoint = endpoint
        self.api_key = api_key or None
        self.region = region_of(endpoint) or region or "ap-northeast-1"
        self.timeout = timeout
        self._credentials = credentials

    def __repr__(self) -> str:
        auth = "api key" if self.api_key else "SigV4"
        return f"AppSyncClient({self.endpoint!r}, {auth}, region={self.region!r})"

    def headers(self, body: bytes) -> dict[str, str]:
        """The headers of a request carrying ``body``: the API key, else a SigV4 signature."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            return headers | {API_KEY_HEADER: self.api_key}
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
        if self._credentials is None:
            raise AccessDeniedError(
                f"no AWS credentials to sign the AppSync request to {self.endpoint} "
                "(set an API key, or give the function a role)"
            )
        request = AWSRequest(method="POST", url=self.endpoint, data=body, headers=headers)
        SigV4Auth(self._credentials, SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())

    def send(self, notification: Mapping[str, object]) -> Any:
        """POST one notification; returns the GraphQL ``data``. Raises a classified
        :class:`~cqrs.core.errors.OperationalError` (see the module docstring)."""
        body = request_body(notification)
        request = urllib.request.Request(
            self.endpoint, data=body, headers=self.headers(body), method="POST"
        )
        what = f"AppSync sendMessage to {self.endpoint}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(what, exc) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NetworkError(f"{what} failed: {reason}", cause=exc) from exc
        try:
            reply = json.loads(raw)
        except ValueError as exc:
            raise RequestRejectedError(f"{what}: the reply is not JSON", cause=exc) from exc
        errors = reply.get("errors") if isinstance(reply, dict) else None
        if errors:
            raise RequestRejectedError(f"{what} failed: {json.dumps(errors)[:500]}")
        return reply.get("data") if isinstance(reply, dict) else None


def client_for(endpoint: str, settings: Settings | None) -> AppSyncClient:
    """The client of ``endpoint`` with the API key of ``settings`` (``CQRS_APPSYNC_API_KEY``)
    and its region for a custom domain."""
    if settings is None:
        return AppSyncClient(endpoint, api_key=os.environ.get(API_KEY_ENV))
    return AppSyncClient(endpoint, api_key=settings.appsync_api_key, region=settings.region)


def _http_error(what: str, exc: urllib.error.HTTPError) -> CqrsError:
    """Classify an HTTP error reply: 5xx and 429 retryable, other 4xx not."""
    try:
        detail = exc.read().decode(errors="replace")[:500]
    except OSError:
        detail = ""
    message = f"{what} failed: HTTP {exc.code} {detail}".rstrip()
    if exc.code == 429:
        return ThrottledError(message, cause=exc)
    if exc.code >= 500:
        return ServiceUnavailableError(message, cause=exc)
    if exc.code in (401, 403):
        return AccessDeniedError(message, cause=exc)
    return RequestRejectedError(message, cause=exc)
