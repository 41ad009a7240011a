"""README.md tells the truth: every snippet runs as written, and nothing tracked is ignored.

- Each ```python block runs on its own, as ``CQRS_ENDPOINT_URL=embedded python app.py``
  would run it: a fresh namespace (``__name__ == "__main__"``), a fresh working directory
  holding copies of the repository's ``tables/`` and ``migrations/``, no other ``CQRS_*``
  or ``AWS_*`` variable, and the embedded engine (in-process moto) that the snippet's
  ``Cqrs.from_env()`` starts, stopped again when the test ends. Nothing else is running:
  a snippet that needs a synchronizer starts one itself (the README says so above it) and
  must stop every thread it starts. Tracebacks point at README.md's own lines.
  A block that defines ``test_*`` functions is a pytest module: its tests are called with
  the cqrs plugin's fixtures. :data:`CHECKS` holds what some snippets claim in comments.
- Every command line of a ```sh block is either run here (:data:`SH_RUN`, by the test
  named) or skipped for a stated reason (:data:`SH_SKIPPED`: installs, network, Docker,
  AWS, the suite itself); both lists must name exactly the README's commands, so a new
  command cannot go unnoticed.
- No file git tracks is ignored by ``.gitignore``.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from traceback import format_exc
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: python, cqrs
TIMEOUT = 300  # seconds, for the subprocesses

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    lang: str
    code: str  # dedented by the fence's indentation
    line: int  # README.md's line number of the block's first code line
    section: str  # the heading it is under

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"L{self.line}-{slug}"


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of README.md, in document order."""
    lines = (README.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            section = lines[i].lstrip("#").strip()
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, lang = len(opened["indent"]), opened["lang"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"README.md:{i + 1}: a fence that never closes"
        body = [line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]]
        blocks.append(Block(lang, "\n".join(body) + "\n", i + 2, section))
        i = end + 1
    return blocks


def python_blocks() -> list[Block]:
    return [b for b in readme_blocks() if b.lang == "python"]


def is_test_module(block: Block) -> bool:
    """A block that defines ``test_*`` functions: pytest runs it, not ``python``."""
    tree = ast.parse(block.code)
    return any(
        isinstance(node, ast.FunctionDef) and node.name.startswith("test_") for node in tree.body
    )


SCRIPTS = [b for b in python_blocks() if not is_test_module(b)]
TEST_MODULES = [b for b in python_blocks() if is_test_module(b)]


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    """Run the block's code in ``namespace``; on an error, fail with a traceback that shows
    README.md's own lines (not pytest's listing of the whole README up to the line)."""
    code = compile("\n" * (block.line - 1) + block.code, str(README), "exec")
    try:
        exec(code, namespace)
    except Exception:
        pytest.fail(f"README.md:{block.line}: the snippet failed\n{format_exc()}", pytrace=False)


# -- what snippets claim in their comments ---------------------------------------------------


def _three_lines(ns: dict[str, Any], out: str) -> None:
    row = ns["orders"].data.get("ORDER#acme", "ORDER#A-1", context=ns["ctx"])
    assert row.version == 1 and row.attributes == {"total": 12}
    assert [h.version for h in ns["orders"].history.list(row.pk, row.sk, context=ns["ctx"])] == [1]


def _tenant_scope(ns: dict[str, Any], out: str) -> None:
    assert "context" in out, out  # the MissingContextError printed


def _read_your_writes(ns: dict[str, Any], out: str) -> None:
    assert not ns["follower"].is_alive()
    row = ns["orders"].data.get("ORDER#acme", "ORDER#A-1", context=ns["ctx"])
    assert row is not None and row.version == ns["cmd"].version == 1


def _sequences(ns: dict[str, Any], out: str) -> None:
    n = ns["n"]
    assert n.number == 1
    assert n.formatted == f"ORD-{n.issued_at.year}-000001"
    assert isinstance(n.issued_at, datetime)


def _tasks(ns: dict[str, Any], out: str) -> None:
    from cqrs import TaskStatus

    task = ns["app"].tasks.get("acme", ns["task"].sk, context=ns["ctx"])
    assert task.status is TaskStatus.COMPLETED
    assert task.result == {"imported": 10}


def _data_migrations(ns: dict[str, Any], out: str) -> None:
    assert "['0001_order_priority']\n" in out, out


#: A piece of a snippet's code (it must be in exactly one snippet) → what its comments claim.
CHECKS: dict[str, Callable[[dict[str, Any], str], None]] = {
    'orders.history.list("ORDER#acme", "ORDER#A-1", context=ctx)': _three_lines,
    "except MissingContextError": _tenant_scope,
    "orders.data.get_fresh(": _read_your_writes,
    "app.sequences.next(": _sequences,
    "app.tasks.create(": _tasks,
    "run_migrations(app,": _data_migrations,
}


def test_checks_and_blocks_are_found() -> None:
    assert SCRIPTS and TEST_MODULES, [b.id for b in python_blocks()]
    for piece in CHECKS:
        assert [b.id for b in SCRIPTS if piece in b.code] != [], f"no snippet has {piece!r}"
        assert len([b for b in SCRIPTS if piece in b.code]) == 1, f"{piece!r} is in several"


def test_fences_are_parsed_with_their_lines_and_sections() -> None:
    text = "# A\n\n```sh\nmake x  # y\n```\n\n## B\n\n- item\n\n  ```python\n  x = 1\n  ```\n"
    blocks = readme_blocks(text)
    assert blocks == [Block("sh", "make x  # y\n", 4, "A"), Block("python", "x = 1\n", 12, "B")]


# -- running the python snippets -------------------------------------------------------------


@pytest.fixture
def embedded_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory with ``tables/`` and ``migrations/``, an environment with
    only ``CQRS_ENDPOINT_URL=embedded``; the embedded engine a snippet starts is stopped
    at the end (the library keeps it for the rest of the process otherwise)."""
    pytest.importorskip("moto", reason="the embedded extra is not installed")
    from cqrs.store import clients

    shutil.copytree(REPO / "tables", tmp_path / "tables")
    shutil.copytree(REPO / "migrations", tmp_path / "migrations")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("CQRS_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CQRS_ENDPOINT_URL", "embedded")
    monkeypatch.setattr(clients, "_embedded_mock", None)  # restored after the test
    try:
        yield tmp_path
    finally:
        mock: Any = clients._embedded_mock
        if mock is not None:
            mock.stop()


@pytest.mark.parametrize("block", SCRIPTS, ids=[b.id for b in SCRIPTS])
def test_python_snippet_runs_as_written(
    block: Block, embedded_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(threading.enumerate())
    namespace: dict[str, Any] = {"__name__": "__main__"}
    run_block(block, namespace)
    out = capsys.readouterr().out
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == [], f"README.md:{block.line}: the snippet left threads running: {left}"
    for piece, check in CHECKS.items():
        if piece in block.code:
            check(namespace, out)


@pytest.fixture
def cqrs_tables_dir() -> Path:
    """The README's test module runs beside this repository's ``tables/``."""
    return REPO / "tables"


@pytest.mark.parametrize("block", TEST_MODULES, ids=[b.id for b in TEST_MODULES])
def test_python_test_module_passes(block: Block, request: pytest.FixtureRequest) -> None:
    namespace: dict[str, Any] = {"__name__": "test_orders"}
    run_block(block, namespace)
    tests = {name: f for name, f in namespace.items() if name.startswith("test_")}
    assert tests, f"README.md:{block.line}: no test functions"
    for test in tests.values():
        params = inspect.signature(test).parameters
        test(**{name: request.getfixturevalue(name) for name in params})


@pytest.mark.slow
@pytest.mark.parametrize("block", TEST_MODULES, ids=[b.id for b in TEST_MODULES])
def test_python_test_module_passes_under_pytest(block: Block, tmp_path: Path) -> None:
    """As the README says: saved as ``test_orders.py`` beside ``tables/``, run by pytest
    (the plugin comes from the installed entry point; no CQRS_* variable is set)."""
    pytest.importorskip("moto", reason="the embedded extra is not installed")
    shutil.copytree(REPO / "tables", tmp_path / "tables")
    (tmp_path / "test_orders.py").write_text(block.code)
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider test_orders.py"
    out = _run(command, tmp_path, _env()).stdout
    assert re.search(r"\b1 passed\b", out), out


# -- the sh blocks ---------------------------------------------------------------------------


def sh_commands() -> list[str]:
    """Every command line of the ```sh blocks (comments and comment-only lines dropped)."""
    commands = []
    for block in readme_blocks():
        if block.lang != "sh":
            continue
        for line in block.code.splitlines():
            command = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if command:
                commands.append(command)
    return commands


#: Commands run here → the test that runs them.
SH_RUN = {
    "make demo": "test_make_demo_recipe_runs",
    "cqrs migrate [--endpoint-url URL] [--tables-dir DIR] [--prefix P] [--dry-run]": (
        "test_cqrs_migrate_synopsis_matches_its_help"
    ),
    "export CQRS_ENDPOINT_URL=http://localhost:8000": "test_migrate_and_demo_on_an_engine_url",
    "cqrs migrate && python -m examples.shop": "test_migrate_and_demo_on_an_engine_url",
    "cqrs template --out template.json": "test_cqrs_template_writes_the_sam_template",
}

#: Commands not run here, and why. Keep it short: whatever can run locally runs above.
SH_SKIPPED = {
    "make test": "the whole suite: this file is part of it",
    "make test-fast": "the suite without slow tests (this file is marked slow)",
    'pip install "cqrs @ git+https://github.com/<you>/cqrs"': "installs, from the network",
    'pip install "cqrs[cli] @ git+https://github.com/<you>/cqrs"': "installs, from the network",
    "docker compose up -d --wait": "needs Docker (tests/test_docker_compose.py checks the file)",
    "cqrs package --out build/lambda.zip": (
        "pip downloads Lambda's wheels from the registry (tests/test_package.py builds the "
        "layout with a local installer)"
    ),
    "sam deploy --template-file template.json --guided": "needs the SAM CLI and an AWS account",
    "make docs": "tests/test_docs.py runs the same strict, offline mkdocs build",
}


def test_every_sh_command_is_run_or_skipped_for_a_reason() -> None:
    commands = sh_commands()
    assert not set(SH_RUN) & set(SH_SKIPPED)
    assert sorted(set(commands)) == sorted(set(SH_RUN) | set(SH_SKIPPED)), (
        "a README command is neither run by a test here nor skipped with a reason "
        "(or a listed one is gone from the README)"
    )
    assert all(reason for reason in SH_SKIPPED.values())
    for test in SH_RUN.values():
        assert callable(globals().get(test)), f"{test} does not exist"


def _env(**extra: str) -> dict[str, str]:
    """A clean environment: no CQRS_* or AWS_* settings, the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CQRS_", "AWS_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def _demo_recipe() -> str:
    """``make demo``'s recipe with ``$(BIN)`` being this venv (the rest is setting it up)."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "no demo target in the Makefile"
    lines: list[str] = [line.strip() for line in recipe.group(1).splitlines()]
    assert lines == ["$(BIN)/python -m examples.shop"], lines
    return lines[0].replace("$(BIN)/", f"{BIN}/")


@pytest.mark.slow
def test_make_demo_recipe_runs() -> None:
    pytest.importorskip("moto", reason="the embedded extra is not installed")
    out = _run(_demo_recipe(), REPO, _env()).stdout
    assert "== engine: embedded" in out
    assert "VersionConflictError" in out
    assert "== custom projection saw:" in out


@pytest.mark.slow
def test_cqrs_migrate_synopsis_matches_its_help() -> None:
    synopsis = next(c for c in SH_RUN if c.startswith("cqrs migrate ["))
    result = _run("cqrs migrate --help", REPO, _env(COLUMNS="200", NO_COLOR="1"))
    for option in re.findall(r"--[\w-]+", synopsis):
        assert option in result.stdout, f"cqrs migrate --help has no {option}"


@pytest.mark.slow
def test_migrate_and_demo_on_an_engine_url(tmp_path: Path) -> None:
    """The commands after ``docker compose up``, on a moto server in place of DynamoDB
    Local (any engine URL serves), under a table prefix of their own."""
    pytest.importorskip("moto", reason="the embedded extra is not installed")
    from cqrs.testing.local_server import LocalServer
    from cqrs.testing.plugin import free_port

    export = "export CQRS_ENDPOINT_URL=http://localhost:8000"
    commands = "cqrs migrate && python -m examples.shop"
    server = LocalServer(free_port())
    server.start()
    try:
        script = export.replace("http://localhost:8000", server.endpoint) + "\n" + commands
        env = _env(CQRS_TABLE_PREFIX=f"readme-{uuid.uuid4().hex[:8]}-")
        out = _run(script, REPO, env).stdout
    finally:
        server.stop()
    assert f"== engine: {server.endpoint}" in out
    assert "== custom projection saw:" in out


@pytest.mark.slow
def test_cqrs_template_writes_the_sam_template(tmp_path: Path) -> None:
    shutil.copytree(REPO / "tables", tmp_path / "tables")
    _run("cqrs template --out template.json", tmp_path, _env())
    template = json.loads((tmp_path / "template.json").read_text())
    resources = json.dumps(template["Resources"])
    assert "order-command" in resources and "AWS::Serverless::Function" in resources


# -- .gitignore ------------------------------------------------------------------------------


def test_no_tracked_file_is_ignored() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    assert tracked, "git ls-files listed nothing"
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-z", "--stdin"],
        cwd=REPO,
        input=tracked,
        capture_output=True,
    )
    assert ignored.returncode in (0, 1), ignored.stderr  # 1: nothing ignored
    assert ignored.stdout.split(b"\0") == [b""], "tracked but ignored: " + ignored.stdout.decode()
