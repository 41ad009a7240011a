"""The engine a test session runs on, and migrated apps on fresh table prefixes.

An :class:`Engine` is in-process moto (``endpoint`` ``None``) or a URL (the moto server,
DynamoDB Local, any DynamoDB-compatible engine). One engine serves a whole test session;
isolation comes from the table prefix: :meth:`Engine.app` builds an app on a prefix no
table has yet, so each test starts with empty tables and empty streams of its own.

In-process moto is patched in only inside :meth:`Engine.active` (with :data:`TEST_ENV` in
the environment); its data stays in moto's backends between blocks, so the engine is
started once, not per test. A test that starts a mock of its own (``with mock_aws():``
outside any active block) resets moto's backends as always: the next app simply gets
fresh tables again.

A fresh prefix makes ``migrate`` cheap: no table can exist yet, so
:class:`~cqrs.testing.fresh_tables.FreshTables` answers migrate's "does it exist?" without
a request and skips the wait for a table the engine created ACTIVE. What is created is
exactly what ``migrate`` plans (the conformance cases check that a full ``migrate``
afterwards changes nothing).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from unittest import mock

from .pool import TablePool

if TYPE_CHECKING:
    import boto3

    from ..app import Cqrs
    from ..core.settings import Settings
    from ..schema.definitions import TableDefinition
    from ..store.clients import Clients

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


def external_engine() -> str | None:
    """The external engine endpoint the tests run against, if any."""
    return os.environ.get(ENGINE_ENV) or None


def fresh_prefix() -> str:
    """A table prefix no table carries yet (``t`` + 12 random hex digits + ``-``)."""
    return f"t{uuid.uuid4().hex[:12]}-"


def local_clients(settings: Settings, session: boto3.session.Session | None = None) -> Clients:
    """Clients for a local engine that take nothing from the environment: placeholder
    credentials, the settings' region, no account-id endpoints. With no endpoint in
    ``settings`` they are for an in-process moto mock the caller started.

    ``session``: a boto3 session to build them from (one that has built clients before
    builds new ones in milliseconds: it keeps the service models it loaded).
    """
    import boto3
    from botocore.config import Config

    from ..store.clients import LOCAL_CREDENTIALS, Clients, attribute_objects, client_options

    options = {**client_options(settings), **LOCAL_CREDENTIALS}
    options["config"] = options["config"].merge(Config(account_id_endpoint_mode="disabled"))
    session = session or boto3.session.Session(region_name=settings.region)
    return Clients(
        dynamodb=session.client("dynamodb", region_name=settings.region, **options),
        streams=session.client("dynamodbstreams", region_name=settings.region, **options),
        objects=attribute_objects(settings, session, LOCAL_CREDENTIALS),
    )


def migrate_fresh(app: Cqrs, *, wait: bool = True) -> None:
    """Create the tables of ``app``, whose prefix no table carries yet, as ``migrate`` would
    (``wait=False``: the engine creates tables ACTIVE, no need to wait for them)."""
    from ..schema.provision import migrate_tables
    from .fresh_tables import FreshTables

    admin = FreshTables(app.clients.dynamodb, app.settings.table_prefix, wait=wait)
    migrate_tables(admin, app.schema.definitions())


class Engine:
    """The DynamoDB engine of a test session: in-process moto (``endpoint`` ``None``) or a URL.

    ``with engine.active(): app = engine.app(tables_dir)`` gives a migrated app on a
    fresh prefix. ``creates_active``: the engine's ``CreateTable`` makes tables ACTIVE at
    once, so nobody waits for them (default: only in process; the ``moto_server`` fixture
    says so of its server). Thread-safe; building apps in parallel threads is fine.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        region: str = REGION,
        creates_active: bool | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.creates_active = endpoint is None if creates_active is None else creates_active
        self._session: boto3.session.Session | None = None
        self._lock = threading.Lock()
        self._used = False
        self.pool = TablePool()  # in process: recycled table sets (see lease)

    @property
    def in_process(self) -> bool:
        """Whether this is in-process moto (patched in by :meth:`active`)."""
        return self.endpoint is None

    def __repr__(self) -> str:
        return f"Engine({self.endpoint or 'in-process moto'})"

    @contextmanager
    def active(self) -> Iterator[Engine]:
        """:data:`TEST_ENV` in the environment and, in process, moto patched in, inside the
        block (blocks nest); moto's data is kept when the block ends."""
        with fake_aws_env():
            if not self.in_process:
                yield self
                return
            from moto import mock_aws

            patched = mock_aws()
            patched.start(reset=False)
            self._used = True
            try:
                yield self
            finally:
                patched.stop(remove_data=False)

    def session(self) -> boto3.session.Session:
        """The boto3 session every client of this engine is built from (built once)."""
        with self._lock:
            if self._session is None:
                if self.in_process:
                    import moto  # noqa: F401  (its request hook must be in the session)
                import boto3

                self._session = boto3.session.Session(region_name=self.region)
            return self._session

    def settings(self, tables_dir: Path, prefix: str) -> Settings:
        """Settings of an app on this engine."""
        from ..core.settings import Settings

        return Settings(
            endpoint_url=self.endpoint,
            region=self.region,
            table_prefix=prefix,
            tables_dir=tables_dir,
        )

    def app(self, tables_dir: Path, prefix: str | None = None, *, migrate: bool = True) -> Cqrs:
        """An app on this engine, on a fresh prefix (or ``prefix``), migrated unless told not.

        A fresh prefix is migrated with :func:`migrate_fresh`; a given one with a full
        ``migrate`` (its tables may exist). In process, call it inside :meth:`active`.
        """
        from ..app import Cqrs

        settings = self.settings(tables_dir, prefix or fresh_prefix())
        app = Cqrs(settings, clients=local_clients(settings, self.session()))
        if migrate and prefix is None:
            migrate_fresh(app, wait=not self.creates_active)
        elif migrate:
            app.migrate()
        return app

    @contextmanager
    def lease(self, tables_dir: Path) -> Iterator[Cqrs]:
        """Like :meth:`app` (a migrated app on a fresh prefix), for the block. In process the
        tables are recycled (:mod:`cqrs.testing.pool`): emptied when the block ends and,
        if a test left their shape alone, renamed to the next lease's fresh prefix."""
        if not self.in_process or not self.pool.enabled:
            yield self.app(tables_dir)
            return
        app = self.app(tables_dir, fresh_prefix(), migrate=False)
        prefix = app.settings.table_prefix
        definitions = app.schema.definitions()
        key = _pool_key(prefix, definitions)
        held = self.pool.take(key, prefix)
        if held is None:
            migrate_fresh(app, wait=not self.creates_active)
            held = self.pool.hold(prefix, [d.name for d in definitions])
        try:
            yield app
        finally:
            self.pool.give_back(key, held)

    def close(self) -> None:
        """Drop what this engine left in moto's in-process backends (nothing for a URL)."""
        if self.in_process and self._used:
            from moto import mock_aws

            with fake_aws_env():
                patched = mock_aws()
                patched.start(reset=False)
                patched.stop(remove_data=True)  # resets only if no other mock is active
            self._used = False


