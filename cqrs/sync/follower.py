"""Reading table streams with the DynamoDB Streams API (moto, DynamoDB Local, AWS).

:class:`StreamFollower` is the local stand-in for Lambda's event source
mapping: it reads each stream shard in order (parents before children),
hands batches in Lambda's event shape to a handler, and checkpoints per
stream ARN and shard. When the handler reports failed records, the shard's
checkpoint stops just before the first failure, so the next poll redelivers
from there, as Lambda does.

Every stream call goes through :class:`~cqrs.store.streams.StreamsGateway`, so
failures arrive classified: a throttled ``GetRecords`` is a
:class:`~cqrs.core.errors.ThrottledError` (retryable), a denied one an
:class:`~cqrs.core.errors.AccessDeniedError`. A shard whose data is gone (trimmed, or
the stream was replaced) is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..store.stream_records import sequence_number_of, to_lambda_record

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.type_defs import ShardTypeDef

    from ..store.streams import StreamsGateway

logger = logging.getLogger("cqrs.sync.follower")

#: One stream record in Lambda's shape (:func:`~cqrs.store.stream_records.to_lambda_record`).
LambdaRecord = dict[str, object]
#: Handles a Lambda stream event (``{"Records": [...]}``); returns the partial batch
#: response (``{"batchItemFailures": [{"itemIdentifier": sequence number}]}``).
EventHandler = Callable[[dict[str, list[LambdaRecord]]], Mapping[str, object]]


class CheckpointStore(Protocol):
    """Where the follower remembers the last processed sequence number per shard."""

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        """The last processed sequence number, or ``None`` to start at the trim horizon."""
        ...

    def put(self, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        """Record ``sequence_number`` as processed."""
        ...


class MemoryCheckpoints:
    """Checkpoints kept in memory (one process, e.g. the embedded engine)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], str] = {}

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        """See :class:`CheckpointStore`."""
        return self._data.get((stream_arn, shard_id))

    def put(self, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        """See :class:`CheckpointStore`."""
        self._data[(stream_arn, shard_id)] = sequence_number


class FileCheckpoints(MemoryCheckpoints):
    """Checkpoints persisted as JSON (for ``cqrs sync`` against a long-lived engine)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        if path.exists():
            for entry in json.loads(path.read_text()):
                self._data[(entry["stream"], entry["shard"])] = entry["sequence"]

    def put(self, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        """See :class:`CheckpointStore`; writes the file atomically."""
        super().put(stream_arn, shard_id, sequence_number)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        rows = [{"stream": s, "shard": h, "sequence": q} for (s, h), q in self._data.items()]
        tmp.write_text(json.dumps(rows, indent=1))
        tmp.replace(self._path)


@dataclass
class PollReport:
    """What one :meth:`StreamFollower.poll` did."""

    records: int = 0
    batches: int = 0
    failed: int = 0


class StreamFollower:
    """Follows the streams of some tables and feeds their records to a handler."""

    def __init__(
        self,
        streams: StreamsGateway,
        tables: Iterable[str],
        handler: EventHandler,
        *,
        checkpoints: CheckpointStore | None = None,
        batch_size: int = 100,
        region: str = "ap-northeast-1",
    ) -> None:
        self._streams = streams
        self._tables = list(tables)
        self._handler = handler
        self._checkpoints = checkpoints or MemoryCheckpoints()
        self._batch_size = batch_size
        self._region = region

    def with_handler(self, handler: EventHandler) -> StreamFollower:
        """The same follower (streams, checkpoints, batch size) feeding ``handler`` instead,
        e.g. :func:`cqrs.sync.telemetry.observing` around the app's ``process_event``."""
        return StreamFollower(
            self._streams,
            self._tables,
            handler,
            checkpoints=self._checkpoints,
            batch_size=self._batch_size,
            region=self._region,
        )

    def stream_arns(self) -> list[str]:
        """The latest stream ARN of each followed table that has a stream."""
        arns = (self._streams.stream_arn(table) for table in self._tables)
        return [arn for arn in arns if arn]

    def read_records(self) -> list[LambdaRecord]:
        """Every record after the checkpoints, in Lambda's shape, without handling them."""
        out: list[LambdaRecord] = []
        for arn in self.stream_arns():
            for shard in self._shards(arn):
                for batch in self._batches(arn, shard):
                    out.extend(batch)
        return out

    def poll(self) -> PollReport:
        """Read every stream once, up to its current end, handling each batch."""
        report = PollReport()
        for arn in self.stream_arns():
            for shard in self._shards(arn):
                self._poll_shard(arn, shard, report)
        return report

    def drain(self, max_polls: int = 50) -> PollReport:
        """Poll until a poll finds no new records (or only failing ones)."""
        total = PollReport()
        for _ in range(max_polls):
            report = self.poll()
            total.records += report.records
            total.batches += report.batches
            total.failed += report.failed
            if report.records == 0 or report.records == report.failed:
                break
        return total

    def follow(self, stop: threading.Event, interval: float = 0.25) -> None:
        """Poll until ``stop`` is set, sleeping ``interval`` between idle polls."""
        while not stop.is_set():
            try:
                report = self.poll()
            except Exception:
                logger.exception("stream poll failed; retrying")
                report = PollReport()
            if report.records == 0 or report.failed:
                stop.wait(interval)

    # -- internals ---------------------------------------------------------------

    def _poll_shard(self, arn: str, shard: str, report: PollReport) -> None:
        """Hand each batch of one shard to the handler; stop at the first failed batch."""
        for batch in self._batches(arn, shard):
            report.batches += 1
            report.records += len(batch)
            failed = _failed_ids(self._handler({"Records": batch}))
            done = _processed_prefix(batch, failed)
            last = sequence_number_of(done[-1]) if done else None
            if last is not None:
                self._checkpoints.put(arn, shard, last)
            if failed:
                report.failed += len(batch) - len(done)
                return  # retry this shard from the first failure on the next poll

    def _shards(self, arn: str) -> list[str]:
        return parents_first(self._streams.shards(arn))

    def _batches(self, arn: str, shard: str) -> Iterator[list[LambdaRecord]]:
        after = self._checkpoints.get(arn, shard)
        iterator = self._streams.iterator(arn, shard, after)
        if iterator is None:
            logger.warning(
                "shard %s of %s is gone (trimmed, or the stream was replaced)", shard, arn
            )
            return
        for records in self._streams.records(arn, iterator, self._batch_size):
            yield [to_lambda_record(r, arn, self._region) for r in records]


def parents_first(shards: Iterable[ShardTypeDef]) -> list[str]:
    """Shard ids ordered parents before children: a child's records follow its parent's.

    A parent that is not listed (trimmed away) does not hold its children back.
    """
    remaining = list(shards)
    ids = {s["ShardId"] for s in remaining}
    ordered: list[str] = []
    while remaining:
        ready = [
            s
            for s in remaining
            if s.get("ParentShardId") not in ids or s["ParentShardId"] in ordered
        ]
        if not ready:
            ready = list(remaining)  # a parent cycle cannot happen; don't spin if it does
        for s in ready:
            ordered.append(s["ShardId"])
            remaining.remove(s)
    return ordered


def _failed_ids(response: Mapping[str, object]) -> set[object]:
    """The ``itemIdentifier`` of every failure a partial batch response reports."""
    failures = response.get("batchItemFailures", [])
    if not isinstance(failures, list):
        raise TypeError(f"batchItemFailures must be a list, got {failures!r}")
    ids: set[object] = set()
    for failure in failures:
        if not isinstance(failure, Mapping):
            raise TypeError(f"a batch item failure must be a mapping, got {failure!r}")
        ids.add(failure["itemIdentifier"])
    return ids


def _processed_prefix(batch: list[LambdaRecord], failed: set[object]) -> list[LambdaRecord]:
    """The records before the first failed one (what may be checkpointed)."""
    for i, record in enumerate(batch):
        if sequence_number_of(record) in failed:
            return batch[:i]
    return batch
