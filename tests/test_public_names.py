"""One list of public names: ``cqrs._EXPORTS``. Every type in a public signature is in it,
the type checkers' view (``TYPE_CHECKING`` imports) matches it, and every name resolves."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin

import cqrs

INIT = Path(cqrs.__file__)


def exported() -> dict[str, Any]:
    return {name: getattr(cqrs, name) for name in cqrs._EXPORTS}


def test_all_is_the_export_list_and_every_name_resolves() -> None:
    assert sorted(cqrs.__all__) == sorted(cqrs._EXPORTS)
    assert all(value is not None for value in exported().values())


def test_type_checkers_see_exactly_the_export_list() -> None:
    tree = ast.parse(INIT.read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names:
            seen[alias.name] = node.module.lstrip(".")
    assert seen == cqrs._EXPORTS


def _cqrs_types(annotation: Any) -> set[type]:
    found: set[type] = set()
    if isinstance(annotation, type) and annotation.__module__.startswith("cqrs"):
        generic = getattr(annotation, "__pydantic_generic_metadata__", None) or {}
        found.add(generic.get("origin") or annotation)  # Task[Any] is Task
    origin = get_origin(annotation)
    if origin is not None and isinstance(origin, type) and origin.__module__.startswith("cqrs"):
        found.add(origin)
    for arg in (
        get_args(annotation) if origin is not None or isinstance(annotation, UnionType) else ()
    ):
        found |= _cqrs_types(arg)
    return found


def _signature_types(obj: Any) -> set[type]:
    try:
        hints = typing.get_type_hints(obj)
    except Exception:  # a forward reference only a type checker resolves
        return set()
    found: set[type] = set()
    for hint in hints.values():
        found |= _cqrs_types(hint)
    return found


def test_every_type_in_a_public_signature_is_exported() -> None:
    public = {v for v in exported().values() if isinstance(v, type)}
    missing: dict[str, set[str]] = {}
    for name, value in exported().items():
        members: list[Any] = [value]
        if isinstance(value, type):
            members += [
                m for n, m in inspect.getmembers(value) if not n.startswith("_") and callable(m)
            ]
        for member in members:
            for used in _signature_types(member):
                if used not in public and not used.__name__.startswith("_"):
                    missing.setdefault(used.__name__, set()).add(name)
    assert missing == {}
