"""Command statuses to AppSync as MBC sends them, against a real HTTP server on 127.0.0.1.

The server records every request (path, headers, body) and answers as told, so the
tests see exactly what left the process: MBC's ``SEND_MESSAGE`` mutation, the
notification as the ``AWSJSON`` string ``message``, ``x-api-key`` or a SigV4 signature
(verified by recomputing it), and each kind of failure classified.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cqrs import AppSyncClient, CommandInput, Cqrs, InvokeContext
from cqrs.core.errors import (
    AccessDeniedError,
    ConfigurationError,
    NetworkError,
    OperationalError,
    RequestRejectedError,
    ServiceUnavailableError,
    ThrottledError,
)
from cqrs.core.settings import Settings
from cqrs.events.appsync import QUERY, region_of
from cqrs.events.notifications import (
    APPSYNC_ENDPOINT_ENV,
    CommandStatusEvent,
    EntityStuckEvent,
    Notifier,
)


@dataclass
class Receiver:
    """What the local AppSync stand-in received, and how it answers next."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    reply: bytes = b'{"data": {"sendMessage": {"id": "x"}}}'
    delay: float = 0.0

    def messages(self) -> list[dict[str, Any]]:
        """The notifications received (the ``message`` variable, decoded)."""
        return [json.loads(r["json"]["variables"]["message"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}  # case-insensitive
            state.requests.append(
                {"path": self.path, "headers": headers, "body": body, "json": json.loads(body)}
            )
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.reply)))
            self.end_headers()
            self.wfile.write(state.reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/graphql"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def status(version: int = 1, state: str = "applied", **kw: Any) -> CommandStatusEvent:
    return CommandStatusEvent(
        pk="ORDER#acme", sk=f"ORDER#1@{version}", table="dev-order-command", status=state, **kw
    )


def test_api_key_request_is_mbcs_send_message(receiver: Receiver) -> None:
    notifier = Notifier(appsync=AppSyncClient(receiver.url, api_key="da2-key"), raise_errors=True)
    assert notifier.enabled and notifier.appsync_endpoint == receiver.url

    notifier.command_status("ORDER#acme", "ORDER#1@2", "dev-order-command", "applied", source="api")

    (request,) = receiver.requests
    assert request["path"] == "/graphql"
    assert request["headers"]["x-api-key"] == "da2-key"
    assert request["headers"]["content-type"] == "application/json"
    assert "authorization" not in request["headers"]
    assert request["json"]["query"] == QUERY
    assert "mutation SEND_MESSAGE($message: AWSJSON!)" in QUERY
    assert "sendMessage(message: $message)" in QUERY
    assert isinstance(request["json"]["variables"]["message"], str)  # AWSJSON: a JSON string
    assert receiver.messages() == [
        {
            "action": "command-status",
            "pk": "ORDER#acme",
            "sk": "ORDER#1@2",
            "table": "dev-order-command",
            "id": "dev-order-command#ORDER#acme#ORDER#1@2",
            "tenantCode": "acme",
            "content": {"status": "finish:FINISHED", "source": "api"},
        }
    ]


def test_failed_status_uses_mbcs_failed_string(receiver: Receiver) -> None:
    notifier = Notifier(appsync=AppSyncClient(receiver.url, api_key="k"), raise_errors=True)
    notifier.command_statuses([status(1), status(2, "failed", error="ValueError: boom")])
    assert [m["content"] for m in receiver.messages()] == [
        {"status": "finish:FINISHED"},
        {"status": "sync_data:FAILED", "error": "ValueError: boom"},
    ]
    notifier.command_statuses([status(3, "publish_sync:FAILED")])  # MBC's own string: kept
    assert receiver.messages()[-1]["content"] == {"status": "publish_sync:FAILED"}


def _recompute_signature(request: dict[str, Any], url: str, creds: Credentials) -> str:
    """The signature botocore computes for the request the server received."""
    headers = request["headers"]
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    again = AWSRequest(
        method="POST", url=url, data=request["body"], headers={h: headers[h] for h in signed}
    )
    again.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(creds, "appsync", "ap-northeast-1")
    return auth.signature(auth.string_to_sign(again, auth.canonical_request(again)), again)


def test_sigv4_signed_without_an_api_key(receiver: Receiver) -> None:
    creds = Credentials("AKIDEXAMPLE", "secret", "session-token")
    client = AppSyncClient(receiver.url, credentials=creds)
    Notifier(appsync=client, raise_errors=True).command_statuses([status()])

    (request,) = receiver.requests
    headers = request["headers"]
    authorization = headers["authorization"]
    assert "x-api-key" not in headers
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/ap-northeast-1/appsync/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed)
    assert headers["x-amz-security-token"] == "session-token"
    signature = authorization.rsplit("Signature=", 1)[1]
    assert signature == _recompute_signature(request, receiver.url, creds)


