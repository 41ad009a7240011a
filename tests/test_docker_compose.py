"""docker-compose.yml: DynamoDB Local on 8000 and dynamodb-admin on 8001 wired to it.

Docker is not needed: the file is parsed and its service definitions checked.
"""

from __future__ import annotations

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


def test_only_the_two_services(services: dict[str, Any]) -> None:
    assert sorted(_image(s) for s in services.values()) == [
        "aaronshaf/dynamodb-admin",
        "amazon/dynamodb-local",
    ]
