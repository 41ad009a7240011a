"""The ``cqrs`` command line."""

from __future__ import annotations

from .commands import load_user_app, main, one_line

__all__ = ["load_user_app", "main", "one_line"]
