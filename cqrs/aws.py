"""The AWS Lambda stream handler: deploy ``cqrs.aws.handler``.

It routes each record by ``eventSourceARN`` to its table's synchronizer and
returns Lambda's partial batch response (enable ``ReportBatchItemFailures`` on
the event source mapping). The app is built once per container: from
``CQRS_APP=module:attribute`` (your :class:`~cqrs.app.Cqrs` object or a factory)
if set, else from ``tables/`` and the environment.

This module imports only what the handler needs (no moto, pytest or CLI), to
keep cold starts short.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Cqrs
    from .sync.synchronizer import BatchResponse

logger = logging.getLogger("cqrs.aws")

_app: Cqrs | None = None


def get_app() -> Cqrs:
    """The app this container serves (built on first use)."""
    global _app
    if _app is None:
        from .app import Cqrs, load_app

        spec = os.environ.get("CQRS_APP")
        _app = load_app(spec) if spec else Cqrs.from_env()
    return _app


def set_app(app: Cqrs | None) -> None:
    """Serve ``app`` (tests, or services that build their app themselves); ``None`` resets."""
    global _app
    _app = app


def handler(event: Mapping[str, object], context: object = None) -> BatchResponse:
    """Lambda entry point for DynamoDB stream events (``context``, Lambda's, is not used)."""
    report = get_app().process_event(event)
    if report.failed:
        logger.warning(
            "batch of %d: %d applied, %d failed",
            report.received,
            report.applied,
            len(report.failed),
        )
    return report.response()
