"""What one batch did, said once: a log line, a CloudWatch metric document, a short line.

:class:`BatchSummary` is computed from the synchronizer's
:class:`~cqrs.sync.synchronizer.BatchReport` with no extra request (the oldest
record's age comes from the records' ``ApproximateCreationDateTime``). Three
readers use it:

- the Lambda handler (:func:`cqrs.aws.handler`) logs it as one JSON line on the
  ``cqrs.sync.batch`` logger (:func:`log_batch`) and prints a CloudWatch Embedded
  Metric Format document to stdout (:func:`emf_document`, :func:`print_metrics`);
- ``cqrs sync --follow`` and ``cqrs dev`` print :meth:`BatchSummary.line`;
- ``cqrs sync`` advances its progress display with it.

Log lines about one entity (:func:`entity_fields`) carry the request id (set by the
handler with :func:`request_scope`), the entity key and the version, both in the
message and as a ``cqrs`` dict in ``extra=`` for structured formatters. Only the
standard library is imported: nothing here slows the handler's cold start.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .synchronizer import BatchReport

#: The logger of the one summary line per batch (a child of ``cqrs``).
batch_logger = logging.getLogger("cqrs.sync.batch")

#: The default CloudWatch namespace of the handler's metrics.
DEFAULT_NAMESPACE = "cqrs"

#: The request being handled (Lambda's ``aws_request_id``), for log lines about entities.
_request_id: ContextVar[str | None] = ContextVar("cqrs_request_id", default=None)


@contextmanager
def request_scope(request_id: str | None) -> Iterator[None]:
    """Log lines written inside carry ``request_id`` (see :func:`current_request_id`)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def current_request_id() -> str | None:
    """The request id set by the innermost :func:`request_scope`, if any."""
    return _request_id.get()


@dataclass(frozen=True)
class BatchSummary:
    """What one batch of stream records did (counts are records, ``stuck`` is entities)."""

    records: int
    applied: int  # command records whose version is now in data
    consumed: int  # records of other tables (tasks) handled without failure
    ignored: int  # MODIFY/REMOVE records, tables nobody consumes
    failed: int  # records reported for Lambda's retry
    stuck: int  # entities given up on (recorded, alarmed, acknowledged)
    rejected: int  # records no retry can make valid (recorded, acknowledged)
    oldest_record_age_ms: int | None  # now minus the oldest ApproximateCreationDateTime
    duration_ms: float
    tables: tuple[str, ...] = ()
    request_id: str | None = None

    @classmethod
    def of(cls, report: BatchReport, request_id: str | None = None) -> BatchSummary:
        """Summarize ``report``; ``request_id`` defaults to :func:`current_request_id`."""
        age = report.oldest_record_age
        return cls(
            records=report.received,
            applied=report.applied,
            consumed=report.consumed,
            ignored=report.ignored,
            failed=len(report.failed),
            stuck=len(report.stuck),
            rejected=len(report.rejected),
            oldest_record_age_ms=None if age is None else max(int(age * 1000), 0),
            duration_ms=round(report.duration * 1000, 1),
            tables=tuple(report.tables),
            request_id=request_id if request_id is not None else current_request_id(),
        )

    @property
    def ok(self) -> bool:
        """Nothing failed, got stuck or was rejected."""
        return not (self.failed or self.stuck or self.rejected)

    def fields(self) -> dict[str, object]:
        """The summary as JSON-ready fields (camelCase, like the stored items)."""
        return {
            "message": "cqrs batch",
            "requestId": self.request_id,
            "tables": list(self.tables),
            "records": self.records,
            "applied": self.applied,
            "consumed": self.consumed,
            "ignored": self.ignored,
            "failed": self.failed,
            "stuck": self.stuck,
            "rejected": self.rejected,
            "oldestRecordAgeMs": self.oldest_record_age_ms,
            "durationMs": self.duration_ms,
        }

    def json(self) -> str:
        """:meth:`fields` as one line of JSON."""
        return json.dumps(self.fields(), separators=(",", ":"))

    def line(self) -> str:
        """One short line: ``3 record(s) of dev-order-command: 3 applied; oldest 1.0s, 12 ms``."""
        counts = [
            f"{n} {name}"
            for n, name in (
                (self.applied, "applied"),
                (self.consumed, "handled"),
                (self.ignored, "ignored"),
                (self.failed, "failed"),
                (self.stuck, "stuck"),
                (self.rejected, "rejected"),
            )
            if n
        ]
        where = f" of {', '.join(self.tables)}" if self.tables else ""
        text = f"{self.records} record(s){where}: {', '.join(counts) or 'nothing to do'}"
        if self.oldest_record_age_ms is not None:
            text += f"; oldest {self.oldest_record_age_ms / 1000:.1f}s"
        return f"{text}, {self.duration_ms:.0f} ms"


