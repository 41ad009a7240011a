"""Lambda-like delivery of stream records, with malformed records slipped in (pytest kit).

:func:`deliver` feeds stream records to ``app.process_event`` the way Lambda
can: in batches, redelivering whole batches, with duplicates and reordered
records, and on a partial batch failure retrying from the first failed record,
until every batch has gone through without failure. A :class:`DeliveryPlan` can
also slip in malformed records (:data:`Corruption`): corrupted copies of real
records, which ``process_event`` must reject (acknowledge and keep), never raise
on nor report failed.

Example::

    plan = DeliveryPlan(batch_size=3, duplicates=[(4, 0)], malformed=[(0, 2, "version-text")])
    log = deliver(app, stream_records(app), plan)
    assert log.rejected == 1

Fault injection on the clients while delivering: :mod:`cqrs.testing.faults`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..sync.projection import EntityKey
    from ..sync.synchronizer import BatchReport

#: A stream record as Lambda delivers it: JSON, attribute values in DynamoDB's format.
RecordJson = Mapping[str, Any]
#: A planned record: ``(record, is it malformed)``; a malformed one may be any value.
Planned = tuple[object, bool]


Corruption = Literal[
    "no-pk",
    "version-text",
    "version-disagrees",
    "sk-without-version",
    "no-new-image",
    "not-dynamodb-json",
    "unknown-event",
    "no-sequence-number",
    "not-a-mapping",
]
#: Every way :func:`corrupt` can break a record.
CORRUPTIONS: tuple[Corruption, ...] = get_args(Corruption)


def corrupt(record: RecordJson, corruption: Corruption) -> object:
    """A malformed copy of a real stream record (``record`` is left untouched).

    - ``no-pk``: the new image has no ``pk``;
    - ``version-text``: ``version`` is ``{"S": "one"}``;
    - ``version-disagrees``: ``version`` is not the sk's ``@<version>``;
    - ``sk-without-version``: the sk (image and keys) lost its ``@<version>``;
    - ``no-new-image``: an INSERT without ``NewImage``;
    - ``not-dynamodb-json``: the image holds plain values, not attribute values;
    - ``unknown-event``: ``eventName`` is ``UPSERT``;
    - ``no-sequence-number``: ``dynamodb.SequenceNumber`` is gone;
    - ``not-a-mapping``: the record is a string.

    Each copy gets a sequence number of its own (the original's, plus two digits for the
    corruption), so the same corruption of the same record is the same record
    (delivered twice: kept once), and different ones are different records.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; one of {', '.join(CORRUPTIONS)}")
    bad = copy.deepcopy(dict(record))
    ddb = bad["dynamodb"]
    seq = f"{ddb['SequenceNumber']}{CORRUPTIONS.index(corruption) + 1:02d}"
    ddb["SequenceNumber"] = seq
    image = ddb.get("NewImage", {})
    if corruption == "no-pk":
        image.pop("pk", None)
    elif corruption == "version-text":
        image["version"] = {"S": "one"}
    elif corruption == "version-disagrees":
        image["version"] = {"N": str(int(image["version"]["N"]) + 7)}
    elif corruption == "sk-without-version":
        base = image["sk"]["S"].rsplit("@", 1)[0]
        image["sk"] = {"S": base}
        ddb.setdefault("Keys", {})["sk"] = {"S": base}
    elif corruption == "no-new-image":
        ddb.pop("NewImage", None)
    elif corruption == "not-dynamodb-json":
        ddb["NewImage"] = {k: _plain(v) for k, v in image.items()}
    elif corruption == "unknown-event":
        bad["eventName"] = "UPSERT"
    elif corruption == "no-sequence-number":
        del ddb["SequenceNumber"]
    else:  # not-a-mapping
        return f"not a stream record: {bad.get('eventSourceARN')} #{seq}"
    return bad


def _plain(value: object) -> object:
    """An attribute value's payload without its type (``{"S": "x"}`` → ``"x"``)."""
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def sequence_number(record: object) -> str | None:
    """A delivered record's ``dynamodb.SequenceNumber`` (``None`` if it has none)."""
    ddb = record.get("dynamodb") if isinstance(record, Mapping) else None
    seq = ddb.get("SequenceNumber") if isinstance(ddb, Mapping) else None
    return seq if isinstance(seq, str) else None


# -- delivery -------------------------------------------------------------------------


