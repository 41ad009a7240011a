"""Deployment: the AWS SAM template, the Lambda package and the scheduled task sweep.

- :func:`render_template` / :func:`dump_template`: tables, stream handler,
  event source mappings, dead-letter queue, notification topic, the scheduled task
  sweep and least-privilege IAM as SAM (:mod:`.template`, built from
  :mod:`.resources` and :mod:`.iam`).
- :func:`build_package`: the Lambda zip (cqrs, the project, its dependencies).
- :mod:`cqrs.deploy.sweep`: the sweep's Lambda handler (``cqrs.deploy.sweep.handler``).
- :mod:`cqrs.deploy.cli`: the ``cqrs template`` and ``cqrs package`` commands
  (needs the ``cli`` extra; nothing else here does).

The names above load on first use, so that the sweep function's cold start
(``import cqrs.deploy.sweep``) loads neither the template nor the packaging code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .package import build_package
    from .template import dump_template, render_template

__all__ = ["build_package", "dump_template", "render_template"]

_HOMES = {"build_package": ".package", "dump_template": ".template", "render_template": ".template"}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
