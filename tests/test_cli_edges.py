"""The ``cqrs`` command at its edges: every user error is one line on stderr, no traceback.

Exit codes: 2 for usage errors (arguments, options, settings, ``--app``, unknown
entities, the embedded engine where its tables would vanish), 1 for runtime
failures (DynamoDB unreachable, tables missing).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import cqrs
from cqrs.cli import load_user_app, main, one_line
from cqrs.core.errors import ConfigurationError
from cqrs.store import clients

FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: connection refused at once


@pytest.fixture(autouse=True)
def _no_embedded_engine_started() -> Iterator[None]:
    """No test here may start the in-process engine: it would stay for the whole session."""
    started = clients._embedded_mock
    yield
    assert clients._embedded_mock is started


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and the single stderr line of ``cqrs argv`` (asserted: one line, no traceback)."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cqrs"), err
    assert ": error: " in lines[0], err
    return code, lines[0]


def on(endpoint: str, prefix: str | None = None) -> list[str]:
    """Options pointing at ``endpoint`` with the fixture tables and a fresh prefix."""
    prefix = prefix or f"edge{uuid.uuid4().hex[:6]}-"
    return ["--endpoint-url", endpoint, "--tables-dir", str(FIXTURE_TABLES), "--prefix", prefix]


def module_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    """A fresh importable module holding ``body``; returns its name."""
    name = f"edge_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


# -- arguments -----------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"cqrs {cqrs.__version__}\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(capsys)
    assert code == 2
    assert "required" in line and "cqrs --help" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuchcommand"],
        ["migrate", "--bogus"],
        ["rebuild"],  # the entity is required
        ["sync", "--interval", "soon"],
    ],
)
def test_argument_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, line = run(capsys, *argv)
    assert code == 2
    assert line.endswith("--help)")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--help"]) == 0
    assert "--endpoint-url" in capsys.readouterr().out


# -- --app -----------------------------------------------------------------------------


def test_app_module_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(capsys, "migrate", "--app", "nosuchmod_cqrs_edge:app")
    assert code == 2
    assert "no module named 'nosuchmod_cqrs_edge'" in line and "PYTHONPATH" in line


def test_app_attribute_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module_named(tmp_path, monkeypatch, "something_else = 1\n")
    code, line = run(capsys, "stuck", "--app", f"{name}:nosuch")
    assert code == 2
    assert f"module {name!r} has no attribute 'nosuch'" in line


def test_app_spec_without_attribute(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(capsys, "migrate", "--app", "badspec")
    assert code == 2
    assert "module:attribute" in line and "'badspec'" in line


def test_app_that_is_not_an_app(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module_named(tmp_path, monkeypatch, "app = 42\n")
    code, line = run(capsys, "sync", "--app", f"{name}:app")
    assert code == 2
    assert "is not a Cqrs app" in line


def test_app_whose_import_fails_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module_named(tmp_path, monkeypatch, "import nosuchdependency_cqrs_edge\n")
    with pytest.raises(ConfigurationError, match=f"importing {name} failed: ModuleNotFoundError"):
        load_user_app(f"{name}:app")


# -- settings and configuration --------------------------------------------------------


def test_endpoint_url_that_is_not_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(capsys, "migrate", "--endpoint-url", "notaurl")
    assert code == 2
    assert "--endpoint-url" in line and "'notaurl'" in line and "http" in line


def test_endpoint_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQRS_ENDPOINT_URL", "ftp://example.com")
    code, line = run(capsys, "stuck", "--tables-dir", str(FIXTURE_TABLES))
    assert code == 2
    assert "CQRS_ENDPOINT_URL" in line and "'ftp://example.com'" in line


def test_invalid_setting_from_the_environment_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQRS_FISCAL_START_MONTH", "13")
    code, line = run(capsys, "stuck", *on(UNREACHABLE))
    assert code == 2
    assert "invalid CQRS_FISCAL_START_MONTH" in line


def test_missing_tables_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, line = run(capsys, "migrate", *on(UNREACHABLE)[:2], "--tables-dir", str(tmp_path / "no"))
    assert code == 2
    assert "cqrs.json" in line and "--tables-dir" in line


def test_template_missing_tables_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, line = run(capsys, "template", "--tables-dir", str(tmp_path / "no"))
    assert code == 2
    assert "cqrs.json not found" in line


def test_redrive_without_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(capsys, "redrive", "order", *on(UNREACHABLE))
    assert code == 2
    assert "pass --app" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["rebuild", "nosuch"],
        ["show", "nosuch", "NOSUCH#acme", "NOSUCH#1"],
        ["stuck", "nosuch"],
        ["redrive", "nosuch", "--without-handlers"],
    ],
)
def test_unknown_entity(
    capsys: pytest.CaptureFixture[str], moto_server: str, argv: list[str]
) -> None:
    code, line = run(capsys, *argv, *on(moto_server))
    assert code == 2
    assert "unknown entity 'nosuch'" in line and "cqrs.json" in line


# -- the embedded engine ---------------------------------------------------------------

NOT_DEV = [
    ["migrate"],
    ["sync"],
    ["rebuild", "order"],
    ["stuck"],
    ["redrive", "order", "--without-handlers"],
    ["show", "order", "ORDER#acme", "ORDER#1"],
]


@pytest.mark.parametrize("argv", NOT_DEV, ids=lambda argv: argv[0])
def test_embedded_endpoint_option_is_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, line = run(capsys, *argv, *on("embedded"))
    assert code == 2
    assert f"cqrs {argv[0]} cannot use --endpoint-url embedded" in line
    assert "cqrs dev" in line


@pytest.mark.parametrize("argv", NOT_DEV, ids=lambda argv: argv[0])
def test_embedded_endpoint_from_the_environment_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("CQRS_ENDPOINT_URL", "embedded")
    code, line = run(capsys, *argv, "--tables-dir", str(FIXTURE_TABLES))
    assert code == 2
    assert "CQRS_ENDPOINT_URL=embedded" in line and "cqrs dev" in line


def test_embedded_app_is_refused(tmp_path: Path) -> None:
    # In a fresh interpreter: loading this app starts the embedded engine for good.
    (tmp_path / "embedded_app.py").write_text(
        "from cqrs import Cqrs, Settings\n"
        f"app = Cqrs(Settings(endpoint_url='embedded', tables_dir={str(FIXTURE_TABLES)!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "cqrs.cli", "migrate", "--app", "embedded_app:app"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "cannot use the embedded engine of --app embedded_app:app" in result.stderr
    assert "cqrs dev" in result.stderr


# -- cqrs dev ---------------------------------------------------------------------------


def test_dev_on_a_busy_port_restores_signal_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, line = run(capsys, "dev", "--port", str(port), "--tables-dir", str(FIXTURE_TABLES))
    assert code == 2
    assert f"127.0.0.1:{port}" in line and "--port" in line
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_dev_with_a_missing_app_module(capsys: pytest.CaptureFixture[str]) -> None:
    environment = dict(os.environ)
    argv = ["dev", "--port", "0", "--tables-dir", str(FIXTURE_TABLES), "--prefix", "edge-"]
    code, line = run(capsys, *argv, "--app", "nosuchmod_cqrs_edge:app")
    assert code == 2
    assert "no module named 'nosuchmod_cqrs_edge'" in line
    assert dict(os.environ) == environment  # CQRS_* were set only while loading the app


# -- runtime failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["migrate"],
        ["stuck"],
        ["show", "order", "ORDER#acme", "ORDER#1"],
        ["rebuild", "order"],
    ],
    ids=lambda argv: argv[0],
)
def test_unreachable_dynamodb(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, line = run(capsys, *argv, *on(UNREACHABLE))
    assert code == 1
    assert UNREACHABLE in line and "--endpoint-url" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["stuck"],
        ["show", "order", "ORDER#acme", "ORDER#1"],
        ["rebuild", "order"],
        ["redrive", "order", "--without-handlers"],
    ],
    ids=lambda argv: argv[0],
)
def test_tables_missing(
    capsys: pytest.CaptureFixture[str], moto_server: str, argv: list[str]
) -> None:
    code, line = run(capsys, *argv, *on(moto_server))
    assert code == 1
    assert "cqrs migrate" in line


def test_sync_with_tables_missing(
    capsys: pytest.CaptureFixture[str], moto_server: str, tmp_path: Path
) -> None:
    checkpoints = str(tmp_path / "checkpoints.json")
    code, line = run(capsys, "sync", *on(moto_server), "--checkpoints", checkpoints)
    assert code == 1
    assert "cqrs migrate" in line


def test_migrate_then_commands_work(capsys: pytest.CaptureFixture[str], moto_server: str) -> None:
    options = on(moto_server)
    assert main(["migrate", *options]) == 0
    assert main(["stuck", *options]) == 0
    assert main(["show", "order", "ORDER#acme", "ORDER#1", *options]) == 1  # nothing stored
    assert "Traceback" not in capsys.readouterr().err


# -- one line ------------------------------------------------------------------------------


def test_one_line_joins_lines() -> None:
    assert one_line("bad migrations in m:\n  a\n  b") == "bad migrations in m: a; b"
    assert one_line("first\n\nsecond  \n") == "first; second"
    assert one_line("single") == "single"
