"""Events: typed Lambda payloads (:mod:`.types`), the in-process bus (:mod:`.bus`) and
command notifications (:mod:`.notifications`)."""

from __future__ import annotations

from .types import (
    DynamoDBRecord,
    DynamoDBStreamEvent,
    Event,
    EventBatch,
    EventBridgeEvent,
    SNSEvent,
    SNSMessage,
    SNSMessageAttribute,
    SQSEvent,
    SQSMessage,
    SQSMessageAttribute,
    parse_event,
)

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
