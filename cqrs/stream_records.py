"""Parsing DynamoDB stream records, in Lambda's event shape.

Both entry points produce this shape: Lambda hands it to :func:`cqrs.aws.handler`
and the local follower (:mod:`cqrs.stream_reader`) builds it from the DynamoDB
Streams API, so one handler serves both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .codec import Item, deserialize
from .errors import InvalidEventError
from .keys import version_of


@dataclass(frozen=True)
class StreamRecord:
    """One stream record: where it came from and the item images it carries."""

    sequence_number: str
    event_name: str  # INSERT | MODIFY | REMOVE
    table_name: str
    source_arn: str
    new_image: Item | None
    old_image: Item | None

    @property
    def is_new_command(self) -> bool:
        """An INSERT of an item whose sort key carries ``@<version>``."""
        if self.event_name != "INSERT" or self.new_image is None:
            return False
        sk = self.new_image.get("sk")
        return isinstance(sk, str) and version_of(sk) is not None and "version" in self.new_image


def table_name_of_arn(arn: str) -> str:
    """``arn:aws:dynamodb:<region>:<acct>:table/<name>/stream/<label>`` → ``<name>``."""
    _, sep, rest = arn.partition(":table/")
    if not sep or not rest:
        raise InvalidEventError(f"not a DynamoDB stream ARN: {arn!r}")
    return rest.split("/", 1)[0]


def parse_records(event: Mapping[str, Any]) -> list[StreamRecord]:
    """Parse a Lambda DynamoDB stream event. Raises :class:`InvalidEventError` if malformed."""
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        raise InvalidEventError("event must be a mapping with a 'Records' list")
    return [parse_record(r) for r in event["Records"]]


def parse_record(raw: Any) -> StreamRecord:
    """Parse one record of a Lambda DynamoDB stream event."""
    if not isinstance(raw, Mapping):
        raise InvalidEventError(f"stream record must be a mapping, got {type(raw).__name__}")
    ddb = raw.get("dynamodb")
    arn = raw.get("eventSourceARN")
    if not isinstance(ddb, Mapping) or not isinstance(arn, str):
        raise InvalidEventError("stream record needs 'dynamodb' and 'eventSourceARN'")
    seq = ddb.get("SequenceNumber")
    name = raw.get("eventName")
    if not isinstance(seq, str) or name not in ("INSERT", "MODIFY", "REMOVE"):
        raise InvalidEventError("stream record needs dynamodb.SequenceNumber and eventName")
    try:
        new = deserialize(ddb["NewImage"]) if ddb.get("NewImage") else None
        old = deserialize(ddb["OldImage"]) if ddb.get("OldImage") else None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise InvalidEventError(f"record {seq}: image is not DynamoDB JSON: {exc}") from exc
    return StreamRecord(seq, name, table_name_of_arn(arn), arn, new, old)


def to_lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams API ``GetRecords`` record → the shape Lambda delivers."""
    ddb = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if created is not None and not isinstance(created, (int, float)):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        # The table's region, as Lambda reports it (moto's GetRecords says us-east-1).
        "awsRegion": _region_of_arn(stream_arn) or record.get("awsRegion", region),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":", 4)
    return parts[3] if len(parts) == 5 and parts[0] == "arn" and parts[3] else None


def batch_response(failed_sequence_numbers: Sequence[str]) -> dict[str, Any]:
    """Lambda's partial batch response for ``ReportBatchItemFailures``."""
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failed_sequence_numbers]}
