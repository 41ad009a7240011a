"""Parsing DynamoDB stream records, in Lambda's event shape.

Both entry points produce this shape: Lambda hands it to :func:`cqrs.aws.handler`
and the local follower (:mod:`cqrs.sync.follower`) builds it from the DynamoDB
Streams API, so one handler serves both.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..core.errors import CqrsError, InvalidEventError
from ..core.items import SYNC_MODE, is_sync_marked
from ..core.keys import split_version, validate_key, version_of
from .codec import Item, decode_image, from_wire_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.type_defs import RecordTypeDef

#: How much of a rejected record is kept (its JSON text), to stay far below 400 KB.
MAX_KEPT_RECORD_CHARS = 64 * 1024


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

    @property
    def is_sync_published(self) -> bool:
        """An INSERT of a command its writer projected itself (``syncMode: "SYNC"``: MBC's
        ``publishSync`` or ours). Consumers skip it, as MBC's ``DefaultEventFactory`` does."""
        return self.event_name == "INSERT" and is_sync_marked(self.new_image)

    @property
    def is_handed_back(self) -> bool:
        """A MODIFY that removed a command's ``syncMode`` marker: a ``publish_sync`` whose
        projection failed hands its command to the stream this way (apply it)."""
        return (
            self.event_name == "MODIFY"
            and self.new_image is not None
            and is_sync_marked(self.old_image)
            and SYNC_MODE not in self.new_image
        )


@dataclass(frozen=True)
class RejectedRecord:
    """A stream record that cannot be processed: not parseable, or not a valid command image.

    It is acknowledged (never retried: no retry can make it valid), recorded in
    ``sync-failures`` and raises the ``record-rejected`` alarm. ``raw`` is the record's
    JSON text (cut at :data:`MAX_KEPT_RECORD_CHARS`); ``table`` and ``sequence_number``
    are ``None`` when the record did not say.
    """

    reason: str
    raw: str
    table: str | None = None
    sequence_number: str | None = None
    pk: str | None = None
    sk: str | None = None
    rejected_at: str | None = None  # when it was kept (rows read back from sync-failures)

    @classmethod
    def of(cls, raw: object, reason: str, record: StreamRecord | None = None) -> RejectedRecord:
        """Describe ``raw`` (a Lambda record, possibly malformed) rejected for ``reason``."""
        try:
            text = json.dumps(raw, default=repr, sort_keys=True)[:MAX_KEPT_RECORD_CHARS]
        except (RecursionError, ValueError):  # nested beyond reason: keep its repr instead
            text = reprlib.repr(raw)
        table = record.table_name if record else _table_of(raw)
        seq = record.sequence_number if record else sequence_number_of(raw)
        image = record.new_image if record else None
        pk = image.get("pk") if image else None
        sk = image.get("sk") if image else None
        return cls(
            reason,
            text,
            table,
            seq,
            pk if isinstance(pk, str) else None,
            sk if isinstance(sk, str) else None,
        )


def command_image_problem(record: StreamRecord) -> str | None:
    """Why an INSERT into a command table is not a command this framework can apply
    (``None`` when it is one): keys, the ``@version`` suffix and ``version`` must agree."""
    image = record.new_image
    if image is None:
        return "INSERT without NewImage (the stream must carry new images)"
    pk, sk, version = image.get("pk"), image.get("sk"), image.get("version")
    if not isinstance(pk, str) or not isinstance(sk, str):
        return "command image without string 'pk' and 'sk'"
    try:
        base, suffix = split_version(sk)
        validate_key(pk, base)
    except CqrsError as exc:
        return f"command key is invalid: {exc}"
    if suffix is None:
        return f"command sk {sk!r} has no '@<version>' suffix"
    if isinstance(version, bool) or not isinstance(version, int):
        return f"command 'version' must be a number, got {version!r}"
    if version != suffix:
        return f"command 'version' {version} disagrees with its sk {sk!r}"
    return None


def table_name_of_arn(arn: str) -> str:
    """``arn:aws:dynamodb:<region>:<acct>:table/<name>/stream/<label>`` → ``<name>``."""
    _, sep, rest = arn.partition(":table/")
    if not sep or not rest:
        raise InvalidEventError(f"not a DynamoDB stream ARN: {arn!r}")
    return rest.split("/", 1)[0]


def parse_records(event: Mapping[str, object]) -> list[StreamRecord]:
    """Parse a Lambda DynamoDB stream event. Raises :class:`InvalidEventError` if malformed."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise InvalidEventError("event must be a mapping with a 'Records' list")
    return [parse_record(r) for r in records]


def parse_record(raw: object) -> StreamRecord:
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
        new = decode_image(ddb["NewImage"]) if ddb.get("NewImage") else None  # wire kept
        old = from_wire_item(ddb["OldImage"]) if ddb.get("OldImage") else None
    except IMAGE_DECODE_ERRORS as exc:
        raise InvalidEventError(f"record {seq}: image is not DynamoDB JSON: {exc}") from exc
    return StreamRecord(seq, name, table_name_of_arn(arn), arn, new, old)


def to_lambda_record(record: RecordTypeDef, stream_arn: str, region: str) -> dict[str, object]:
    """A DynamoDB Streams API ``GetRecords`` record → the shape Lambda delivers (what
    :func:`parse_record` reads: JSON values, the creation time in epoch seconds)."""
    ddb: dict[str, object] = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
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


def _table_of(raw: object) -> str | None:
    arn = raw.get("eventSourceARN") if isinstance(raw, Mapping) else None
    if not isinstance(arn, str):
        return None
    try:
        return table_name_of_arn(arn)
    except InvalidEventError:
        return None


def sequence_number_of(raw: object) -> str | None:
    """``dynamodb.SequenceNumber`` of a Lambda-shaped record, ``None`` when it has none."""
    ddb = raw.get("dynamodb") if isinstance(raw, Mapping) else None
    seq = ddb.get("SequenceNumber") if isinstance(ddb, Mapping) else None
    return seq if isinstance(seq, str) else None


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":", 4)
    return parts[3] if len(parts) == 5 and parts[0] == "arn" and parts[3] else None


#: What decoding DynamoDB JSON raises for a value that is not DynamoDB JSON.
IMAGE_DECODE_ERRORS = (
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    ArithmeticError,
    RecursionError,
)


def parse_image(wire: object, what: str) -> Item | None:
    """Decode one DynamoDB JSON map of a stream record (``Keys``, ``NewImage`` …) as
    :func:`parse_record` decodes images: empty or absent → ``None``; not a map, or not
    DynamoDB JSON → :class:`InvalidEventError` naming ``what``."""
    if not wire:
        return None
    if not isinstance(wire, Mapping):
        raise InvalidEventError(f"{what} must be a DynamoDB JSON map")
    try:
        return from_wire_item(wire)
    except IMAGE_DECODE_ERRORS as exc:
        raise InvalidEventError(f"{what} is not DynamoDB JSON: {exc}") from exc
