"""The partial batch processor: typed per-item outcomes, the response built in one place."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from cqrs.events import (
    BatchResult,
    Failed,
    Skipped,
    SQSMessage,
    Succeeded,
    parse_event,
    partial_batch_response,
    process_batch,
)
from cqrs.events.bus import EventBus

QUEUE_ARN = "arn:aws:sqs:ap-northeast-1:123456789012:orders"


def sqs_event(*bodies: str, queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
            }
            for i, body in enumerate(bodies)
        ]
    }


def double(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative {n}")
    return 2 * n


def name(n: int) -> str:
    return f"n{n}"


def test_partial_batch_response() -> None:
    assert partial_batch_response([]) == {"batchItemFailures": []}
    assert partial_batch_response(s for s in ("1", "2")) == {
        "batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]
    }


def test_every_item_succeeds() -> None:
    result = process_batch([1, 2, 3], double, item_id=name)

    assert result.results == [Succeeded(1, "n1", 2), Succeeded(2, "n2", 4), Succeeded(3, "n3", 6)]
    assert [r.value for r in result.succeeded] == [2, 4, 6]
    assert (result.failures, result.skipped, result.errors, result.failed_ids) == ([], [], [], [])
    assert result.response() == {"batchItemFailures": []}


def test_failures_are_reported_and_the_rest_is_processed() -> None:
    result = process_batch([1, -2, 3, -4], double, item_id=name)

    assert [type(r) for r in result.results] == [Succeeded, Failed, Succeeded, Failed]
    first, second = result.failures
    assert (first.item, first.item_id, str(first.error)) == (-2, "n-2", "negative -2")
    assert isinstance(second.error, ValueError) and result.errors == [first.error, second.error]
    assert result.failed_ids == ["n-2", "n-4"]
    assert result.response() == {
        "batchItemFailures": [{"itemIdentifier": "n-2"}, {"itemIdentifier": "n-4"}]
    }


def test_ordered_batch_stops_at_the_first_failure() -> None:
    handled: list[int] = []

    def handle(n: int) -> int:
        handled.append(n)
        return double(n)

    result = process_batch([1, -2, 3, -4], handle, item_id=name, ordered=True)

    assert handled == [1, -2]
    assert result.results[0] == Succeeded(1, "n1", 2)
    assert isinstance(result.results[1], Failed)
    assert result.skipped == [Skipped(3, "n3", behind="n-2"), Skipped(-4, "n-4", behind="n-2")]
    assert result.failed_ids == ["n-2", "n3", "n-4"] and len(result.errors) == 1


def test_an_item_that_cannot_be_reported_raises() -> None:
    with pytest.raises(ValueError, match="negative -2"):
        process_batch([1, -2, 3], double, item_id=lambda n: None)
    # ordered: a later item without an id cannot be reported as skipped either
    with pytest.raises(ValueError, match="negative -2"):
        process_batch([-2, 3], double, item_id=lambda n: None if n == 3 else name(n), ordered=True)
    # but items without an id that succeed are fine
    assert process_batch([1], double, item_id=lambda n: None).results == [Succeeded(1, None, 2)]


def test_only_exceptions_fail_an_item() -> None:
    def interrupt(n: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        process_batch([1], interrupt, item_id=name)


def test_items_are_read_once() -> None:
    result = process_batch(iter([1, -1]), double, item_id=name)
    assert isinstance(result, BatchResult) and result.failed_ids == ["n-1"]


# -- the bus reports through it --------------------------------------------------------------


def test_bus_report_carries_typed_outcomes(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()

    @bus.subscribe(SQSMessage)
    def handle(message: SQSMessage) -> None:
        if message.body == "bad":
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, "cqrs.events"):
        report = bus.dispatch(parse_event(sqs_event("ok", "bad", "ok")))

    (failure,) = report.result.failures
    assert isinstance(failure.item, SQSMessage) and failure.item.body == "bad"
    assert failure.item_id == "m1" and str(failure.error) == "boom"
    assert [r.value for r in report.result.succeeded] == [1, 1]  # handlers run per record
    assert (report.received, report.handled, report.ignored, report.failed) == (3, 2, 0, ["m1"])
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert "handler failed on SQSMessage m1" in caplog.text


def test_bus_fifo_failure_skips_the_rest() -> None:
    bus = EventBus()

    @bus.subscribe(SQSMessage)
    def fail(message: SQSMessage) -> None:
        raise RuntimeError(message.message_id)

    report = bus.dispatch(parse_event(sqs_event("a", "b", "c", queue_arn=QUEUE_ARN + ".fifo")))

    assert [s.behind for s in report.result.skipped] == ["m0", "m0"]
    assert bus.dispatch_lambda(sqs_event("a", "b", queue_arn=QUEUE_ARN + ".fifo")) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]
    }
