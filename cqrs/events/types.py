"""Typed events: Lambda payloads (DynamoDB stream, SQS, SNS, EventBridge) as pydantic models.

:func:`parse_event` detects the source of a raw Lambda event and returns one of
:class:`DynamoDBStreamEvent`, :class:`SQSEvent`, :class:`SNSEvent` (batches of
:class:`DynamoDBRecord`, :class:`SQSMessage`, :class:`SNSMessage`) or an
:class:`EventBridgeEvent`. Malformed or unknown shapes raise
:class:`~cqrs.core.errors.InvalidEventError`.

Python names are snake_case; AWS's own field names are accepted as aliases
(``messageId``, ``eventSourceARN``, ``TopicArn``, ``detail-type`` …), and
``model_dump(by_alias=True)`` gives them back. Every event derives from
:class:`Event`, the type to subscribe to for "everything" on an
:class:`~cqrs.events.bus.EventBus`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import ClassVar, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_pascal

from ..core.errors import InvalidEventError
from ..core.items import Item
from ..store.stream_records import StreamRecord, parse_image, parse_record, table_name_of_arn

__all__ = [
    "DynamoDBRecord",
    "DynamoDBStreamEvent",
    "Event",
    "EventBatch",
    "EventBridgeEvent",
    "SNSEvent",
    "SNSMessage",
    "SNSMessageAttribute",
    "SQSEvent",
    "SQSMessage",
    "SQSMessageAttribute",
    "parse_event",
]


class Event(BaseModel):
    """Base of every event: Lambda records and messages, and in-process events."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @property
    def batch_item_id(self) -> str | None:
        """The id Lambda's partial batch response names this item by (``None``: not batched)."""
        return None


RecordT = TypeVar("RecordT", bound=Event)


class EventBatch(Event, Generic[RecordT]):
    """A Lambda batch: its records are what handlers receive, one at a time."""

    #: The ``eventSource`` value of the records, e.g. ``aws:sqs``.
    source: ClassVar[str] = ""

    records: list[RecordT] = Field(alias="Records", min_length=1)

    @property
    def ordered(self) -> bool:
        """Whether a failure must stop the batch (later records wait for the failed one)."""
        return False


def _json(text: str, failure: str) -> JsonValue:
    """``text`` parsed as JSON; :class:`InvalidEventError` saying ``failure`` if it is not."""
    try:
        value: JsonValue = json.loads(text)
    except ValueError as exc:
        raise InvalidEventError(failure) from exc
    return value


# -- DynamoDB streams -----------------------------------------------------------------


def _envelope(raw: Mapping[str, object]) -> dict[str, object]:
    """A Lambda stream record's own fields, flattened for the model: ``dynamodb.Keys``
    decoded, the images left to :func:`~cqrs.store.stream_records.parse_record`."""
    ddb = raw["dynamodb"]
    if not isinstance(ddb, Mapping):
        raise InvalidEventError("'dynamodb' must be an object")
    lifted = {
        "keys": (parse_image(ddb["Keys"], "dynamodb.Keys") or {}) if "Keys" in ddb else None,
        "sequenceNumber": ddb.get("SequenceNumber"),
        "sizeBytes": ddb.get("SizeBytes"),
        "streamViewType": ddb.get("StreamViewType"),
        "approximateCreationDateTime": ddb.get("ApproximateCreationDateTime"),
    }
    flat = {k: v for k, v in raw.items() if k not in ("dynamodb", "newImage", "oldImage")}
    flat.update((k, v) for k, v in lifted.items() if v is not None)
    return flat


