"""No global side effects: neither the library nor its pytest plugin changes ``os.environ``.

- the embedded engine end to end (build, migrate, publish, sync) leaves the process
  environment as it found it;
- loading the ``cqrs`` pytest plugin changes nothing: a test that uses no cqrs
  fixture sees the environment it was started with, and what a fixture sets is
  gone after it;
- the fixtures need nothing from the environment (no AWS variables at all).

Each check runs in a fresh interpreter, so nothing set by this session leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"
DISTINCTIVE = "AKIA-CQRS-GLOBAL-STATE-CHECK"


def without_aws(env: dict[str, str]) -> dict[str, str]:
    """``env`` minus every ``AWS_*`` and ``CQRS_*`` variable."""
    return {k: v for k, v in env.items() if not k.startswith(("AWS_", "CQRS_"))}


EMBEDDED_ROUND_TRIP = """
import json, os
snapshot = dict(os.environ)
from cqrs import CommandInput, Cqrs, InvokeContext, SYSTEM
app = Cqrs.from_env()
app.migrate()
orders = app.entity("order")
ctx = InvokeContext(tenant_code="acme", user_id="alice")
orders.commands.publish_async(
    CommandInput(pk="ORDER#acme", sk="ORDER#G-1", code="G-1", name="Global",
                 tenant_code="acme", type="ORDER", attributes={"n": 1}),
    ctx,
)
report = app.sync()
row = orders.data.get("ORDER#acme", "ORDER#G-1", consistent=True, context=SYSTEM)
changed = sorted(k for k in {*snapshot, *os.environ} if snapshot.get(k) != os.environ.get(k))
print(json.dumps({"failed": report.failed, "synced": row is not None, "changed": changed}))
"""


@pytest.mark.parametrize("aws", ["none", "set"])
def test_embedded_round_trip_leaves_the_environment_alone(aws: str) -> None:
    env = without_aws(dict(os.environ))
    env |= {"CQRS_ENDPOINT_URL": "embedded", "CQRS_TABLES_DIR": str(FIXTURE_TABLES)}
    if aws == "set":
        env |= {"AWS_ACCESS_KEY_ID": DISTINCTIVE, "AWS_SECRET_ACCESS_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-c", EMBEDDED_ROUND_TRIP],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"failed": 0, "synced": True, "changed": []}


PLAIN_TESTS = f"""
import os

def test_plain_first():
    assert os.environ.get("AWS_ACCESS_KEY_ID") == {DISTINCTIVE!r}
    assert "AWS_ACCOUNT_ID_ENDPOINT_MODE" not in os.environ

def test_with_the_app(cqrs_app):
    assert os.environ["AWS_ACCESS_KEY_ID"] != {DISTINCTIVE!r}  # placeholders while it is active

def test_plain_after_the_fixture():
    assert os.environ.get("AWS_ACCESS_KEY_ID") == {DISTINCTIVE!r}
    assert "AWS_ACCOUNT_ID_ENDPOINT_MODE" not in os.environ
"""


def _inner_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import pytest\nfrom pathlib import Path\n\n"
        "@pytest.fixture\ndef cqrs_tables_dir():\n"
        f"    return Path({str(FIXTURE_TABLES)!r})\n"
    )


def test_plugin_leaves_the_environment_of_plain_tests_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith(("AWS_", "CQRS_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DISTINCTIVE)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    _inner_conftest(pytester)
    pytester.makepyfile(test_plain=PLAIN_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")

    result.assert_outcomes(passed=3)


NO_AWS_TESTS = """
import os
from cqrs import CommandInput, Cqrs, InvokeContext, SYSTEM, Settings

def test_cqrs_app_needs_no_aws_variables(cqrs_app):
    orders = cqrs_app.entity("order")
    ctx = InvokeContext(tenant_code="acme", user_id="alice")
    orders.commands.publish_async(
        CommandInput(pk="ORDER#acme", sk="ORDER#N-1", code="N-1", name="n",
                     tenant_code="acme", type="ORDER"),
        ctx,
    )
    assert cqrs_app.sync().failed == 0
    assert orders.data.get("ORDER#acme", "ORDER#N-1", context=SYSTEM, consistent=True)
    # an app the test builds itself (from the environment) reaches the same engine
    own = Cqrs(Settings(tables_dir=cqrs_app.settings.tables_dir,
                        table_prefix=cqrs_app.settings.table_prefix))
    assert own.entity("order").commands.latest_version("ORDER#acme", "ORDER#N-1",
                                                       context=SYSTEM) == 1

def test_nothing_is_left_behind():
    assert not [k for k in os.environ if k.startswith("AWS_")]
"""


def test_cqrs_app_works_without_any_aws_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith(("AWS_", "CQRS_"))]:
        monkeypatch.delenv(key)
    _inner_conftest(pytester)
    pytester.makepyfile(test_no_aws=NO_AWS_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")

    result.assert_outcomes(passed=2)
