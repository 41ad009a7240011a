"""What importing the Lambda handler loads: nothing for tests, the CLI or local engines.

The command line's own dependencies (the ``cli`` extra: typer, rich; click, which
older typer ran on) load only when the ``cqrs`` command runs.

Each check runs in a fresh interpreter (``sys.executable -c``) and inspects
``sys.modules``; no timing is asserted (see ``bench/`` for import times).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"

#: The command line's dependencies (the ``cli`` extra).
CLI_DEPENDENCIES = ("typer", "click", "rich")

#: Never needed by the Lambda handler.
HANDLER_FORBIDDEN = (
    "moto",
    "pytest",
    "cqrs.cli",
    "cqrs.testing",
    "cqrs.deploy",
    "flask",
    "werkzeug",
    *CLI_DEPENDENCIES,
)


def loaded(code: str, candidates: tuple[str, ...], **env: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; which ``candidates`` (or submodules) it loaded."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"c = {list(candidates)!r}\n"
        "print(json.dumps(sorted({x for x in c for m in list(sys.modules)"
        " if m == x or m.startswith(x + '.')})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_import_cqrs_aws_loads_no_tooling() -> None:
    assert loaded("import cqrs.aws", HANDLER_FORBIDDEN) == []


def test_import_cqrs_is_lazy() -> None:
    assert loaded("import cqrs", ("boto3", "botocore", "pydantic")) == []


def test_handler_cold_path_loads_no_tooling() -> None:
    """The first invocation builds the app (boto3, pydantic, ...) but still no tooling."""
    code = "import cqrs.aws\nassert cqrs.aws.handler({'Records': []}) == {'batchItemFailures': []}"
    env = {
        "CQRS_TABLES_DIR": str(FIXTURE_TABLES),
        "CQRS_ENDPOINT_URL": "http://127.0.0.1:9",  # never contacted: the batch is empty
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
    }
    assert loaded(code, HANDLER_FORBIDDEN, **env) == []


def test_import_cqrs_cli_loads_no_cli_dependency() -> None:
    """The console script's module is light: typer and rich load when ``main`` runs."""
    assert loaded("import cqrs.cli", CLI_DEPENDENCIES) == []
    assert loaded("import cqrs.cli\ncqrs.cli.main(['--version'])", ("typer", "rich")) != []


def test_import_cqrs_deploy_loads_no_cli_dependency() -> None:
    """``cqrs.deploy`` is a library too: rendering a template needs no typer or rich."""
    code = "import cqrs.deploy"
    assert loaded(code, CLI_DEPENDENCIES) == []


def test_building_the_app_loads_only_the_projection_path() -> None:
    """Building the handler's app reads settings without pydantic-settings and builds no
    injector, event bus or services (``tests/test_cold_start.py`` runs a real batch)."""
    code = "import cqrs.aws\ncqrs.aws.get_app().entity('order')"
    env = {
        "CQRS_TABLES_DIR": str(FIXTURE_TABLES),
        "CQRS_ENDPOINT_URL": "http://127.0.0.1:9",  # never contacted
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
    }
    unused = ("pydantic_settings", "injector", "cqrs.events", "cqrs.write", "cqrs.read")
    assert loaded(code, unused, **env) == []
