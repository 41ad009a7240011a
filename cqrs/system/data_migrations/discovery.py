"""Finding, validating and loading migration files (``0001_short_name.py``)."""

from __future__ import annotations

import ast
import re
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.errors import ConfigurationError

if TYPE_CHECKING:
    from .context import MigrationContext

FILE_NAME = re.compile(r"^(?P<number>\d+)_(?P<name>[a-z0-9][a-z0-9_]*)$")


@dataclass(frozen=True)
class Migration:
    """One migration file: ``<number>_<name>.py``; ``id`` is the file name without ``.py``."""

    id: str
    number: int
    name: str
    description: str
    path: Path

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.splitlines()[0] if self.description else ""

    def load(self) -> Callable[[MigrationContext], None]:
        """Execute the file as a fresh module (no bytecode cache) and return its ``up``."""
        module_name = f"_cqrs_migration_{self.id}"
        module = types.ModuleType(module_name, self.description)
        module.__file__ = str(self.path)
        try:
            source = self.path.read_text(encoding="utf-8")
            code = compile(source, str(self.path), "exec", dont_inherit=True)
            sys.modules[module_name] = module  # dataclasses & co. look themselves up there
            exec(code, module.__dict__)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise ConfigurationError(
                f"migration {self.path} failed to load: {type(exc).__name__}: {exc}", cause=exc
            ) from exc
        up = module.__dict__.get("up")
        if not callable(up):
            raise ConfigurationError(f"migration {self.path} has no function up(ctx)")
        function: Callable[[MigrationContext], None] = up
        return function


def discover(directory: Path | str) -> list[Migration]:
    """The migrations in ``directory``, ordered by number; validates every file first.

    Raises :class:`~cqrs.core.errors.ConfigurationError` naming every bad file: a
    name that is not ``<digits>_<lowercase_name>.py``, a duplicate number, a
    syntax error, a missing module docstring or a missing ``def up``.
    Nothing is executed.
    """
    directory = Path(directory)
    problems: list[str] = []
    by_number: dict[int, list[Migration]] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue  # __init__.py, _helpers.py
        try:
            migration = _read(path)
        except ConfigurationError as exc:
            problems.append(str(exc))
            continue
        by_number.setdefault(migration.number, []).append(migration)
    problems += _duplicates(by_number)
    if problems:
        raise ConfigurationError(f"bad migrations in {directory}:\n  " + "\n  ".join(problems))
    return [same[0] for _, same in sorted(by_number.items())]


def check_renames(migrations: Iterable[Migration], done: Iterable[str]) -> None:
    """Refuse a file whose number was applied under another name (it would run twice)."""
    recorded: dict[int, str] = {}
    for applied in done:
        match = FILE_NAME.match(applied)
        if match:
            recorded[int(match["number"])] = applied
    for migration in migrations:
        previous = recorded.get(migration.number)
        if previous is not None and previous != migration.id:
            raise ConfigurationError(
                f"migration number {migration.number} was applied as {previous!r} but the "
                f"file is now {migration.path.name}: rename it back (applied migrations "
                "keep their id), or give new work a new number"
            )


def _read(path: Path) -> Migration:
    """The :class:`Migration` of one file, or :class:`ConfigurationError` saying what is wrong."""
    match = FILE_NAME.match(path.stem)
    if match is None:
        raise ConfigurationError(
            f"{path.name}: name must look like 0001_short_name.py "
            "(digits, underscore, lowercase letters/digits/underscores)"
        )
    description = _describe(path)
    return Migration(path.stem, int(match["number"]), match["name"], description, path)


def _duplicates(by_number: dict[int, list[Migration]]) -> list[str]:
    problems = []
    for number, same in sorted(by_number.items()):
        if len(same) > 1:
            names = ", ".join(m.path.name for m in same)
            problems.append(f"duplicate migration number {number}: {names}")
    return problems


def _describe(path: Path) -> str:
    """The module docstring of a migration file; checks it defines ``up``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        raise ConfigurationError(f"{path.name}: syntax error line {exc.lineno}: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path.name}: unreadable: {exc}") from exc
    docstring = ast.get_docstring(tree)
    if not docstring or not docstring.strip():
        raise ConfigurationError(f"{path.name}: add a module docstring describing the migration")
    has_up = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "up"
        for node in tree.body
    )
    if not has_up:
        raise ConfigurationError(f"{path.name}: define a module-level function up(ctx)")
    return docstring.strip()