def log_batch(summary: BatchSummary, logger: logging.Logger = batch_logger) -> None:
    """Log ``summary`` as one line: the message is its JSON, ``extra={"cqrs": fields}``.

    INFO when all went well, WARNING when records failed, got stuck or were rejected.
    """
    level = logging.INFO if summary.ok else logging.WARNING
    if logger.isEnabledFor(level):
        logger.log(level, summary.json(), extra={"cqrs": summary.fields()})


def emf_document(
    summary: BatchSummary,
    namespace: str = DEFAULT_NAMESPACE,
    dimensions: Mapping[str, str] | None = None,
    *,
    properties: Mapping[str, object] | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, object]:
    """A CloudWatch Embedded Metric Format document of ``summary``.

    Metrics: ``Records``, ``Applied``, ``Failed``, ``Stuck``, ``Rejected`` (counts),
    ``OldestRecordAge`` (the lag, ms; left out when unknown) and ``Duration`` (ms),
    under ``dimensions`` (default: ``{"Table": <the batch's table>}``). The request id
    and ``properties`` (e.g. ``{"Entity": "order"}``) are searchable in the log but are
    not dimensions.
    """
    dims = dict(dimensions) if dimensions is not None else {"Table": table_of(summary)}
    values: dict[str, tuple[float, str]] = {
        "Records": (summary.records, "Count"),
        "Applied": (summary.applied, "Count"),
        "Failed": (summary.failed, "Count"),
        "Stuck": (summary.stuck, "Count"),
        "Rejected": (summary.rejected, "Count"),
        "Duration": (summary.duration_ms, "Milliseconds"),
    }
    if summary.oldest_record_age_ms is not None:
        values["OldestRecordAge"] = (summary.oldest_record_age_ms, "Milliseconds")
    stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    metadata = {
        "Timestamp": stamp,
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [list(dims)],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
            }
        ],
    }
    document: dict[str, object] = {"_aws": metadata, **dims}
    document |= {name: value for name, (value, _) in values.items()}
    if summary.request_id is not None:
        document["requestId"] = summary.request_id
    return document | dict(properties or {})


def print_metrics(document: Mapping[str, object], out: TextIO | None = None) -> None:
    """Write an EMF ``document`` as one JSON line to stdout (Lambda sends it to CloudWatch)."""
    stream = out if out is not None else sys.stdout
    stream.write(json.dumps(document, separators=(",", ":")) + "\n")
    stream.flush()


def table_of(summary: BatchSummary) -> str:
    """The batch's table (Lambda delivers one stream per batch), ``(none)`` or ``(several)``."""
    if len(summary.tables) == 1:
        return summary.tables[0]
    return "(several)" if summary.tables else "(none)"


def oldest_creation(raw_records: Iterable[object]) -> float | None:
    """The smallest ``dynamodb.ApproximateCreationDateTime`` (epoch seconds) of Lambda records."""
    oldest: float | None = None
    for raw in raw_records:
        ddb = raw.get("dynamodb") if isinstance(raw, Mapping) else None
        created = ddb.get("ApproximateCreationDateTime") if isinstance(ddb, Mapping) else None
        if isinstance(created, int | float) and not isinstance(created, bool):
            oldest = created if oldest is None or created < oldest else oldest
    return oldest


def entity_fields(
    table: str, key: tuple[str, str], version: int, **more: object
) -> dict[str, object]:
    """``extra=`` of a log line about one entity.

    ``{"cqrs": {"requestId", "table", "pk", "sk", "version", ...more}}``.
    """
    fields: dict[str, object] = {
        "requestId": current_request_id(),
        "table": table,
        "pk": key[0],
        "sk": key[1],
        "version": version,
    }
    return {"cqrs": fields | more}


def request_suffix() -> str:
    """`` [request <id>]`` inside a :func:`request_scope`, else empty (for log messages)."""
    request_id = current_request_id()
    return f" [request {request_id}]" if request_id else ""


#: Handles a stream event and returns the full report (e.g. ``Cqrs.process_event``).
ReportingHandler = Callable[[Mapping[str, object]], "BatchReport"]


def observing(
    process: ReportingHandler, on_batch: Callable[[BatchSummary], object]
) -> Callable[[Mapping[str, object]], Mapping[str, object]]:
    """A follower handler that runs ``process`` and tells ``on_batch`` each batch's summary."""

    def handler(event: Mapping[str, object]) -> Mapping[str, object]:
        report = process(event)
        on_batch(BatchSummary.of(report))
        return report.response()

    return handler
