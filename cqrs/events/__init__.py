"""Events: typed Lambda payloads (:mod:`.types`), partial batch processing
(:mod:`.batch`), the in-process bus (:mod:`.bus`) and command notifications
(:mod:`.notifications`)."""

from __future__ import annotations

from .batch import (
    BatchResult,
    Failed,
    PartialBatchResponse,
    Skipped,
    Succeeded,
    partial_batch_response,
    process_batch,
)
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
    "BatchResult",
    "DynamoDBRecord",
    "DynamoDBStreamEvent",
    "Event",
    "EventBatch",
    "EventBridgeEvent",
    "Failed",
    "PartialBatchResponse",
    "SNSEvent",
    "SNSMessage",
    "SNSMessageAttribute",
    "SQSEvent",
    "SQSMessage",
    "SQSMessageAttribute",
    "Skipped",
    "Succeeded",
    "parse_event",
    "partial_batch_response",
    "process_batch",
]
