"""The ``cqrs`` command line.

:func:`main` is the console script. The command line needs the ``cli`` extra
(typer, rich); without it :func:`main` says so in one line. Importing this
package loads neither: :mod:`.app` (typer) is imported when :func:`main` runs.

Modules: :mod:`.app` (the typer app, ``--version``, exit codes), :mod:`.commands`
(migrate, sync, rebuild, stuck, redrive), :mod:`.show` (entity inspector),
:mod:`.dev` (local engine), :mod:`.render` and :mod:`.diff` (tables, version
diffs), :mod:`.progress` (progress bars), :mod:`.loading` (the app a command works
on), :mod:`.options` (shared options) and :mod:`.errors` (one-line errors, exit codes).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .errors import USAGE, one_line
from .loading import load_user_app

__all__ = ["load_user_app", "main", "one_line"]

#: What the command line needs beyond ``cqrs`` itself.
CLI_PACKAGES = frozenset({"typer", "rich", "click"})
MISSING_EXTRA = "cqrs: the command line needs: pip install 'cqrs[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cqrs`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    0 success, 1 a runtime failure, 2 a usage error, 130 interrupted (see
    :mod:`cqrs.cli.errors`). Never raises ``SystemExit``.
    """
    try:
        from .app import run
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in CLI_PACKAGES:
            raise
        print(MISSING_EXTRA, file=sys.stderr)
        return USAGE
    return run(sys.argv[1:] if argv is None else argv)