class DynamoDBRecord(Event):
    """One DynamoDB stream record, with keys and images as plain dicts.

    Accepts Lambda's record shape (``dynamodb.NewImage`` … in DynamoDB JSON) or the
    flat shape of this model. A Lambda-shaped record is read by the framework's one
    stream-record parser, :func:`~cqrs.store.stream_records.parse_record` (the one the
    synchronizer uses): whatever it rejects is rejected here with its reason, and the
    images are the ones it decoded. The model's own fields (``keys``, ``eventName`` …)
    are typed on top of that.
    """

    model_config = ConfigDict(alias_generator=to_camel)

    event_id: str | None = Field(default=None, alias="eventID")
    event_name: Literal["INSERT", "MODIFY", "REMOVE"]
    event_version: str | None = None
    event_source: str = "aws:dynamodb"
    aws_region: str | None = None
    event_source_arn: str = Field(alias="eventSourceARN")
    keys: Item
    new_image: Item | None = None
    old_image: Item | None = None
    sequence_number: str
    size_bytes: int | None = None
    stream_view_type: str | None = None
    approximate_creation_date_time: datetime | None = None
    user_identity: dict[str, str] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _from_lambda(cls, data: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, Mapping) or "dynamodb" not in data:
            return handler(data)
        envelope = handler(_envelope(data))
        parsed = parse_record(data)  # the one parser decides, and decodes the images
        return envelope.model_copy(
            update={"new_image": parsed.new_image, "old_image": parsed.old_image}
        )

    @field_validator("event_source_arn")
    @classmethod
    def _table_arn(cls, arn: str) -> str:
        table_name_of_arn(arn)  # raises InvalidEventError (a ValueError) if not a table ARN
        return arn

    @property
    def table_name(self) -> str:
        """The table the record comes from, read from ``eventSourceARN``."""
        return table_name_of_arn(self.event_source_arn)

    @property
    def batch_item_id(self) -> str:
        """The sequence number (Lambda's item identifier for stream batches)."""
        return self.sequence_number

    def to_stream_record(self) -> StreamRecord:
        """This record as the synchronizer's :class:`~cqrs.store.stream_records.StreamRecord`."""
        return StreamRecord(
            self.sequence_number,
            self.event_name,
            self.table_name,
            self.event_source_arn,
            self.new_image,
            self.old_image,
        )


class DynamoDBStreamEvent(EventBatch[DynamoDBRecord]):
    """A Lambda DynamoDB stream event: a batch of :class:`DynamoDBRecord`."""

    source: ClassVar[str] = "aws:dynamodb"

    @property
    def ordered(self) -> bool:
        """Stream records are ordered: a failure stops the batch."""
        return True


# -- SQS ------------------------------------------------------------------------------


class SQSMessageAttribute(Event):
    """A message attribute of an SQS message (``dataType`` and one of the values)."""

    model_config = ConfigDict(alias_generator=to_camel)

    data_type: str
    string_value: str | None = None
    binary_value: str | None = None
    string_list_values: list[str] = Field(default_factory=list)
    binary_list_values: list[str] = Field(default_factory=list)


class SQSMessage(Event):
    """One SQS message of a Lambda SQS event. :attr:`json_body` parses the body on first use."""

    model_config = ConfigDict(alias_generator=to_camel)

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str] = Field(default_factory=dict)
    message_attributes: dict[str, SQSMessageAttribute] = Field(default_factory=dict)
    md5_of_body: str | None = None
    event_source: str = "aws:sqs"
    event_source_arn: str = Field(alias="eventSourceARN")
    aws_region: str | None = None

    @cached_property
    def json_body(self) -> JsonValue:
        """The body parsed as JSON (parsed once). Raises InvalidEventError if it is not JSON."""
        return _json(self.body, f"SQS message {self.message_id}: body is not JSON")

    @property
    def queue_name(self) -> str:
        """The queue name, the last part of ``eventSourceARN``."""
        return self.event_source_arn.rsplit(":", 1)[-1]

    @property
    def batch_item_id(self) -> str:
        """The message id (Lambda's item identifier for SQS batches)."""
        return self.message_id


class SQSEvent(EventBatch[SQSMessage]):
    """A Lambda SQS event: a batch of :class:`SQSMessage`."""

    source: ClassVar[str] = "aws:sqs"

    @property
    def ordered(self) -> bool:
        """FIFO queues are ordered: a failure stops the batch."""
        return self.records[0].event_source_arn.endswith(".fifo")


# -- SNS ------------------------------------------------------------------------------


class SNSMessageAttribute(Event):
    """A message attribute of an SNS notification (``Type`` and ``Value``)."""

    model_config = ConfigDict(alias_generator=to_pascal)

    type: str
    value: str


