"""The synchronizer: command-table stream records → projection → partial batch response.

Records are routed by table: a command table's records go to that entity's
:class:`~cqrs.sync.projection.Projector`; other tables (``tasks``) go to consumers
registered with :meth:`Synchronizer.add_consumer`. MODIFY and REMOVE records
(status fields, TTL expiry) are ignored, and so is the INSERT of a command marked
``syncMode: "SYNC"`` (its writer projected it: MBC's ``publishSync``, our
``publish_sync``), unless a failed ``publish_sync`` hands it back (a MODIFY removing
the marker: that one is applied).

When an entity fails at version N, the first record of that entity carrying a
version ≥ N is reported as a batch item failure; its later records are not
applied ahead of it (the projector stops the entity at N). Lambda retries from
the lowest reported sequence number; records already applied are skipped.

Nothing blocks a shard:

- a command that keeps failing is not retried forever: with a
  :class:`FailurePolicy` (the app's :class:`~cqrs.sync.failures.SyncFailures`),
  once the policy says the entity is stuck its records are acknowledged instead
  of reported, so the rest of the shard moves on (see :mod:`cqrs.sync.failures`);
- a record that cannot be processed at all (not parseable, or an INSERT into a
  command table that is not a valid command image) is *rejected*: acknowledged,
  handed to the :class:`RejectionSink` (recorded in ``sync-failures``, alarm
  raised) and never retried, since no retry can make it valid. The valid records
  of the batch are applied as usual.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ..core.errors import InvalidEventError, UnexpectedError, is_retryable
from ..core.items import CommandItem
from ..store.stream_records import (
    RejectedRecord,
    StreamRecord,
    command_image_problem,
    parse_record,
)
from . import tracing
from .telemetry import current_request_id, entity_fields, oldest_creation, request_suffix

if TYPE_CHECKING:
    from .projection import EntityKey, EntityOutcome, Projector

logger = logging.getLogger("cqrs.sync.synchronizer")

#: Lambda's partial batch response: ``{"batchItemFailures": [{"itemIdentifier": seq}]}``
#: (the shape of :class:`cqrs.events.batch.PartialBatchResponse`, as a plain dict).
BatchResponse = dict[str, list[dict[str, str]]]

#: A consumer of another table's records: returns the sequence numbers that failed.
RecordConsumer = Callable[[Sequence[StreamRecord]], Sequence[str]]


class Verdict(StrEnum):
    """What to do with the records of an entity whose sync failed."""

    RETRY = "retry"  # report the first failed record: Lambda retries from there
    STUCK = "stuck"  # acknowledge: the entity is stuck (recorded, alarmed), the shard moves on
    APPLIED = "applied"  # acknowledge: the data table already holds every version of the batch


#: Told of an entity's failure (command table, outcome, its highest version in the
#: batch); says what to do with its records.
FailurePolicy = Callable[[str, "EntityOutcome", int], Verdict]

#: Told of a rejected record; records it durably (raises if it could not).
RejectionSink = Callable[[RejectedRecord], object]


@dataclass
class BatchReport:
    """The outcome of one batch."""

    received: int = 0
    applied: int = 0  # new command records whose version is now in data
    ignored: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stuck: list[EntityKey] = field(default_factory=list)  # failed, but acknowledged
    rejected: list[RejectedRecord] = field(default_factory=list)  # acknowledged, recorded
    consumed: int = 0  # records of other tables (tasks) handled without failure
    tables: list[str] = field(default_factory=list)  # the tables the records came from
    #: Seconds from the oldest record's ``ApproximateCreationDateTime`` to the batch's
    #: end (the lag); ``None`` when no record carried one.
    oldest_record_age: float | None = None
    duration: float = 0.0  # seconds spent handling the batch

    def response(self) -> BatchResponse:
        """Lambda's partial batch response (built here: importing :mod:`cqrs.events.batch`
        would load the events package's models on the handler's cold path)."""
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failed]}


class Synchronizer:
    """Routes stream records to projectors and consumers."""

    def __init__(
        self,
        projector_for_table: Callable[[str], Projector | None],
        failures: FailurePolicy | None = None,
        rejections: RejectionSink | None = None,
    ) -> None:
        self._projector_for_table = projector_for_table
        self._consumers: dict[str, RecordConsumer] = {}
        self.failures = failures
        self.rejections = rejections

    def add_consumer(self, table_name: str, consumer: RecordConsumer) -> None:
        """Route records of ``table_name`` (e.g. the tasks table) to ``consumer``."""
        self._consumers[table_name] = consumer

    def handle_event(self, event: Mapping[str, object]) -> BatchReport:
        """Process a Lambda DynamoDB stream event.

        Raises :class:`~cqrs.core.errors.InvalidEventError` only when the event itself is not a
        stream event (no ``Records`` list); a bad record never fails its batch.
        """
        raw_records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(raw_records, list):
            raise InvalidEventError("event must be a mapping with a 'Records' list")
        started = time.perf_counter()
        report = BatchReport(received=len(raw_records))
        with tracing.span("cqrs.batch", records=len(raw_records)) as span:
            by_table: dict[str, list[StreamRecord]] = defaultdict(list)
            raw_of: dict[int, object] = {}
            for raw in raw_records:
                try:
                    record = parse_record(raw)
                except InvalidEventError as exc:
                    self._reject(RejectedRecord.of(raw, str(exc)), report)
                    continue
                raw_of[id(record)] = raw
                by_table[record.table_name].append(record)
            report.tables = list(by_table)
            for table, table_records in by_table.items():
                self._route(table, table_records, raw_of, report)
            _finish(report, raw_records, started, span)
        return report

    def _route(
        self,
        table: str,
        records: list[StreamRecord],
        raw_of: Mapping[int, object],
        report: BatchReport,
    ) -> None:
        consumer = self._consumers.get(table)
        if consumer is not None:
            with tracing.span("cqrs.consume", table=table, records=len(records)) as span:
                failed = list(consumer(records))
                tracing.set_attributes(span, failed=len(failed))
            report.failed.extend(failed)
            report.consumed += len(records) - len(failed)
            return
        projector = self._projector_for_table(table)
        if projector is None:
            logger.warning(
                "no projector or consumer for table %s: %d records ignored", table, len(records)
            )
            report.ignored += len(records)
            return
        commands: list[Delivered] = []
        for r in records:
            if (r.event_name != "INSERT" or r.is_sync_published) and not r.is_handed_back:
                report.ignored += 1  # MODIFY, REMOVE, a command its writer projected (SYNC)
                continue
            try:
                commands.append(Delivered(r, command_of(r)))
            except InvalidEventError as exc:
                self._reject(RejectedRecord.of(raw_of[id(r)], str(exc), r), report)
        if commands:
            self._project(table, projector, commands, report)

    def _project(
        self, table: str, projector: Projector, commands: list[Delivered], report: BatchReport
    ) -> None:
        by_entity: dict[EntityKey, list[Delivered]] = defaultdict(list)
        for d in commands:
            by_entity[d.command.key].append(d)
        entities = len(by_entity)
        with tracing.span(
            "cqrs.project", table=table, commands=len(commands), entities=entities
        ) as span:
            try:
                outcomes = projector.apply(d.command for d in commands)
            except Exception as exc:  # a bug must not escape: each entity fails with it
                from .projection import EntityOutcome

                logger.exception("%s: projection raised%s", table, request_suffix())
                error = UnexpectedError(f"{table}: projection raised {exc!r}", cause=exc)
                outcomes = {
                    key: EntityOutcome(key, error=error, failed_version=min(r.version for r in rs))
                    for key, rs in by_entity.items()
                }
            for key, entity_records in by_entity.items():
                self._settle(table, outcomes[key], entity_records, report, span)

    def _settle(
        self,
        table: str,
        outcome: EntityOutcome,
        entity_records: list[Delivered],
        report: BatchReport,
        span: object = tracing.NO_SPAN,
    ) -> None:
        """Count an entity's records as applied, reported for retry, or stuck."""
        if outcome.ok:
            report.applied += len(entity_records)
            _log_applied(table, outcome, entity_records)
            return
        assert outcome.failed_version is not None and outcome.error is not None
        report.errors.append(outcome.error)
        failed_at = outcome.failed_version
        report.applied += sum(1 for r in entity_records if r.version < failed_at)
        target = max(r.version for r in entity_records)
        verdict = self.failures(table, outcome, target) if self.failures else Verdict.RETRY
        _log_failed(table, outcome, verdict, span)
        if verdict is Verdict.STUCK:
            report.stuck.append(outcome.key)
            return
        if verdict is Verdict.APPLIED:
            report.applied += sum(1 for r in entity_records if r.version >= failed_at)
            return
        first_failed = next(r for r in entity_records if r.version >= failed_at)
        report.failed.append(first_failed.sequence_number)

    def _reject(self, rejected: RejectedRecord, report: BatchReport) -> None:
        """Acknowledge a record no retry can make valid, after recording it. Only when the
        record cannot be recorded now (a transient failure) is it reported for a retry."""
        logger.error(
            "rejected stream record %s of %s: %s%s",
            rejected.sequence_number,
            rejected.table,
            rejected.reason,
            request_suffix(),
            extra={
                "cqrs": {
                    "requestId": current_request_id(),
                    "table": rejected.table,
                    "sequenceNumber": rejected.sequence_number,
                }
            },
        )
        report.rejected.append(rejected)
        if self.rejections is None:
            return
        try:
            self.rejections(rejected)
        except Exception as exc:
            logger.exception("could not record rejected record %s", rejected.sequence_number)
            if is_retryable(exc) and rejected.sequence_number is not None:
                report.failed.append(rejected.sequence_number)
                report.errors.append(exc)


