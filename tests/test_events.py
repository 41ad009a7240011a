"""Typed Lambda events (parse_event) and the in-process event bus."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import injector
import pytest

from cqrs import CommandInput, Cqrs, InvokeContext
from cqrs.core.errors import InvalidEventError, ProgrammingError
from cqrs.events import (
    DynamoDBRecord,
    DynamoDBStreamEvent,
    Event,
    EventBridgeEvent,
    SNSEvent,
    SNSMessage,
    SQSEvent,
    SQSMessage,
    parse_event,
)
from cqrs.events.bus import EventBus
from cqrs.testing import stream_records

QUEUE_ARN = "arn:aws:sqs:ap-northeast-1:123456789012:orders"


def sqs_record(message_id: str, body: str, queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    """One record of a Lambda SQS event, as AWS delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {
            "kind": {
                "stringValue": "order",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "ap-northeast-1",
    }


def sqs_event(*bodies: str, queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    return {"Records": [sqs_record(f"m{i}", b, queue_arn) for i, b in enumerate(bodies)]}


SNS_EVENT: dict[str, Any] = {
    "Records": [
        {
            "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:ap-northeast-1:123456789012:orders:21be56ed",
            "EventSource": "aws:sns",
            "Sns": {
                "SignatureVersion": "1",
                "Timestamp": "2024-01-02T12:45:07.000Z",
                "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j==",
                "SigningCertUrl": "https://sns.ap-northeast-1.amazonaws.com/cert.pem",
                "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "Message": '{"orderId": "1"}',
                "MessageAttributes": {"action": {"Type": "String", "Value": "order-created"}},
                "Type": "Notification",
                "UnsubscribeUrl": "https://sns.ap-northeast-1.amazonaws.com/?Action=Unsubscribe",
                "TopicArn": "arn:aws:sns:ap-northeast-1:123456789012:orders",
                "Subject": "created",
            },
        }
    ]
}

EVENTBRIDGE_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2024-10-08T16:53:06Z",
    "region": "ap-northeast-1",
    "resources": ["arn:aws:events:ap-northeast-1:123456789012:rule/nightly"],
    "detail": {"job": "cleanup"},
}


def publish_orders(app: Cqrs, *codes: str) -> None:
    orders = app.entity("order")
    ctx = InvokeContext(tenant_code="acme", user_id="u1")
    for code in codes:
        orders.commands.publish_async(
            CommandInput(
                pk="ORDER#acme",
                sk=f"ORDER#{code}",
                code=code,
                name=f"order {code}",
                tenant_code="acme",
                type="ORDER",
                attributes={"total": 12.5, "lines": [1, 2]},
            ),
            ctx,
        )


# -- parsing --------------------------------------------------------------------------


def test_dynamodb_stream_event_from_real_stream(cqrs_app: Cqrs) -> None:
    publish_orders(cqrs_app, "1")
    raw = {"Records": stream_records(cqrs_app)}

    event = parse_event(raw)

    assert isinstance(event, DynamoDBStreamEvent)
    (record,) = event.records
    assert record.event_name == "INSERT"
    assert record.table_name == cqrs_app.schema.entity_tables("order").command
    assert record.keys == {"pk": "ORDER#acme", "sk": "ORDER#1@1"}
    assert record.new_image is not None and record.old_image is None
    assert record.new_image["attributes"] == {"total": 12.5, "lines": [1, 2]}
    assert record.new_image["version"] == 1
    assert record.sequence_number == raw["Records"][0]["dynamodb"]["SequenceNumber"]
    assert record.batch_item_id == record.sequence_number
    stream_record = record.to_stream_record()
    assert stream_record.is_new_command and stream_record.new_image == record.new_image


def test_sqs_event() -> None:
    event = parse_event(sqs_event('{"orderId": "1"}', "not json"))

    assert isinstance(event, SQSEvent) and not event.ordered
    first, second = event.records
    assert first.message_id == "m0" and first.batch_item_id == "m0"
    assert first.receipt_handle.endswith("-m0")
    assert first.event_source_arn == QUEUE_ARN and first.queue_name == "orders"
    assert first.attributes["ApproximateReceiveCount"] == "1"
    assert first.message_attributes["kind"].string_value == "order"
    assert first.json_body == {"orderId": "1"}
    assert first.json_body is first.json_body  # parsed once
    with pytest.raises(InvalidEventError, match="m1: body is not JSON"):
        _ = second.json_body
    dumped = first.model_dump(by_alias=True)
    assert dumped["messageId"] == "m0" and dumped["eventSourceARN"] == QUEUE_ARN


def test_fifo_sqs_event_is_ordered() -> None:
    event = parse_event(sqs_event("a", queue_arn=QUEUE_ARN + ".fifo"))
    assert isinstance(event, SQSEvent) and event.ordered


def test_sns_event() -> None:
    event = parse_event(SNS_EVENT)

    assert isinstance(event, SNSEvent)
    (message,) = event.records
    assert message.message == '{"orderId": "1"}' and message.json_message == {"orderId": "1"}
    assert message.subject == "created"
    assert message.topic_arn == "arn:aws:sns:ap-northeast-1:123456789012:orders"
    assert message.message_attributes["action"].value == "order-created"
    assert message.event_subscription_arn is not None
    assert message.timestamp == datetime(2024, 1, 2, 12, 45, 7, tzinfo=UTC)
    assert message.batch_item_id is None


def test_eventbridge_event() -> None:
    event = parse_event(EVENTBRIDGE_EVENT)

    assert isinstance(event, EventBridgeEvent)
    assert event.detail_type == "Scheduled Event" and event.source == "aws.events"
    assert event.detail == {"job": "cleanup"}
    assert event.time == datetime(2024, 10, 8, 16, 53, 6, tzinfo=UTC)
    assert event.id == "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"
    assert event.model_dump(by_alias=True)["detail-type"] == "Scheduled Event"


def test_parse_event_returns_events_as_they_are() -> None:
    event = parse_event(EVENTBRIDGE_EVENT)
    assert parse_event(event) is event


def _broken_ddb_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": "arn:aws:dynamodb:ap-northeast-1:1:table/t/stream/2024",
        "dynamodb": {
            "Keys": {"pk": {"S": "A"}, "sk": {"S": "B"}},
            "NewImage": {"pk": {"S": "A"}, "sk": {"S": "B"}},
            "SequenceNumber": "100",
        },
    }
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be an object, got list"),
        ({"hello": 1}, "unrecognized event.*got keys: hello"),
        ({"Records": []}, "non-empty list"),
        ({"Records": ["x"]}, r"Records\[0\] must be an object"),
        ({"Records": [{"body": "x"}]}, r"Records\[0\] has no eventSource"),
        ({"Records": [{"eventSource": "aws:s3"}]}, "unsupported event source 'aws:s3'"),
        (
            {"Records": [sqs_record("a", "x"), _broken_ddb_record()]},
            "mix event sources",
        ),
        (
            {"Records": [{k: v for k, v in sqs_record("a", "x").items() if k != "messageId"}]},
            r"malformed SQS event: Records\.0\.messageId: Field required",
        ),
        (
            {"Records": [_broken_ddb_record(eventName="UPSERT")]},
            r"malformed DynamoDB stream event: Records\.0\.eventName",
        ),
        (
            {"Records": [_broken_ddb_record(eventSourceARN="arn:aws:sqs:x:1:q")]},
            "not a DynamoDB stream ARN",
        ),
        (
            {"Records": [_broken_ddb_record(dynamodb={"Keys": {"pk": {"Q": 1}}})]},
            "dynamodb.Keys is not DynamoDB JSON",
        ),
        (
            {"Records": [_broken_ddb_record(dynamodb={"Keys": {"pk": {"S": "A"}}})]},
            r"Records\.0\.sequenceNumber: Field required",
        ),
        (
            {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "x"}}]},
            r"malformed SNS event: Records\.0\.MessageId: Field required",
        ),
        (
            {k: v for k, v in EVENTBRIDGE_EVENT.items() if k != "time"},
            "malformed EventBridge event: time: Field required",
        ),
    ],
)
def test_malformed_events(raw: Any, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        parse_event(raw)


# -- subscriptions --------------------------------------------------------------------


def test_subscription_by_type_and_base_type() -> None:
    bus = EventBus()
    seen: list[tuple[str, Event]] = []

    @bus.subscribe(Event)
    def everything(event: Event) -> None:
        seen.append(("event", event))

    @bus.on(SQSMessage)
    def messages(message: SQSMessage) -> None:
        seen.append(("sqs", message))

    @bus.subscribe(SNSMessage, EventBridgeEvent)
    def others(event: Event) -> None:
        seen.append(("other", event))

    assert bus.dispatch_lambda(sqs_event("a")) == {"batchItemFailures": []}
    assert [name for name, _ in seen] == ["sqs", "event"]  # most specific type first
    assert isinstance(seen[0][1], SQSMessage) and seen[0][1] is seen[1][1]

    seen.clear()
    assert bus.dispatch_lambda(EVENTBRIDGE_EVENT) == {}
    bus.dispatch_lambda(SNS_EVENT)
    assert [name for name, _ in seen] == ["other", "event", "other", "event"]
    assert messages is not None and everything is not None  # the decorator returns them


def test_has_subscribers_follows_new_subscriptions() -> None:
    bus = EventBus()
    assert not bus.has_subscribers(SQSMessage)
    bus.subscribe(Event)(lambda event: None)
    assert bus.has_subscribers(SQSMessage) and bus.has_subscribers(EventBridgeEvent)


def test_records_nobody_subscribed_to_are_ignored() -> None:
    bus = EventBus()
    bus.subscribe(SNSMessage)(lambda event: None)
    report = bus.dispatch(parse_event(sqs_event("a", "b")))
    assert (report.received, report.handled, report.ignored, report.failed) == (2, 0, 2, [])


def test_publish_in_process_event() -> None:
    bus = EventBus()
    got: list[EventBridgeEvent] = []
    bus.subscribe(EventBridgeEvent)(got.append)
    event = EventBridgeEvent.model_validate(EVENTBRIDGE_EVENT)
    assert bus.publish(event) == 1 and got == [event]


def test_handler_class_built_by_the_app_injector(cqrs_app: Cqrs) -> None:
    built: list[ProcessOrder] = []

    class ProcessOrder:
        @injector.inject
        def __init__(self, app: Cqrs) -> None:
            self.app = app
            self.bodies: list[Any] = []
            built.append(self)

        def handle(self, message: SQSMessage) -> None:
            self.bodies.append(message.json_body)

    cqrs_app.events.subscribe(SQSMessage)(ProcessOrder)
    assert built == []  # built on first use
    cqrs_app.events.dispatch_lambda(sqs_event('{"n": 1}', '{"n": 2}'))
    cqrs_app.events.dispatch_lambda(sqs_event('{"n": 3}'))

    (handler,) = built  # built once, kept
    assert handler.app is cqrs_app
    assert handler.bodies == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert cqrs_app.events is cqrs_app.events


def test_callable_class_without_injector() -> None:
    bus = EventBus()
    calls: list[str] = []

    @bus.subscribe(SQSMessage)
    class Counter:
        def __call__(self, message: SQSMessage) -> None:
            calls.append(message.message_id)

    bus.dispatch_lambda(sqs_event("a", "b"))
    assert calls == ["m0", "m1"] and isinstance(Counter, type)


@pytest.mark.parametrize("target", [SQSEvent, DynamoDBStreamEvent, SNSEvent])
def test_cannot_subscribe_to_batches(target: type[Event]) -> None:
    with pytest.raises(ProgrammingError, match="subscribe to the record type"):
        EventBus().subscribe(target)


def test_bad_subscriptions() -> None:
    bus = EventBus()
    with pytest.raises(ProgrammingError, match="at least one event type"):
        bus.subscribe()
    with pytest.raises(ProgrammingError, match="not an Event subclass"):
        bus.subscribe(dict)  # type: ignore[arg-type]

    class NoHandle:
        pass

    with pytest.raises(ProgrammingError, match="needs a handle"):
        bus.subscribe(SQSMessage)(NoHandle)
    with pytest.raises(ProgrammingError, match="not callable"):
        bus.subscribe(SQSMessage)(42)  # type: ignore[type-var]


# -- failures -------------------------------------------------------------------------


def _failing_on(bus: EventBus, bad: str) -> list[str]:
    handled: list[str] = []

    @bus.subscribe(SQSMessage)
    def handle(message: SQSMessage) -> None:
        if message.body == bad:
            raise RuntimeError("boom")
        handled.append(message.message_id)

    return handled


def test_sqs_partial_batch_failures() -> None:
    bus = EventBus()
    handled = _failing_on(bus, "bad")

    response = bus.dispatch_lambda(sqs_event("ok", "bad", "ok", "bad"))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert handled == ["m0", "m2"]


def test_fifo_failure_stops_the_batch() -> None:
    bus = EventBus()
    handled = _failing_on(bus, "bad")

    report = bus.dispatch(parse_event(sqs_event("ok", "bad", "ok", queue_arn=QUEUE_ARN + ".fifo")))

    assert report.failed == ["m1", "m2"] and handled == ["m0"]
    assert len(report.errors) == 1 and isinstance(report.errors[0], RuntimeError)


def test_stream_failure_reports_the_sequence_number(cqrs_app: Cqrs) -> None:
    publish_orders(cqrs_app, "1", "2", "3")
    raw = {"Records": stream_records(cqrs_app)}
    second_seq = raw["Records"][1]["dynamodb"]["SequenceNumber"]
    seen: list[str] = []

    @cqrs_app.events.subscribe(DynamoDBRecord)
    def project(record: DynamoDBRecord) -> None:
        if record.sequence_number == second_seq:
            raise RuntimeError("boom")
        seen.append(record.keys["sk"])

    response = cqrs_app.events.dispatch_lambda(copy.deepcopy(raw))

    failures = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failures[0] == second_seq and len(failures) == 2
    assert seen == [raw["Records"][0]["dynamodb"]["Keys"]["sk"]["S"]]


def test_unbatched_handler_errors_propagate() -> None:
    bus = EventBus()

    @bus.subscribe(SNSMessage, EventBridgeEvent)
    def fail(event: Event) -> None:
        raise RuntimeError(f"boom {type(event).__name__}")

    with pytest.raises(RuntimeError, match="boom SNSMessage"):
        bus.dispatch_lambda(SNS_EVENT)
    with pytest.raises(RuntimeError, match="boom EventBridgeEvent"):
        bus.dispatch_lambda(json.loads(json.dumps(EVENTBRIDGE_EVENT)))