class SNSMessage(Event):
    """One SNS notification of a Lambda SNS event (the record's ``Sns`` object, flattened).

    :attr:`json_message` parses ``Message`` on first use.
    """

    model_config = ConfigDict(alias_generator=to_pascal)

    message: str
    message_id: str
    topic_arn: str
    subject: str | None = None
    type: str = "Notification"
    timestamp: datetime | None = None
    message_attributes: dict[str, SNSMessageAttribute] = Field(default_factory=dict)
    signature_version: str | None = None
    signature: str | None = None
    signing_cert_url: str | None = None
    unsubscribe_url: str | None = None
    event_source: str = "aws:sns"
    event_subscription_arn: str | None = None
    event_version: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: object) -> object:
        if not isinstance(data, Mapping) or "Sns" not in data:
            return data
        sns = data["Sns"]
        if not isinstance(sns, Mapping):
            raise InvalidEventError("'Sns' must be an object")
        return {**{k: v for k, v in data.items() if k != "Sns"}, **sns}

    @cached_property
    def json_message(self) -> JsonValue:
        """``Message`` parsed as JSON (parsed once). Raises InvalidEventError if it is not JSON."""
        return _json(self.message, f"SNS message {self.message_id}: not JSON")


class SNSEvent(EventBatch[SNSMessage]):
    """A Lambda SNS event: a batch (in practice one) of :class:`SNSMessage`."""

    source: ClassVar[str] = "aws:sns"


# -- EventBridge ----------------------------------------------------------------------


class EventBridgeEvent(Event):
    """An EventBridge event, as Lambda receives it."""

    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    time: datetime
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    account: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    version: str | None = None


# -- parsing --------------------------------------------------------------------------

_BATCHES: dict[str, type[Event]] = {b.source: b for b in (DynamoDBStreamEvent, SQSEvent, SNSEvent)}
_NAMES: dict[type[Event], str] = {
    DynamoDBStreamEvent: "DynamoDB stream",
    SQSEvent: "SQS",
    SNSEvent: "SNS",
    EventBridgeEvent: "EventBridge",
}


def _batch_type(records: object) -> type[Event]:
    if not isinstance(records, list) or not records:
        raise InvalidEventError("'Records' must be a non-empty list")
    sources: set[str] = set()
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidEventError(f"Records[{i}] must be an object, got {type(record).__name__}")
        source = record.get("eventSource", record.get("EventSource"))
        if not isinstance(source, str):
            raise InvalidEventError(f"Records[{i}] has no eventSource")
        sources.add(source)
    if len(sources) > 1:
        raise InvalidEventError(f"Records mix event sources: {sorted(sources)}")
    (source,) = sources
    batch = _BATCHES.get(source)
    if batch is None:
        raise InvalidEventError(
            f"unsupported event source {source!r} (supported: {', '.join(sorted(_BATCHES))})"
        )
    return batch


def _describe(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<event>'}: {e['msg']}" for e in errors[:limit]
    ]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def parse_event(raw: Mapping[str, object] | Event) -> Event:
    """Parse a raw Lambda event into a typed event (an :class:`Event` is returned as is).

    A ``Records`` list is a DynamoDB stream, SQS or SNS batch, told apart by the
    records' ``eventSource``; ``detail-type`` and ``source`` mark an EventBridge
    event. Anything else, or a malformed event, raises
    :class:`~cqrs.core.errors.InvalidEventError`.
    """
    if isinstance(raw, Event):
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidEventError(f"a Lambda event must be an object, got {type(raw).__name__}")
    model: type[Event]
    if "Records" in raw:
        model = _batch_type(raw["Records"])
    elif "detail-type" in raw and "source" in raw:
        model = EventBridgeEvent
    else:
        keys = ", ".join(sorted(map(str, raw))[:8]) or "none"
        raise InvalidEventError(
            "unrecognized event: expected a DynamoDB stream, SQS or SNS event (a 'Records' "
            f"list) or an EventBridge event ('detail-type' and 'source'); got keys: {keys}"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEventError(f"malformed {_NAMES[model]} event: {_describe(exc)}") from exc
