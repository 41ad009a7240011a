"""The command line's dependencies are the ``cli`` extra: without it, ``cqrs`` says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MESSAGE = "cqrs: the command line needs: pip install 'cqrs[cli]'\n"


def cqrs_without(blocked: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``cqrs argv`` in a fresh interpreter where importing ``blocked`` fails."""
    code = (
        "import sys\n"
        f"sys.modules[{blocked!r}] = None  # as if not installed\n"
        "from cqrs.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("blocked", ["typer", "rich"])
@pytest.mark.parametrize("argv", [["--version"], ["migrate", "--help"], []])
def test_without_the_extra_one_line_and_exit_2(blocked: str, argv: list[str]) -> None:
    result = cqrs_without(blocked, *argv)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", MESSAGE)


def test_the_library_works_without_the_extra() -> None:
    """``cqrs.cli`` still imports (``load_user_app``, ``one_line``); only ``main`` needs it."""
    code = (
        "import sys\n"
        "sys.modules['typer'] = sys.modules['rich'] = None\n"
        "from cqrs.cli import load_user_app, one_line\n"
        "from cqrs.deploy import render_template\n"
        "from cqrs.system.data_migrations import run_migrations\n"
        "print(one_line('a\\nb'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert (result.returncode, result.stdout) == (0, "a; b\n"), result.stderr
