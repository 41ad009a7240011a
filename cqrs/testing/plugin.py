"""pytest plugin: apps on moto with migrated tables, stream draining, request counting.

Installed as the ``cqrs`` pytest plugin (entry point ``pytest11``). Loading it changes
nothing: the environment is only touched by the fixtures below, while they are
active, and restored afterwards. Fixtures:

- ``cqrs_app``: a migrated :class:`~cqrs.app.Cqrs` with empty tables and streams of its
  own: a fresh table prefix on the session's engine (in-process moto, started once per
  session; or ``CQRS_TEST_ENDPOINT_URL``, e.g. DynamoDB Local); while it is active the
  environment holds :data:`TEST_ENV` (placeholder credentials, so nothing can reach AWS
  by accident);
- ``cqrs_engine``: that session engine (:class:`~cqrs.testing.engine.Engine`):
  ``with cqrs_engine.active(): app = cqrs_engine.app(tables_dir)``;
- ``cqrs_env``: just :data:`TEST_ENV` for one test (to build your own clients);
- ``drain``: ``drain(app)`` pulls the real stream records through the synchronizer;
- ``moto_server``: the endpoint URL of a moto server on 127.0.0.1 (per session), with
  atomic requests (see :mod:`cqrs.testing.local_server`);
- ``server_app``: a migrated app on that server (a real HTTP endpoint, for threads),
  fresh prefix;
- ``cqrs_tables_dir``: override to point at your ``tables/`` (default: ``CQRS_TABLES_DIR``
  or ``./tables``).

Helpers: :func:`migrated_app` (the ``cqrs_app`` context manager, for fixtures of any
scope), :func:`fake_aws_env`, :func:`stream_records` reads stream records without
handling them (to reorder or duplicate them), :func:`table_items` and
:func:`clear_table`, :class:`RequestCounter` counts DynamoDB requests.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .engine import (
    ENGINE_ENV,
    REGION,
    TEST_ENV,
    TEST_ENV_UNSET,
    Engine,
    close_shared_engines,
    external_engine,
    fake_aws_env,
    fresh_prefix,
    local_clients,
    make_test_app,
    shared_engine,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.client import BaseClient
    from botocore.model import OperationModel

    from ..app import Cqrs
    from ..core.items import Item
    from ..sync.follower import PollReport

__all__ = [
    "ENGINE_ENV",
    "REGION",
    "TEST_ENV",
    "TEST_ENV_UNSET",
    "Engine",
    "RequestCounter",
    "clear_table",
    "counting",
    "external_engine",
    "fake_aws_env",
    "free_port",
    "fresh_prefix",
    "local_clients",
    "make_test_app",
    "migrated_app",
    "shared_engine",
    "stream_records",
    "table_items",
]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop what the session's engines left in moto's in-process backends."""
    close_shared_engines()


@pytest.fixture
def cqrs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """:data:`TEST_ENV` in the environment for this test only (restored after it)."""
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    for key in TEST_ENV_UNSET:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def cqrs_tables_dir() -> Path:
    """The tables/ folder the test apps are built from."""
    return Path(os.environ.get("CQRS_TABLES_DIR", "tables"))


@pytest.fixture(scope="session")
def cqrs_engine() -> Engine:
    """The session's engine: in-process moto, or ``CQRS_TEST_ENDPOINT_URL`` if set."""
    return shared_engine(external_engine())


@contextmanager
def migrated_app(tables_dir: Path) -> Iterator[Cqrs]:
    """A migrated app on a fresh prefix of the session's engine (in-process moto, or
    ``CQRS_TEST_ENDPOINT_URL``), for fixtures of any scope; :func:`fake_aws_env` (and, in
    process, moto) is in force inside the block."""
    engine = shared_engine(external_engine())
    with engine.active(), engine.lease(tables_dir) as app:
        yield app


@pytest.fixture
def cqrs_app(cqrs_engine: Engine, cqrs_tables_dir: Path) -> Iterator[Cqrs]:
    """A migrated app with empty tables and streams of its own (a fresh table prefix) on
    the session's engine; :data:`TEST_ENV` is in the environment while it is active."""
    with cqrs_engine.active(), cqrs_engine.lease(cqrs_tables_dir) as app:
        yield app


@pytest.fixture
def drain() -> Callable[[Cqrs], PollReport]:
    """``drain(app)``: pull every new stream record through the synchronizer."""

    def _drain(app: Cqrs) -> PollReport:
        return app.sync()

    return _drain


def stream_records(app: Cqrs) -> list[dict[str, Any]]:
    """Every record in the app's streamed tables, in Lambda's shape, not yet handled."""
    from ..sync.follower import MemoryCheckpoints

    return app.follower(checkpoints=MemoryCheckpoints()).read_records()


def table_items(app: Cqrs, table: str, *, pk: str | None = None) -> list[Item]:
    """Every item of ``table`` (only partition ``pk`` if given): consistent, all pages."""
    store = app.clients.store
    if pk is None:
        return list(store.scan(table, consistent=True))
    from ..store import equals

    return list(store.query(table, equals("pk", pk), consistent=True))


def clear_table(app: Cqrs, table: str) -> None:
    """Delete every item of ``table`` (tests resetting a read model between runs)."""
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in table_items(app, table)]
    app.clients.store.batch_write(table, deletes=keys)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint of a moto server on 127.0.0.1 (or the external engine, if set).

    It leaves the environment alone: apps built on it get placeholder credentials
    (:func:`cqrs.store.clients.client_options`); request ``cqrs_env`` to build raw clients.
    """
    endpoint = external_engine()
    if endpoint:
        yield endpoint
        return
    from .local_server import LocalServer

    server = LocalServer(free_port())
    server.start()
    shared_engine(server.endpoint, creates_active=True)  # moto's tables are ACTIVE at once
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def server_app(cqrs_env: None, moto_server: str, cqrs_tables_dir: Path) -> Cqrs:
    """A migrated app on the moto server (a real HTTP endpoint), fresh table prefix;
    :data:`TEST_ENV` is in the environment for the test."""
    return shared_engine(moto_server).app(cqrs_tables_dir)


class RequestCounter:
    """Counts DynamoDB (and Streams) API requests made through a boto3 client.

    ``with RequestCounter(app.clients.dynamodb) as n: ...`` then ``n.total`` and
    ``n.by_operation["PutItem"]``. Counts what botocore sends, before retries.
    """

    def __init__(self, *clients: BaseClient) -> None:
        self._clients = clients
        self.by_operation: Counter[str] = Counter()

    def _count(self, model: OperationModel, **_: object) -> None:
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
def counting(*clients: BaseClient) -> Iterator[RequestCounter]:
    """Context manager form of :class:`RequestCounter`."""
    with RequestCounter(*clients) as counter:
        yield counter
