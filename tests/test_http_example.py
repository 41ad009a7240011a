"""The FastAPI order service (examples/orders_api.py): every route through FastAPI's test
client, errors as statuses with JSON bodies, the context from the request (a bearer token
locally, the Lambda event through Mangum), and the service over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the http extra is not installed")

import httpx
import uvicorn
from fastapi.testclient import TestClient

from cqrs import Cqrs
from cqrs.http import UNVERIFIED_JWT_ENV, dev_token, status_for
from cqrs.testing.plugin import free_port
from examples import orders_api

ALICE = {"sub": "alice", "custom:tenant": "acme"}
MALLORY = {"sub": "mallory", "custom:tenant": "globex"}
#: No tenant of her own, a role on acme but no cross-tenant role: the header is refused.
EVE = {"sub": "eve", "custom:roles": json.dumps([{"tenant": "acme", "role": "admin"}])}
ROOT = {"sub": "root", "custom:roles": json.dumps([{"tenant": "", "role": "system_admin"}])}


def auth(claims: dict[str, Any], tenant: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {dev_token(claims)}"}
    return {**headers, "x-tenant-code": tenant} if tenant else headers


@pytest.fixture
def client(cqrs_app: Cqrs, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv(UNVERIFIED_JWT_ENV, "1")
    with TestClient(orders_api.create_api(cqrs_app)) as client:
        yield client


def create(client: TestClient, code: str, **attributes: Any) -> dict[str, Any]:
    body = {"code": code, "name": f"Order {code}", "attributes": attributes}
    response = client.post("/orders", json=body, headers=auth(ALICE))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_then_read_by_key_and_by_code(client: TestClient, cqrs_app: Cqrs) -> None:
    created = create(client, "A-1", lines=[{"sku": "pen", "qty": 2}])
    assert (created["pk"], created["sk"], created["version"]) == ("ORDER#acme", "ORDER#A-1", 1)
    assert created["tenantCode"] == "acme" and created["createdBy"] == "alice"
    assert created["createdIp"] == "testclient"
    assert created["attributes"] == {"status": "open", "lines": [{"sku": "pen", "qty": 2}],
                                     "note": None}  # fmt: skip
    cqrs_app.sync()
    by_key = client.get("/orders/A-1", headers=auth(ALICE)).json()
    by_code = client.get("/orders/by-code/A-1", headers=auth(ALICE)).json()
    assert by_key == by_code == created


def test_full_update_partial_update_delete_and_history(client: TestClient, cqrs_app: Cqrs) -> None:
    create(client, "A-1")
    replaced = client.put(
        "/orders/A-1",
        json={"version": 1, "name": "Renamed", "attributes": {"status": "paid"}},
        headers=auth(ALICE),
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["name"]) == (2, "Renamed")
    patched = client.patch(
        "/orders/A-1", json={"version": 2, "attributes": {"note": "rush"}}, headers=auth(ALICE)
    ).json()
    assert patched["version"] == 3
    assert patched["attributes"]["status"] == "paid" and patched["attributes"]["note"] == "rush"
    deleted = client.delete("/orders/A-1", params={"version": 3}, headers=auth(ALICE))
    assert deleted.status_code == 200 and deleted.json()["isDeleted"] is True
    cqrs_app.sync()
    assert client.get("/orders/A-1", headers=auth(ALICE)).status_code == 404
    history = client.get("/orders/A-1/history", headers=auth(ALICE)).json()
    assert [h["version"] for h in history] == [1, 2, 3, 4]
    assert history[1]["name"] == "Renamed"


def test_list_with_a_cursor(client: TestClient, cqrs_app: Cqrs) -> None:
    for n in range(5):
        create(client, f"A-{n}")
    cqrs_app.sync()
    codes: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/orders", params=params, headers=auth(ALICE)).json()
        codes += [item["code"] for item in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert codes == [f"A-{n}" for n in range(5)]
    bad = client.get("/orders", params={"cursor": "tampered"}, headers=auth(ALICE))
    assert bad.status_code == 400 and bad.json()["error"] == "InterfaceError"


def test_a_stale_version_is_409_with_the_versions(client: TestClient) -> None:
    create(client, "A-1")
    body = {"version": 0, "name": "again", "attributes": {}}
    response = client.put("/orders/A-1", json=body, headers=auth(ALICE))
    assert response.status_code == 409
    assert response.json() == {
        "error": "VersionConflictError",
        "message": response.json()["message"],
        "retryable": False,
        "expected": 0,
        "actual": 1,
    }


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        # invalid attributes for the entity's model (qty >= 1 is the body model's; status type)
        ({"json": {"code": "A-9", "name": "n", "attributes": {"lines": "x"}}}, 400,
         "RequestValidationError"),
        ({"json": {"code": "A#9", "name": "n"}}, 400, "InvalidKeyError"),
        ({"json": {"code": "A-9", "name": "n", "attributes": {"note": "x" * 420_000}}}, 413,
         "ItemTooLargeError"),
    ],
)  # fmt: skip
def test_bad_input_statuses(
    client: TestClient, request_kwargs: dict[str, Any], status: int, error: str
) -> None:
    response = client.post("/orders", headers=auth(ALICE), **request_kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and response.json()["retryable"] is False


def test_not_found_is_404(client: TestClient) -> None:
    for path in ("/orders/nope", "/orders/by-code/nope", "/orders/nope/history"):
        response = client.get(path, headers=auth(ALICE))
        assert (response.status_code, response.json()["error"]) == (404, "NotFoundError")
    patched = client.patch("/orders/nope", json={"version": -1, "name": "x"}, headers=auth(ALICE))
    assert patched.status_code == 404


def test_missing_or_bad_identity_is_400(client: TestClient) -> None:
    assert client.get("/orders").status_code == 400
    no_tenant = client.get("/orders", headers=auth({"sub": "u"}))
    assert (no_tenant.status_code, no_tenant.json()["error"]) == (400, "InvalidClaimsError")


def test_another_tenant_is_403_and_nothing_is_written(client: TestClient, cqrs_app: Cqrs) -> None:
    create(client, "A-1")
    cqrs_app.sync()
    forbidden = client.get("/orders/A-1", headers=auth(EVE, tenant="acme"))
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "TenantForbiddenError")
    body = {"code": "M-1", "name": "sneaky"}
    assert client.post("/orders", json=body, headers=auth(EVE, "acme")).status_code == 403
    cqrs_app.sync()
    listed = client.get("/orders", headers=auth(ALICE)).json()
    assert [i["code"] for i in listed["items"]] == ["A-1"]
    # A user bound to a tenant acts on it whatever the header says (MBC ignores it then);
    # a system admin may select acme.
    assert client.get("/orders/A-1", headers=auth(MALLORY, tenant="acme")).status_code == 404
    admin = client.get("/orders/A-1", headers=auth(ROOT, tenant="ACME"))
    assert admin.status_code == 200 and admin.json()["tenantCode"] == "acme"


def test_no_unverified_tokens_unless_enabled(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNVERIFIED_JWT_ENV)
    response = client.get("/orders", headers=auth(ALICE))
    assert response.status_code == 400 and UNVERIFIED_JWT_ENV in response.json()["message"]


def test_openapi_describes_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert paths == {
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{code}", "put"),
        ("/orders/{code}", "patch"),
        ("/orders/{code}", "delete"),
        ("/orders/{code}", "get"),
        ("/orders/by-code/{code}", "get"),
        ("/orders/{code}/history", "get"),
    }


def test_every_error_class_has_its_status() -> None:
    from cqrs.core import errors

    assert status_for(errors.ItemTooLargeError("x")) == 413
    assert status_for(errors.InvalidNumberError("x")) == 400
    assert status_for(errors.TenantMismatchError("a", "b")) == 403
    assert status_for(errors.TenantForbiddenError("a", None, "u")) == 403
    assert status_for(errors.NotFoundError("x")) == 404
    assert status_for(errors.VersionConflictError("p", "s", 1, 2)) == 409
    assert status_for(errors.ConditionFailedError("x")) == 409
    assert status_for(errors.ThrottledError("x")) == 503
    assert status_for(errors.TableNotFoundError("x")) == 500
    assert status_for(errors.MissingContextError("x")) == 500


# -- on Lambda: Mangum and an HTTP API event ----------------------------------------------


def http_api_event(
    method: str, path: str, claims: dict[str, Any], body: Any = None
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "test"},
            "requestId": "apigw-1",
            "routeKey": "$default",
            "stage": "$default",
        },
    }  # fmt: skip


def test_mangum_handler_takes_the_context_from_the_event(
    cqrs_app: Cqrs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mangum import Mangum

    monkeypatch.delenv(UNVERIFIED_JWT_ENV, raising=False)  # the authorizer's claims only
    handler = Mangum(orders_api.create_api(cqrs_app), lifespan="off")
    lambda_context = type("Context", (), {"aws_request_id": "lambda-1"})()
    body = {"code": "L-1", "name": "from Lambda"}
    response = handler(http_api_event("POST", "/orders", ALICE, body), lambda_context)
    assert response["statusCode"] == 201, response
    created = json.loads(response["body"])
    assert (created["createdBy"], created["createdIp"]) == ("alice", "203.0.113.9")
    assert created["requestId"] == "lambda-1"
    denied = handler(http_api_event("GET", "/orders", {"sub": "x"}), lambda_context)
    assert denied["statusCode"] == 400


# -- over real HTTP -----------------------------------------------------------------------


@pytest.fixture
def served(server_app: Cqrs, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The service under uvicorn on a free port of 127.0.0.1, with a follower syncing.

    On the moto server (requests atomic): in-process moto is not thread-safe, and a read
    in uvicorn's thread could see a row the follower's thread is still writing."""
    cqrs_app = server_app
    monkeypatch.setenv(UNVERIFIED_JWT_ENV, "1")
    port = free_port()
    config = uvicorn.Config(
        orders_api.create_api(cqrs_app), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.run, daemon=True),
        threading.Thread(target=cqrs_app.follower().follow, args=(stop, 0.05), daemon=True),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


