"""Exit codes and the one-line errors of the ``cqrs`` command.

Errors are one line on stderr, ``cqrs: error: <what went wrong and what to do>``
(``cqrs <command>: error: ... (see cqrs <command> --help)`` for bad arguments).
Exit codes: :data:`OK` 0 success, :data:`FAILURE` 1 a runtime failure (DynamoDB
unreachable, tables missing, stuck entities, any other
:class:`~cqrs.core.errors.CqrsError`), :data:`USAGE` 2 a usage error (bad arguments
or options, invalid settings, a bad ``--app``, an unknown entity, the embedded engine
where its data would vanish), :data:`INTERRUPTED` 130 interrupted.

Nothing here needs the ``cli`` extra (typer, rich): ``cqrs.deploy`` and the
dependency check use it too.
"""

from __future__ import annotations

import sys

from ..core.errors import (
    ConfigurationError,
    InvalidSettingsError,
    NetworkError,
    UnknownEntityError,
)

#: Exit codes.
OK, FAILURE, USAGE, INTERRUPTED = 0, 1, 2, 130

#: What each setting is overridden by, for messages about invalid settings.
_OPTIONS = {
    "endpoint_url": "--endpoint-url / CQRS_ENDPOINT_URL",
    "tables_dir": "--tables-dir / CQRS_TABLES_DIR",
    "table_prefix": "--prefix / CQRS_TABLE_PREFIX",
    "region": "AWS_REGION",
    "time_zone": "CQRS_TIME_ZONE",
    "fiscal_start_month": "CQRS_FISCAL_START_MONTH",
    "sns_topic_arn": "CQRS_SNS_TOPIC_ARN",
    "sync_max_attempts": "CQRS_SYNC_MAX_ATTEMPTS",
}


def one_line(text: str) -> str:
    """``text`` on a single line: lines after a ``:`` continue it, others join with ``;``."""
    out = ""
    for line in (part.strip() for part in text.splitlines()):
        if line:
            out += line if not out else (" " if out.endswith(":") else "; ") + line
    return out


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the command was called wrongly (exit 2) rather than failed."""
    return isinstance(exc, ConfigurationError | UnknownEntityError)


def report_error(exc: BaseException) -> int:
    """Print ``exc`` as one ``cqrs: error:`` line on stderr; return its exit code."""
    message = settings_problem(exc)
    if isinstance(exc, NetworkError):
        message += (
            " (is DynamoDB reachable? check --endpoint-url / CQRS_ENDPOINT_URL; "
            "`cqrs dev` runs a local engine)"
        )
    return fail(message, USAGE if is_usage_error(exc) else FAILURE)


def fail(message: str, code: int = FAILURE) -> int:
    """Print ``cqrs: error: <message>`` (on one line) on stderr; return ``code``."""
    print(f"cqrs: error: {one_line(message)}", file=sys.stderr)
    return code


def usage_error(command: str, message: str) -> int:
    """Print a bad-arguments error of ``command`` (e.g. ``cqrs migrate``); return :data:`USAGE`.

    ``message`` is the parser's (``No such option: --bogus``): it loses its capital
    and final full stop, and points at the command's ``--help``.
    """
    text = one_line(message).rstrip(".")
    if text == "Missing command":
        text = "a command is required"
    elif text[:1].isupper() and not text[1:2].isupper():
        text = text[:1].lower() + text[1:]
    print(f"{command}: error: {text} (see {command} --help)", file=sys.stderr)
    return USAGE


def settings_problem(exc: BaseException) -> str:
    """``exc`` as one line; bad settings name the option or variable that gave them."""
    if not isinstance(exc, InvalidSettingsError):
        return str(exc)
    problems = []
    for name, where, what in exc.problems:
        option = _OPTIONS.get(name) if where == name else None  # a keyword: the CLI option
        problems.append(f"invalid {option or where}: {what}")
    return "; ".join(problems) or str(exc)
