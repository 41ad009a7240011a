"""Deployment: the AWS SAM template and the Lambda package.

- :func:`render_template` / :func:`dump_template`: tables, stream handler,
  event source mappings, dead-letter queue and least-privilege IAM as SAM
  (:mod:`.template`, built from :mod:`.resources` and :mod:`.iam`).
- :func:`build_package`: the Lambda zip (cqrs, the project, its dependencies).
- :mod:`cqrs.deploy.cli`: the ``cqrs template`` and ``cqrs package`` commands
  (needs the ``cli`` extra; nothing else here does).
"""

from __future__ import annotations

from .package import build_package
from .template import dump_template, render_template

__all__ = ["build_package", "dump_template", "render_template"]