@dataclass
class DeliveryPlan:
    """How records reach the handler.

    ``order`` is a permutation of record indexes (default: as given); ``duplicates``
    are indexes of records delivered once more, inserted at ``(position, index)``;
    ``malformed`` inserts :func:`corrupt` copies at ``(position, index, corruption)``
    (after the duplicates); ``redeliver`` lists batch indexes delivered again (whole)
    after they succeeded.
    """

    batch_size: int = 100
    order: Sequence[int] | None = None
    duplicates: Sequence[tuple[int, int]] = ()
    redeliver: Sequence[int] = ()
    max_attempts: int = 20
    malformed: Sequence[tuple[int, int, Corruption]] = ()

    def planned(self, records: Sequence[RecordJson]) -> list[list[Planned]]:
        """The batches this plan delivers, before retries: ``(record, is it malformed)``."""
        order = list(self.order) if self.order is not None else list(range(len(records)))
        sequence: list[Planned] = [(records[i], False) for i in order]
        for position, index in self.duplicates:
            sequence.insert(min(position, len(sequence)), (records[index], False))
        for position, index, corruption in self.malformed:
            bad = corrupt(records[index], corruption)
            sequence.insert(min(position, len(sequence)), (bad, True))
        size = max(1, self.batch_size)
        batches = [sequence[i : i + size] for i in range(0, len(sequence), size)]
        for i in self.redeliver:
            if 0 <= i < len(batches):
                batches.insert(i + 1, list(batches[i]))
        return batches

    def batches(self, records: Sequence[RecordJson]) -> list[list[object]]:
        """The batches this plan delivers, before retries."""
        return [[r for r, _ in batch] for batch in self.planned(records)]

    def malformed_records(self, records: Sequence[RecordJson]) -> list[object]:
        """The distinct malformed records this plan delivers (each must be kept once)."""
        out: list[object] = []
        for _, index, corruption in self.malformed:
            bad = corrupt(records[index], corruption)
            if bad not in out:
                out.append(bad)
        return out


@dataclass
class DeliveryLog:
    """What :func:`deliver` did."""

    invocations: int = 0
    partial_failures: int = 0
    raised: int = 0
    errors: list[BaseException] = field(default_factory=list)
    malformed_delivered: int = 0  # malformed records handed to process_event, retries included
    malformed_retried: int = 0  # reported failed because keeping them failed transiently
    rejected: int = 0  # records the synchronizer rejected, over every invocation
    stuck: list[EntityKey] = field(default_factory=list)  # acknowledged while stuck


class DeliveryError(AssertionError):
    """A batch still failed after ``max_attempts``, or a malformed record made
    ``process_event`` raise or was reported failed without a transient cause."""


def deliver(app: Cqrs, records: Sequence[RecordJson], plan: DeliveryPlan) -> DeliveryLog:
    """Deliver ``records`` to ``app.process_event`` per ``plan``; return once all are applied.

    A batch is retried, like Lambda with ``ReportBatchItemFailures``, from the
    first record whose sequence number was reported failed (the records before
    it are checkpointed); if the handler raises, the whole batch is retried.

    Malformed records (``plan.malformed``) must be rejected: :class:`DeliveryError` if
    ``process_event`` raises on a batch holding one, or reports one failed while no
    error of the batch is retryable (only a transient failure to keep a rejected
    record justifies its retry).
    """
    log = DeliveryLog()
    for batch in plan.planned(records):
        _deliver_batch(app, batch, plan.max_attempts, log)
    return log


def _deliver_batch(app: Cqrs, batch: list[Planned], max_attempts: int, log: DeliveryLog) -> None:
    """Invoke ``process_event`` until the batch goes through (at most ``max_attempts``)."""
    pending = list(batch)
    for _ in range(max_attempts):
        log.invocations += 1
        malformed = [r for r, bad in pending if bad]
        log.malformed_delivered += len(malformed)
        try:
            report = app.process_event({"Records": [r for r, _ in pending]})
        except Exception as exc:  # Lambda retries the whole batch
            if malformed:
                raise DeliveryError(
                    f"process_event raised on a batch with {len(malformed)} malformed "
                    f"records: {exc!r}"
                ) from exc
            log.raised += 1
            log.errors.append(exc)
            continue
        rest = _after_report(report, pending, malformed, log)
        if rest is None:
            return
        pending = rest
    raise DeliveryError(f"batch still failing after {max_attempts} attempts: {log.errors[-3:]!r}")


def _after_report(
    report: BatchReport, pending: list[Planned], malformed: list[object], log: DeliveryLog
) -> list[Planned] | None:
    """Log one invocation's report; what Lambda redelivers next (``None``: nothing)."""
    from ..core.errors import is_retryable

    log.rejected += len(report.rejected)
    log.stuck.extend(report.stuck)
    if not report.failed:
        return None
    log.partial_failures += 1
    log.errors.extend(report.errors)
    failed = set(report.failed)
    bad_failed = [sequence_number(r) for r in malformed if sequence_number(r) in failed]
    if bad_failed and not any(is_retryable(e) for e in report.errors):
        raise DeliveryError(
            f"malformed records reported failed: {bad_failed}; errors: {report.errors!r}"
        )
    log.malformed_retried += len(bad_failed)
    first = next((i for i, (r, _) in enumerate(pending) if sequence_number(r) in failed), None)
    if first is None:
        raise DeliveryError(f"reported failures not in the batch: {sorted(failed)}")
    return pending[first:]
