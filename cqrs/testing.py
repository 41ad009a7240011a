"""pytest plugin: apps on moto with migrated tables, stream draining, request counting.

Installed as the ``cqrs`` pytest plugin (entry point ``pytest11``). Fixtures:

- ``cqrs_app``: a migrated :class:`~cqrs.app.Cqrs` on a fresh in-process moto
  (or on ``CQRS_TEST_ENDPOINT_URL`` — e.g. DynamoDB Local — with a unique
  table prefix per test);
- ``drain``: ``drain(app)`` pulls the real stream records through the synchronizer;
- ``moto_server``: the endpoint URL of a moto server on 127.0.0.1 (per session), with
  atomic requests (see :mod:`cqrs.local_server`);
- ``server_app``: a migrated app on that server (a real HTTP endpoint, for threads);
- ``cqrs_tables_dir``: override to point at your ``tables/`` (default: ``CQRS_TABLES_DIR``
  or ``./tables``).

Helpers: :func:`stream_records` reads stream records without handling them (to
reorder or duplicate them), :class:`RequestCounter` counts DynamoDB requests.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .app import Cqrs
    from .stream_reader import PollReport

REGION = "ap-northeast-1"
ENGINE_ENV = "CQRS_TEST_ENDPOINT_URL"

_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # botocore >= 1.44.4 otherwise makes in-process moto answer DescribeStream
    # with "Not yet implemented".
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def pytest_configure(config: pytest.Config) -> None:
    """Make sure no test can reach AWS with real credentials by accident."""
    for key, value in _TEST_ENV.items():
        os.environ[key] = value


def external_engine() -> str | None:
    """The external engine endpoint the tests run against, if any."""
    return os.environ.get(ENGINE_ENV) or None


def make_test_app(tables_dir: Path, endpoint_url: str | None, prefix: str | None = None) -> Cqrs:
    """A migrated app with a unique table prefix, on ``endpoint_url`` (None: active moto mock)."""
    from .app import Cqrs
    from .clients import make_clients
    from .settings import Settings

    settings = Settings(
        endpoint_url=endpoint_url,
        region=REGION,
        table_prefix=prefix or f"t{uuid.uuid4().hex[:8]}-",
        tables_dir=tables_dir,
    )
    app = Cqrs(settings, clients=make_clients(settings))
    app.migrate()
    return app


@pytest.fixture
def cqrs_tables_dir() -> Path:
    """The tables/ folder the test apps are built from."""
    return Path(os.environ.get("CQRS_TABLES_DIR", "tables"))


@contextmanager
def migrated_app(tables_dir: Path) -> Iterator[Cqrs]:
    """A migrated app on a fresh in-process moto, or on ``CQRS_TEST_ENDPOINT_URL``
    (for fixtures of any scope)."""
    endpoint = external_engine()
    if endpoint:
        yield make_test_app(tables_dir, endpoint)
        return
    from moto import mock_aws

    with mock_aws():
        yield make_test_app(tables_dir, None)


@pytest.fixture
def cqrs_app(cqrs_tables_dir: Path) -> Iterator[Cqrs]:
    """A migrated app on a fresh in-process moto, or on ``CQRS_TEST_ENDPOINT_URL``."""
    with migrated_app(cqrs_tables_dir) as app:
        yield app


@pytest.fixture
def drain() -> Any:
    """``drain(app)``: pull every new stream record through the synchronizer."""

    def _drain(app: Cqrs) -> PollReport:
        return app.sync()

    return _drain


def stream_records(app: Cqrs) -> list[dict[str, Any]]:
    """Every record in the app's streamed tables, in Lambda's shape, not yet handled."""
    from .stream_reader import MemoryCheckpoints

    return app.follower(checkpoints=MemoryCheckpoints()).read_records()


def table_items(app: Cqrs, table: str, *, pk: str | None = None) -> list[dict[str, Any]]:
    """Every item of ``table`` (only partition ``pk`` if given): consistent, all pages."""
    from .batch import paginate
    from .codec import serialize

    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    if pk is not None:
        request["KeyConditionExpression"] = "pk = :pk"
        request["ExpressionAttributeValues"] = serialize({":pk": pk})
    return list(paginate(app.clients.dynamodb, "query" if pk is not None else "scan", request))


def clear_table(app: Cqrs, table: str) -> None:
    """Delete every item of ``table`` (tests resetting a read model between runs)."""
    from .batch import batch_delete

    batch_delete(app.clients.dynamodb, table, [{"pk": i["pk"], "sk": i["sk"]}
                                               for i in table_items(app, table)])  # fmt: skip


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint of a moto server on 127.0.0.1 (or the external engine, if set)."""
    endpoint = external_engine()
    if endpoint:
        yield endpoint
        return
    from .local_server import LocalServer

    server = LocalServer(free_port())
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def server_app(moto_server: str, cqrs_tables_dir: Path) -> Cqrs:
    """A migrated app on the moto server (a real HTTP endpoint), unique table prefix."""
    return make_test_app(cqrs_tables_dir, moto_server)


class RequestCounter:
    """Counts DynamoDB (and Streams) API requests made through a boto3 client.

    ``with RequestCounter(app.clients.dynamodb) as n: ...`` then ``n.total`` and
    ``n.by_operation["PutItem"]``. Counts what botocore sends, before retries.
    """

    def __init__(self, *clients: Any) -> None:
        self._clients = clients
        self.by_operation: Counter[str] = Counter()

    def _count(self, model: Any, **_: Any) -> None:
        self.by_operation[model.name] += 1

    def __enter__(self) -> RequestCounter:
        for client in self._clients:
            client.meta.events.register("before-call.*.*", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call.*.*", self._count)

    @property
    def total(self) -> int:
        """Requests counted so far."""
        return sum(self.by_operation.values())

    def reset(self) -> None:
        """Start counting from zero."""
        self.by_operation.clear()


@contextmanager
def counting(*clients: Any) -> Iterator[RequestCounter]:
    """Context manager form of :class:`RequestCounter`."""
    with RequestCounter(*clients) as counter:
        yield counter
