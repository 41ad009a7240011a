"""docker-compose.yml: DynamoDB Local on 8000 and dynamodb-admin on 8001 wired to it.

Docker is not needed: the file is parsed and its service definitions checked, and
the DynamoDB Local healthcheck's command is run here with bash against local servers.
"""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    compose = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(compose, dict)
    found: dict[str, Any] = compose["services"]
    return found


def _image(service: dict[str, Any]) -> str:
    return str(service["image"]).split(":")[0]


def _published(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, from ``"8000:8000"`` style entries."""
    out = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        out[int(host)] = int(container)
    return out


def _dynamodb(services: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (name,) = [n for n, s in services.items() if _image(s) == "amazon/dynamodb-local"]
    return name, services[name]


def test_dynamodb_local(services: dict[str, Any]) -> None:
    _, dynamodb = _dynamodb(services)
    assert _published(dynamodb) == {8000: 8000}
    command = dynamodb["command"]
    args = command.split() if isinstance(command, str) else list(command)
    assert args[:2] == ["-jar", "DynamoDBLocal.jar"]
    assert "-sharedDb" in args
    assert "-inMemory" in args or dynamodb.get("volumes"), "in memory, or data on a volume"


def test_dynamodb_admin_points_at_dynamodb_local(services: dict[str, Any]) -> None:
    name, _ = _dynamodb(services)
    (admin,) = [s for s in services.values() if _image(s) == "aaronshaf/dynamodb-admin"]
    assert _published(admin) == {8001: 8001}
    environment = admin["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    endpoint = urlparse(environment["DYNAMO_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", name, 8000)
    depends_on = admin.get("depends_on", [])
    assert name in depends_on
    assert isinstance(depends_on, dict), "the long form: wait for a condition"
    assert depends_on[name] == {"condition": "service_healthy"}


def test_only_the_two_services(services: dict[str, Any]) -> None:
    assert sorted(_image(s) for s in services.values()) == [
        "aaronshaf/dynamodb-admin",
        "amazon/dynamodb-local",
    ]


# -- pinned images -----------------------------------------------------------------------

PINNED = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+$")


def test_every_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = str(service["image"])
        assert PINNED.match(image), f"{name}: {image} is not pinned to a version (x.y.z)"
        assert not image.endswith(":latest")


# -- the DynamoDB Local healthcheck ------------------------------------------------------


def _healthcheck(services: dict[str, Any]) -> dict[str, Any]:
    _, dynamodb = _dynamodb(services)
    check: dict[str, Any] = dynamodb["healthcheck"]
    return check


def _probe(services: dict[str, Any]) -> str:
    """The healthcheck's bash script, as the container runs it (compose's ``$$`` → ``$``)."""
    test = _healthcheck(services)["test"]
    assert test[:3] == ["CMD", "bash", "-c"], "bash, no shell lookup, no curl or wget"
    (script,) = test[3:]
    return str(script).replace("$$", "$")


def test_dynamodb_local_has_a_healthcheck_without_curl_or_wget(services: dict[str, Any]) -> None:
    check = _healthcheck(services)
    script = _probe(services)
    assert "/dev/tcp/127.0.0.1/8000" in script  # the container's own port
    assert not re.search(r"\b(curl|wget|nc|python)\b", script)
    assert check.get("disable") is not True
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check


class _Http(http.server.BaseHTTPRequestHandler):
    """Answers like DynamoDB Local does to an unsigned request: an HTTP 400."""

    def do_GET(self) -> None:
        self.send_response(400)
        self.end_headers()
        self.wfile.write(b'{"__type":"MissingAuthenticationToken"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run_probe(services: dict[str, Any], port: int) -> int:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = _probe(services).replace("/dev/tcp/127.0.0.1/8000", f"/dev/tcp/127.0.0.1/{port}")
    return subprocess.run([bash, "-c", script], timeout=10, capture_output=True).returncode


def test_the_probe_passes_on_an_http_server(services: dict[str, Any], http_port: int) -> None:
    assert _run_probe(services, http_port) == 0


def test_the_probe_fails_on_a_closed_port(services: dict[str, Any]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        assert _run_probe(services, port) != 0


def test_the_probe_fails_on_a_port_that_does_not_speak_http(services: dict[str, Any]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"SSH-2.0-OpenSSH\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        assert _run_probe(services, port) != 0
        thread.join(timeout=5)
