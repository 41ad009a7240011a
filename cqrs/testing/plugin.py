"""pytest plugin: apps on moto with migrated tables, stream draining, request counting.

Installed as the ``cqrs`` pytest plugin (entry point ``pytest11``). Loading it changes
nothing: the environment is only touched by the fixtures below, while they are
active, and restored afterwards. Fixtures:

- ``cqrs_app``: a migrated :class:`~cqrs.app.Cqrs` on a fresh in-process moto
  (or on ``CQRS_TEST_ENDPOINT_URL`` — e.g. DynamoDB Local — with a unique
  table prefix per test); while it is active the environment holds
  :data:`TEST_ENV` (placeholder credentials, so nothing can reach AWS by accident);
- ``cqrs_env``: just :data:`TEST_ENV` for one test (to build your own clients);
- ``drain``: ``drain(app)`` pulls the real stream records through the synchronizer;
- ``moto_server``: the endpoint URL of a moto server on 127.0.0.1 (per session), with
  atomic requests (see :mod:`cqrs.testing.local_server`);
- ``server_app``: a migrated app on that server (a real HTTP endpoint, for threads);
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
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..core.settings import Settings
    from ..store.clients import Clients
    from ..sync.follower import PollReport

REGION = "ap-northeast-1"
ENGINE_ENV = "CQRS_TEST_ENDPOINT_URL"

#: What the fixtures put in ``os.environ`` while they are active: placeholder credentials
#: (the ones local engines get, see :data:`cqrs.store.clients.LOCAL_CREDENTIALS`), the test
#: region, and no account-id endpoints (botocore >= 1.44.4 otherwise makes in-process
#: moto answer DescribeStream with "Not yet implemented").
TEST_ENV: Mapping[str, str] = MappingProxyType(
    {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
)

#: Removed while the fixtures are active, so real session tokens or profiles never mix in.
TEST_ENV_UNSET = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


@contextmanager
def fake_aws_env() -> Iterator[None]:
    """:data:`TEST_ENV` in ``os.environ`` (and :data:`TEST_ENV_UNSET` removed) inside the
    block; the whole environment is restored on exit. For fixtures of any scope."""
    with mock.patch.dict(os.environ, TEST_ENV):
        for key in TEST_ENV_UNSET:
            os.environ.pop(key, None)
        yield


@pytest.fixture
def cqrs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """:data:`TEST_ENV` in the environment for this test only (restored after it)."""
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    for key in TEST_ENV_UNSET:
        monkeypatch.delenv(key, raising=False)


def external_engine() -> str | None:
    """The external engine endpoint the tests run against, if any."""
    return os.environ.get(ENGINE_ENV) or None


def local_clients(settings: Settings) -> Clients:
    """Clients for a local engine that take nothing from the environment: placeholder
    credentials, the settings' region, no account-id endpoints. With no endpoint in
    ``settings`` they are for an in-process moto mock the caller started."""
    import boto3
    from botocore.config import Config

    from ..store.clients import LOCAL_CREDENTIALS, Clients, client_options

    options = {**client_options(settings), **LOCAL_CREDENTIALS}
    options["config"] = options["config"].merge(Config(account_id_endpoint_mode="disabled"))
    session = boto3.session.Session(region_name=settings.region)
    return Clients(
        dynamodb=session.client("dynamodb", **options),
        streams=session.client("dynamodbstreams", **options),
    )


def make_test_app(tables_dir: Path, endpoint_url: str | None, prefix: str | None = None) -> Cqrs:
    """A migrated app with a unique table prefix, on ``endpoint_url`` (None: active moto mock).

    Its clients are :func:`local_clients`: they do not depend on the environment.
    """
    from ..app import Cqrs
    from ..core.settings import Settings

    settings = Settings(
        endpoint_url=endpoint_url,
        region=REGION,
        table_prefix=prefix or f"t{uuid.uuid4().hex[:8]}-",
        tables_dir=tables_dir,
    )
    app = Cqrs(settings, clients=local_clients(settings))
    app.migrate()
    return app


@pytest.fixture
def cqrs_tables_dir() -> Path:
    """The tables/ folder the test apps are built from."""
    return Path(os.environ.get("CQRS_TABLES_DIR", "tables"))


@contextmanager
def migrated_app(tables_dir: Path) -> Iterator[Cqrs]:
    """A migrated app on a fresh in-process moto, or on ``CQRS_TEST_ENDPOINT_URL``
    (for fixtures of any scope); :func:`fake_aws_env` is in force inside the block."""
    with fake_aws_env():
        endpoint = external_engine()
        if endpoint:
            yield make_test_app(tables_dir, endpoint)
            return
        from moto import mock_aws

        with mock_aws():
            yield make_test_app(tables_dir, None)


@pytest.fixture
def cqrs_app(cqrs_tables_dir: Path) -> Iterator[Cqrs]:
    """A migrated app on a fresh in-process moto, or on ``CQRS_TEST_ENDPOINT_URL``;
    :data:`TEST_ENV` is in the environment while it is active."""
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
    from ..sync.follower import MemoryCheckpoints

    return app.follower(checkpoints=MemoryCheckpoints()).read_records()


def table_items(app: Cqrs, table: str, *, pk: str | None = None) -> list[dict[str, Any]]:
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
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def server_app(cqrs_env: None, moto_server: str, cqrs_tables_dir: Path) -> Cqrs:
    """A migrated app on the moto server (a real HTTP endpoint), unique table prefix;
    :data:`TEST_ENV` is in the environment for the test."""
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