@pytest.mark.slow
def test_over_real_http(served: str) -> None:
    with httpx.Client(base_url=served, headers=auth(ALICE), timeout=10) as http:
        created = http.post("/orders", json={"code": "H-1", "name": "over HTTP"})
        assert created.status_code == 201, created.text
        assert created.json()["createdIp"] == "127.0.0.1"
        deadline = time.monotonic() + 20
        while (found := http.get("/orders/H-1")).status_code == 404:  # the follower syncs
            assert time.monotonic() < deadline, "the follower did not sync"
            time.sleep(0.05)
        assert found.json()["name"] == "over HTTP"
        conflict = http.put("/orders/H-1", json={"version": 0, "name": "x", "attributes": {}})
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "application/json"
        assert http.get("/openapi.json").json()["info"]["title"] == "orders"


@pytest.mark.slow
def test_the_documented_command_serves_on_the_embedded_engine() -> None:
    """``python -m examples.orders_api`` (README, "Serve HTTP"): migrates, follows, serves."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CQRS_", "AWS_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.orders_api", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        env={**env, "AWS_DEFAULT_REGION": "ap-northeast-1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=base, headers=auth(ALICE), timeout=5) as http:
            while True:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the service did not start"
                try:
                    http.get("/openapi.json")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            created = http.post("/orders", json={"code": "C-1", "name": "cli"})
            if created.status_code != 201:  # the server's own traceback says why
                process.terminate()
                pytest.fail(f"{created.status_code} {created.text}\n{process.communicate()[0]}")
            # Concurrent requests while its follower polls: one at a time on the engine.
            with ThreadPoolExecutor(8) as pool:
                codes = pool.map(
                    lambda n: (
                        http.post("/orders", json={"code": f"P-{n}", "name": "p"}).status_code
                    ),
                    range(16),
                )
                assert set(codes) == {201}
            while http.get("/orders/by-code/C-1").status_code == 404:  # its follower syncs
                assert time.monotonic() < deadline, "the follower did not sync"
                time.sleep(0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "tokens are NOT verified" in output
