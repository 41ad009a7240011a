"""The ``cqrs`` command (typer): its commands, ``--version``, and errors as exit codes.

:func:`run` parses and runs one command line and returns its exit code
(:mod:`cqrs.cli.errors`); it never raises ``SystemExit``. Bad arguments are one
line, ``cqrs <command>: error: <problem> (see cqrs <command> --help)``, never a
box-drawn panel; a :class:`~cqrs.core.errors.CqrsError` or invalid settings are
one ``cqrs: error:`` line.

The commands live by group: :mod:`.commands` (migrate, sync, rebuild, stuck,
redrive), :mod:`.show`, :mod:`.dev` and :mod:`cqrs.deploy.cli` (template, package).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from typer import TyperException

from ..core.errors import CqrsError
from ..deploy import cli as deploy_cli
from . import commands, dev, show
from .errors import INTERRUPTED, OK, USAGE, fail, report_error, usage_error

HELP = "CQRS and event sourcing on DynamoDB: tables, sync, and local tools."


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"cqrs {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="print the version and exit", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """CQRS and event sourcing on DynamoDB: tables, sync, and local tools."""


def build_app() -> typer.Typer:
    """The ``cqrs`` typer app with every command registered."""
    app = typer.Typer(
        name="cqrs",
        help=HELP,
        add_completion=False,
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    commands.register(app)
    show.register(app)
    dev.register(app)
    deploy_cli.register(app)
    return app


APP = build_app()


def run(argv: Sequence[str]) -> int:
    """Run the command line ``argv`` (without the program name); return the exit code."""
    from pydantic import ValidationError

    hook = sys.excepthook  # typer installs its own on every call
    try:
        code = APP(list(argv), prog_name="cqrs", standalone_mode=False)
    except TyperException as exc:  # bad arguments or options (click's UsageError & co.)
        return _parser_error(exc)
    except typer.Abort:  # end of input at a prompt
        return fail("aborted")
    except KeyboardInterrupt:
        code = INTERRUPTED
    except (CqrsError, ValidationError) as exc:  # settings from options or the environment
        return report_error(exc)
    finally:
        sys.excepthook = hook
    if code == INTERRUPTED:
        print("cqrs: interrupted", file=sys.stderr)
    return OK if code is None else int(code)


def _parser_error(exc: TyperException) -> int:
    context = getattr(exc, "ctx", None)
    command = getattr(context, "command_path", None) or "cqrs"
    if exc.exit_code == USAGE:
        return usage_error(command, exc.format_message())
    return fail(exc.format_message(), exc.exit_code)
