"""Shared fixtures: the cqrs pytest plugin (installed via entry point) plus test tables,
and which tests are ``slow`` (``make test-fast`` runs ``-m "not slow"``).

Marked ``slow`` here, so the test files stay as they are:

- every hypothesis search (a ``@given`` test, or one in :data:`SLOW` that runs an inner
  ``@given``);
- every test that runs pytest in a subprocess (``pytester``);
- the files in :data:`SLOW_FILES` and the tests in :data:`SLOW`: fault injection,
  contention (threads racing on one engine), fresh interpreters (subprocesses),
  servers and tools started per test, package builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cqrs.testing import free_port
from cqrs.testing.engine import external_engine
from cqrs.testing.local_server import LocalServer

FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"

#: Every test of these files.
SLOW_FILES = frozenset(
    {
        "test_global_state.py",  # fresh interpreters and pytest sessions
        "test_import_time.py",  # a fresh interpreter per check
        "test_cli_extra.py",  # the CLI in fresh interpreters
        "test_concurrency.py",  # threads racing on the moto server
        "test_concurrent_sync.py",  # concurrent deliveries, worker threads
        # fault injection: every case replays deliveries under fault schedules
        "test_faults.py",
        "test_faults_permanent.py",
        "test_faults_publish.py",
        # for the one-minute loop: whole-surface sweeps, servers, CLI runs, migrations
        "test_tenant_isolation.py",  # every public API against another tenant's keys
        "test_appsync.py",  # an HTTP server per test, timeouts
        "test_conformance_server.py",  # the moto server
        "test_cli_edges.py",  # the CLI end to end, one run per case
        "test_migrate.py",  # table creation and drift, many engines' worth of tables
        "test_data_migrations.py",  # migrations run through the CLI
        "test_readme.py",  # every README snippet on its own embedded engine
        "test_bad_input.py",  # 88 bad inputs, each checking every table is unchanged
        "test_tasks_input.py",  # the same for tasks
        "test_sync_failures.py",  # poison commands through their attempts and redrive
    }
)

#: file → test functions (parametrized ones by their function name).
SLOW: dict[str, frozenset[str]] = {
    # a hypothesis search run from inside the test (an inner ``@given``)
    "test_stream_order.py": frozenset({"test_any_delivery_gives_the_in_order_result"}),
    "test_sequences.py": frozenset({"test_concurrent_next_is_unique_and_gap_free"}),  # threads
    "test_devtools.py": frozenset(
        {
            "test_dev_command_stops_cleanly_on_sigint",  # a fresh interpreter
            "test_dev_serves_migrates_and_syncs",  # a server and a follower per test
            "test_dev_creates_the_bucket_of_large_attributes",  # the same
        }
    ),
    "test_cli_edges.py": frozenset({"test_embedded_app_is_refused"}),  # a fresh interpreter
    "test_deploy_template.py": frozenset({"test_cfn_lint_finds_nothing"}),  # cfn-lint
    "test_package.py": frozenset({"test_real_pip_build"}),  # pip builds a package
}


def is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` belongs to the slow tests (see the module docstring)."""
    path = getattr(item, "path", None)
    file = path.name if isinstance(path, Path) else ""
    name = getattr(item, "originalname", item.name)
    function = getattr(item, "obj", None)
    return (
        file in SLOW_FILES
        or name in SLOW.get(file, frozenset())
        or bool(getattr(function, "is_hypothesis_test", False))
        or "pytester" in getattr(item, "fixturenames", ())
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests ``slow`` (before ``-m`` selects)."""
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def cqrs_tables_dir() -> Path:
    """Test entities: order and cat. Only cqrs.json, as an MBC project has it: the
    table templates come from the package."""
    return FIXTURE_TABLES


@pytest.fixture(scope="session")
def s3_beside_engine() -> Iterator[str | None]:
    """An S3 endpoint for tests of large attributes: ``None`` on the in-process engine,
    which serves S3 itself; beside an external engine (DynamoDB Local serves no S3), a
    moto server of its own on 127.0.0.1."""
    if external_engine() is None:
        yield None
        return
    server = LocalServer(free_port())
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()
