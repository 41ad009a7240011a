"""The synchronizer: command-table stream records → projection → partial batch response.

Records are routed by table: a command table's records go to that entity's
:class:`~cqrs.projection.Projector`; other tables (``tasks``) go to consumers
registered with :meth:`Synchronizer.add_consumer`. Records that are not new
commands (MODIFY of status fields, REMOVE by TTL) are ignored.

When an entity fails at version N, the first record of that entity carrying a
version ≥ N is reported as a batch item failure; its later records are not
applied ahead of it (the projector stops the entity at N). Lambda retries from
the lowest reported sequence number; records already applied are skipped.

A command that keeps failing is not retried forever: with a
:class:`FailurePolicy` (the app's :class:`~cqrs.sync_failures.SyncFailures`),
once the policy says the entity is stuck its records are acknowledged instead
of reported, so the rest of the shard moves on (see :mod:`cqrs.sync_failures`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidEventError
from .keys import remove_version
from .stream_records import StreamRecord, batch_response, parse_record

if TYPE_CHECKING:
    from .projection import EntityKey, EntityOutcome, Projector

logger = logging.getLogger("cqrs.synchronizer")

#: A consumer of another table's records: returns the sequence numbers that failed.
RecordConsumer = Callable[[Sequence[StreamRecord]], Sequence[str]]

#: Told of an entity's failure (command table, outcome, its highest version in the
#: batch); returns ``True`` to acknowledge the records because the entity is stuck.
FailurePolicy = Callable[[str, "EntityOutcome", int], bool]


@dataclass
class BatchReport:
    """The outcome of one batch."""

    received: int = 0
    applied: int = 0  # new command records whose version is now in data
    ignored: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stuck: list[EntityKey] = field(default_factory=list)  # failed, but acknowledged

    def response(self) -> dict[str, Any]:
        """Lambda's partial batch response."""
        return batch_response(self.failed)


class Synchronizer:
    """Routes stream records to projectors and consumers."""

    def __init__(
        self,
        projector_for_table: Callable[[str], Projector | None],
        failures: FailurePolicy | None = None,
    ) -> None:
        self._projector_for_table = projector_for_table
        self._consumers: dict[str, RecordConsumer] = {}
        self.failures = failures

    def add_consumer(self, table_name: str, consumer: RecordConsumer) -> None:
        """Route records of ``table_name`` (e.g. the tasks table) to ``consumer``."""
        self._consumers[table_name] = consumer

    def handle_event(self, event: Mapping[str, Any]) -> BatchReport:
        """Process a Lambda DynamoDB stream event."""
        raw_records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(raw_records, list):
            raise InvalidEventError("event must be a mapping with a 'Records' list")
        report = BatchReport(received=len(raw_records))
        records: list[StreamRecord] = []
        for raw in raw_records:
            try:
                records.append(parse_record(raw))
            except InvalidEventError as exc:
                seq = _sequence_number(raw)
                if seq is None:
                    raise
                logger.error("malformed stream record %s: %s", seq, exc)
                report.failed.append(seq)
                report.errors.append(exc)
        by_table: dict[str, list[StreamRecord]] = defaultdict(list)
        for record in records:
            by_table[record.table_name].append(record)
        for table, table_records in by_table.items():
            self._route(table, table_records, report)
        return report

    def _route(self, table: str, records: list[StreamRecord], report: BatchReport) -> None:
        consumer = self._consumers.get(table)
        if consumer is not None:
            report.failed.extend(consumer(records))
            return
        projector = self._projector_for_table(table)
        if projector is None:
            logger.warning(
                "no projector or consumer for table %s: %d records ignored", table, len(records)
            )
            report.ignored += len(records)
            return
        commands = [r for r in records if r.is_new_command]
        report.ignored += len(records) - len(commands)
        if not commands:
            return
        outcomes = projector.apply(r.new_image for r in commands if r.new_image is not None)
        by_entity: dict[EntityKey, list[StreamRecord]] = defaultdict(list)
        for r in commands:
            assert r.new_image is not None
            by_entity[(r.new_image["pk"], remove_version(r.new_image["sk"]))].append(r)
        for key, entity_records in by_entity.items():
            outcome = outcomes[key]
            if outcome.ok:
                report.applied += len(entity_records)
                continue
            assert outcome.failed_version is not None and outcome.error is not None
            logger.error(
                "%s %s failed at version %s: %r", table, key, outcome.failed_version, outcome.error
            )
            report.errors.append(outcome.error)
            failed_at = outcome.failed_version
            report.applied += sum(1 for r in entity_records if _version(r) < failed_at)
            target = max(_version(r) for r in entity_records)
            if self.failures is not None and self.failures(table, outcome, target):
                report.stuck.append(key)
                continue
            first_failed = next(r for r in entity_records if _version(r) >= failed_at)
            report.failed.append(first_failed.sequence_number)


def _version(record: StreamRecord) -> int:
    assert record.new_image is not None
    return int(record.new_image["version"])


def _sequence_number(raw: Any) -> str | None:
    if isinstance(raw, Mapping) and isinstance(raw.get("dynamodb"), Mapping):
        seq = raw["dynamodb"].get("SequenceNumber")
        return seq if isinstance(seq, str) else None
    return None