def _pool_key(prefix: str, definitions: list[TableDefinition]) -> str:
    """What tables a prefix holds, prefix left out: sets with equal keys are interchangeable."""
    shapes = [(d.name[len(prefix) :], d.spec) for d in definitions]
    return json.dumps(shapes, sort_keys=True, default=str)


_shared: dict[str | None, Engine] = {}
_shared_lock = threading.Lock()


def shared_engine(endpoint: str | None = None, *, creates_active: bool | None = None) -> Engine:
    """The process's one :class:`Engine` for ``endpoint`` (``None``: in-process moto);
    ``creates_active`` (if given) is set on it."""
    with _shared_lock:
        engine = _shared.get(endpoint)
        if engine is None:
            engine = _shared[endpoint] = Engine(endpoint)
        if creates_active is not None:
            engine.creates_active = creates_active
        return engine


def close_shared_engines() -> None:
    """Close every shared engine (the pytest plugin does it when the session ends)."""
    with _shared_lock:
        engines = list(_shared.values())
        _shared.clear()
    for engine in engines:
        engine.close()


def make_test_app(tables_dir: Path, endpoint_url: str | None, prefix: str | None = None) -> Cqrs:
    """A migrated app on a unique table prefix (or ``prefix``), on ``endpoint_url``
    (``None``: the moto mock the caller activated).

    Its clients are :func:`local_clients`: they do not depend on the environment.
    """
    return shared_engine(endpoint_url).app(tables_dir, prefix)
