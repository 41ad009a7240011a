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
    """Lambda entry point for DynamoDB stream events.

    Each batch is logged as one JSON line on the ``cqrs.sync.batch`` logger (INFO, or
    WARNING when records failed) and its metrics are printed to stdout in CloudWatch's
    Embedded Metric Format, under the namespace ``CQRS_METRICS_NAMESPACE`` (default
    ``cqrs``; empty: no metrics). Log lines carry ``context.aws_request_id``.
    """
    from .sync import telemetry

    request_id = getattr(context, "aws_request_id", None)
    request_id = request_id if isinstance(request_id, str) else None
    app = get_app()
    with telemetry.request_scope(request_id):
        report = app.process_event(event)
    if report.received:
        summary = telemetry.BatchSummary.of(report, request_id)
        telemetry.log_batch(summary)
        namespace = os.environ.get("CQRS_METRICS_NAMESPACE", telemetry.DEFAULT_NAMESPACE)
        if namespace:
            table = telemetry.table_of(summary)
            entity = app.schema.entity_of_command_table(table)
            extra = {"Entity": entity} if entity else None
            document = telemetry.emf_document(summary, namespace, properties=extra)
            telemetry.print_metrics(document)
    return report.response()
