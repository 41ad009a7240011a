"""The ``cqrs`` command's help, version and parser errors (typer, one plain line each)."""

from __future__ import annotations

import pytest

import cqrs
from cqrs.cli import main
from cqrs.cli.app import APP

COMMANDS = ["migrate", "sync", "rebuild", "stuck", "redrive", "show", "dev", "template", "package"]
BOX = set("╭╮╰╯│─")


def summary(command: str) -> str:
    """The first line of ``command``'s docstring: its help text."""
    (info,) = [c for c in APP.registered_commands if c.callback and c.callback.__name__ == command]
    assert info.callback is not None
    doc = (info.callback.__doc__ or "").strip()
    assert doc, f"{command} has no help text"
    return doc.splitlines()[0]


def words(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_registered() -> None:
    names = [c.callback.__name__ for c in APP.registered_commands if c.callback]
    assert sorted(names) == sorted(COMMANDS)


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--version" in out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(
    capsys: pytest.CaptureFixture[str], command: str, flag: str
) -> None:
    assert main([command, flag]) == 0
    captured = capsys.readouterr()
    assert f"cqrs {command}" in captured.out  # the usage line
    assert words(summary(command)) in words(captured.out)
    assert captured.err == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr() == (f"cqrs {cqrs.__version__}\n", "")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_one_plain_line(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, "--bogus"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"cqrs {command}: error: no such option: --bogus")
    assert line.endswith(f"(see cqrs {command} --help)")
    assert not BOX & set(line)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "cqrs: error: a command is required"),
        (["nosuch"], "cqrs: error: no such command 'nosuch'"),
        (["rebuild"], "cqrs rebuild: error: missing argument 'ENTITY'"),
        (["sync", "--interval", "soon"], "cqrs sync: error: invalid value for '--interval'"),
        (["dev", "--port", "x"], "cqrs dev: error: invalid value for '--port'"),
        (["template", "--architecture", "sparc"], "cqrs template: error: invalid value"),
        (["show", "order"], "cqrs show: error: missing argument 'PK'"),
    ],
)
def test_parser_errors_name_the_problem(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(problem) and line.endswith("--help)")
    assert not BOX & set(line)


def test_an_interrupt_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_target: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cqrs.cli.commands._app", interrupted)
    assert main(["stuck"]) == 130
    assert capsys.readouterr().err == "cqrs: interrupted\n"