def _finish(report: BatchReport, raw_records: list[object], started: float, span: object) -> None:
    """Stamp the batch's lag and duration on ``report`` (and its span)."""
    oldest = oldest_creation(raw_records)
    report.oldest_record_age = None if oldest is None else max(time.time() - oldest, 0.0)
    report.duration = time.perf_counter() - started
    tracing.set_attributes(
        span,
        applied=report.applied,
        failed=len(report.failed),
        stuck=len(report.stuck),
        rejected=len(report.rejected),
        tables=",".join(report.tables),
    )


def _log_applied(table: str, outcome: EntityOutcome, records: list[Delivered]) -> None:
    """A DEBUG line per entity applied: table, key, versions, request id."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    version = max(r.version for r in records)
    logger.debug(
        "%s %s / %s applied through version %d%s", table, outcome.key[0], outcome.key[1],
        version, request_suffix(), extra=entity_fields(table, outcome.key, version),
    )  # fmt: skip


def _log_failed(table: str, outcome: EntityOutcome, verdict: Verdict, span: object) -> None:
    """A WARNING line per entity that failed (ERROR when it is given up on: stuck)."""
    version = outcome.failed_version or 0
    levels = {Verdict.STUCK: logging.ERROR, Verdict.APPLIED: logging.INFO}
    level = levels.get(verdict, logging.WARNING)
    logger.log(
        level, "%s %s / %s failed at version %d (%s)%s: %r", table, outcome.key[0],
        outcome.key[1], version, verdict.value, request_suffix(), outcome.error,
        extra=entity_fields(table, outcome.key, version, verdict=verdict.value),
    )  # fmt: skip
    tracing.add_event(
        span, "cqrs.entity.failed", pk=outcome.key[0], sk=outcome.key[1], version=version,
        verdict=verdict.value, error=repr(outcome.error),
    )  # fmt: skip


@dataclass(frozen=True)
class Delivered:
    """A stream record and the command it carries."""

    record: StreamRecord
    command: CommandItem

    @property
    def version(self) -> int:
        """The command's version."""
        return self.command.version

    @property
    def sequence_number(self) -> str:
        """The record's sequence number."""
        return self.record.sequence_number


def command_of(record: StreamRecord) -> CommandItem:
    """The command an INSERT into a command table carries, or :class:`InvalidEventError`
    saying why the image is not one (keys, ``@version``, field types)."""
    problem = command_image_problem(record)
    if problem is not None:
        raise InvalidEventError(problem)
    assert record.new_image is not None
    return CommandItem.from_item(record.new_image)