def test_sigv4_uses_the_default_credential_chain(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    settings = Settings(region="eu-west-1", appsync_endpoint=receiver.url)
    notifier = Notifier(settings=settings, raise_errors=True)

    notifier.command_statuses([status()])

    assert notifier.appsync is not None and notifier.appsync.region == "eu-west-1"
    authorization = receiver.requests[0]["headers"]["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDFROMENV/")
    assert "/eu-west-1/appsync/aws4_request" in authorization


def test_no_credentials_is_access_denied(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AccessDeniedError, match="no AWS credentials"):
        AppSyncClient(receiver.url).send(status().to_notification())
    assert receiver.requests == []


def test_endpoint_region_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://abc123.appsync-api.us-east-2.amazonaws.com/graphql"
    assert region_of(url) == "us-east-2"
    assert region_of("https://api.example.com/graphql") is None
    assert AppSyncClient(url, region="eu-west-1").region == "us-east-2"  # the API's own
    assert AppSyncClient("https://api.example.com/graphql").region == "ap-northeast-1"
    with pytest.raises(ConfigurationError):
        AppSyncClient("appsync.example.com")
    monkeypatch.setenv("CQRS_APPSYNC_ENDPOINT", url)
    monkeypatch.setenv("CQRS_APPSYNC_API_KEY", "da2-env")
    settings = Settings()
    assert (settings.appsync_endpoint, settings.appsync_api_key) == (url, "da2-env")
    assert "da2-env" not in repr(settings)
    from_env = Notifier()  # no settings: the environment
    assert from_env.appsync is not None and from_env.appsync.api_key == "da2-env"
    monkeypatch.delenv(APPSYNC_ENDPOINT_ENV)
    assert Notifier().appsync is None and not Notifier().enabled


@pytest.mark.parametrize(
    ("code", "reply", "error", "retryable"),
    [
        (500, b'{"errors": [{"message": "internal"}]}', ServiceUnavailableError, True),
        (503, b"unavailable", ServiceUnavailableError, True),
        (429, b"{}", ThrottledError, True),
        (401, b'{"errors": [{"errorType": "UnauthorizedException"}]}', AccessDeniedError, False),
        (403, b"{}", AccessDeniedError, False),
        (400, b'{"errors": [{"message": "bad"}]}', RequestRejectedError, False),
        (200, b'{"data": null, "errors": [{"message": "Validation error"}]}',
         RequestRejectedError, False),
        (200, b"<html>not json</html>", RequestRejectedError, False),
    ],
)  # fmt: skip
def test_errors_are_classified(
    receiver: Receiver, code: int, reply: bytes, error: type[Exception], retryable: bool
) -> None:
    receiver.status, receiver.reply = code, reply
    client = AppSyncClient(receiver.url, api_key="k")
    with pytest.raises(error) as info:
        Notifier(appsync=client, raise_errors=True).command_statuses([status()])
    assert isinstance(info.value, OperationalError) and info.value.retryable is retryable
    assert len(receiver.requests) == 1


def test_timeouts_and_refused_connections_are_network_errors(receiver: Receiver) -> None:
    receiver.delay = 1.0
    with pytest.raises(NetworkError) as info:
        AppSyncClient(receiver.url, api_key="k", timeout=0.2).send(status().to_notification())
    assert info.value.retryable
    closed = receiver.url.replace(receiver.url.split(":")[2].split("/")[0], "9")
    with pytest.raises(NetworkError):
        AppSyncClient(closed, api_key="k", timeout=2).send(status().to_notification())


def test_failures_are_logged_not_raised_by_default(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 502
    notifier = Notifier(appsync=AppSyncClient(receiver.url, api_key="k"))
    with caplog.at_level(logging.ERROR, "cqrs.events.notifications"):
        assert notifier.command_statuses([status(1), status(2)]) == 2
    assert len(receiver.requests) == 2  # one failure does not stop the next
    assert "AppSync sendMessage" in caplog.text and "HTTP 502" in caplog.text


def test_alarms_do_not_go_to_appsync(receiver: Receiver) -> None:
    notifier = Notifier(appsync=AppSyncClient(receiver.url, api_key="k"), raise_errors=True)
    notifier.entity_stuck(
        EntityStuckEvent(
            pk="ORDER#acme", sk="ORDER#1@2", table="t", entity="order", failed_version=2,
            waiting_through=3, attempts=5, error="boom",
        )
    )  # fmt: skip
    assert receiver.requests == []


def test_synchronized_commands_reach_appsync(cqrs_app: Cqrs, drain: Any, receiver: Receiver):
    settings = cqrs_app.settings.model_copy(
        update={"appsync_endpoint": receiver.url, "appsync_api_key": "k"}
    )
    cqrs_app.__dict__["notifier"] = Notifier(cqrs_app.events, settings, raise_errors=True)
    orders = cqrs_app.entity("order")
    ctx = InvokeContext(tenant_code="acme")
    orders.commands.publish_async(
        CommandInput(pk="ORDER#acme", sk="ORDER#7", code="7", name="n", tenant_code="acme",
                     type="ORDER", source="POST /api/order"),
        ctx,
    )  # fmt: skip
    drain(cqrs_app)
    (message,) = receiver.messages()
    assert message["sk"] == "ORDER#7@1" and message["table"] == orders.tables.command
    assert message["content"] == {"status": "finish:FINISHED", "source": "POST /api/order"}
