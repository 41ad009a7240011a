"""One stream-record parser: ``DynamoDBRecord`` is read by ``store.stream_records.parse_record``,
so a record the synchronizer rejects is rejected by the typed event too, with its reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cqrs import CommandInput, Cqrs, InvokeContext
from cqrs.core.errors import InvalidEventError
from cqrs.events import DynamoDBRecord, DynamoDBStreamEvent, parse_event
from cqrs.store.stream_records import RejectedRecord, parse_image, parse_record
from cqrs.sync.synchronizer import Synchronizer
from cqrs.testing import stream_records

ARN = "arn:aws:dynamodb:ap-northeast-1:123456789012:table/dev-shop-order-command/stream/2024"


def record(**dynamodb: Any) -> dict[str, Any]:
    """A valid Lambda stream record, with ``dynamodb`` fields replaced (``None``: removed)."""
    ddb: dict[str, Any] = {
        "Keys": {"pk": {"S": "ORDER#acme"}, "sk": {"S": "ORDER#1@1"}},
        "NewImage": {
            "pk": {"S": "ORDER#acme"},
            "sk": {"S": "ORDER#1@1"},
            "version": {"N": "1"},
            "attributes": {"M": {"total": {"N": "12.5"}}},
        },
        "SequenceNumber": "100",
        "SizeBytes": 120,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    ddb.update(dynamodb)
    return {
        "eventID": "e1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ap-northeast-1",
        "eventSourceARN": ARN,
        "dynamodb": {k: v for k, v in ddb.items() if v is not None},
    }


def deeply_nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "x"}
    for _ in range(depth):
        value = {"M": {"a": value}}
    return value


def synchronizer_rejection(raw: dict[str, Any]) -> RejectedRecord:
    """The synchronizer's verdict on ``raw`` (no projector: only parsing can reject it)."""
    kept: list[RejectedRecord] = []
    report = Synchronizer(lambda table: None, rejections=kept.append).handle_event(
        {"Records": [raw]}
    )
    assert report.failed == [] and len(report.rejected) == 1
    assert kept == report.rejected
    return kept[0]


def test_record_is_what_parse_record_reads(cqrs_app: Cqrs) -> None:
    orders = cqrs_app.entity("order")
    ctx = InvokeContext(tenant_code="acme", user_id="u1")
    for code in ("1", "2"):
        orders.commands.publish_async(
            CommandInput(
                pk="ORDER#acme",
                sk=f"ORDER#{code}",
                code=code,
                name=f"order {code}",
                tenant_code="acme",
                type="ORDER",
                attributes={"total": 12.5, "tags": ["a"], "nested": {"n": 10**20}},
            ),
            ctx,
        )
    raws = stream_records(cqrs_app)
    assert raws

    event = parse_event({"Records": copy.deepcopy(raws)})

    assert isinstance(event, DynamoDBStreamEvent)
    assert [r.to_stream_record() for r in event.records] == [parse_record(r) for r in raws]


BAD_IMAGES = {
    "number-decimal-syntax": lambda: record(NewImage={"total": {"N": "1.x"}}),
    "image-not-a-map": lambda: record(NewImage=["not", "a", "map"]),
    "unknown-type": lambda: record(NewImage={"pk": {"Q": "x"}}),
    "two-types": lambda: record(NewImage={"pk": {"S": "a", "N": "1"}}),
    "old-image-not-wire": lambda: record(OldImage={"pk": "plain"}),
    "number-not-a-number": lambda: record(NewImage={"n": {"N": "x"}}),
}


@pytest.mark.parametrize("make", BAD_IMAGES.values(), ids=BAD_IMAGES.keys())
def test_images_the_synchronizer_rejects_are_rejected_with_its_reason(
    make: Callable[[], dict[str, Any]],
) -> None:
    reason = synchronizer_rejection(make()).reason
    with pytest.raises(InvalidEventError) as parse_record_error:
        parse_record(make())
    assert str(parse_record_error.value) == reason

    with pytest.raises(InvalidEventError) as typed_error:
        parse_event({"Records": [make()]})

    assert reason in str(typed_error.value)
    assert str(typed_error.value).startswith("malformed DynamoDB stream event: Records.0")


def test_nesting_too_deep_is_rejected_as_parse_record_rejects_it() -> None:
    """Python's recursion limit, met decoding: an InvalidEventError, not a RecursionError."""
    raw = record(NewImage={"a": deeply_nested(3000)})
    with pytest.raises(InvalidEventError) as parse_record_error:
        parse_record(raw)
    with pytest.raises(InvalidEventError) as typed_error:
        parse_event({"Records": [raw]})
    assert str(parse_record_error.value) in str(typed_error.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({**record(), "eventName": "UPSERT"}, id="event-name"),
        pytest.param({**record(), "eventSourceARN": "arn:aws:sqs:x:1:q"}, id="not-a-stream-arn"),
        pytest.param({**record(), "dynamodb": "x"}, id="dynamodb-not-an-object"),
        pytest.param(record(SequenceNumber=None), id="no-sequence-number"),
        pytest.param(record(SequenceNumber=100), id="sequence-number-not-a-string"),
    ],
)
def test_records_the_synchronizer_rejects_are_rejected(raw: dict[str, Any]) -> None:
    synchronizer_rejection(copy.deepcopy(raw))
    with pytest.raises(InvalidEventError, match="malformed DynamoDB stream event"):
        parse_event({"Records": [copy.deepcopy(raw)]})


def test_keys_are_decoded_as_images_are() -> None:
    raw = record(Keys={"pk": {"N": "1.x"}})
    with pytest.raises(InvalidEventError, match=r"dynamodb\.Keys is not DynamoDB JSON"):
        parse_event({"Records": [raw]})
    with pytest.raises(InvalidEventError, match="must be a DynamoDB JSON map"):
        parse_image(["x"], "dynamodb.Keys")
    assert parse_image({}, "dynamodb.Keys") is None
    assert parse_image({"pk": {"S": "A"}}, "dynamodb.Keys") == {"pk": "A"}


def test_flat_shape_skips_the_wire_parser() -> None:
    flat = DynamoDBRecord(
        event_name="REMOVE",
        event_source_arn=ARN,
        keys={"pk": "A", "sk": "B"},
        old_image={"pk": "A", "sk": "B", "n": 1},
        sequence_number="7",
    )
    stream_record = flat.to_stream_record()
    assert stream_record.table_name == "dev-shop-order-command"
    assert (stream_record.new_image, stream_record.old_image) == (None, flat.old_image)


# -- the property, on generated damage --------------------------------------------------------

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
wire_value = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": n}, st.sampled_from(["1", "1.5", "1e3", "x", "1.x", "", "-0"])),
    st.builds(lambda v: {"BOOL": v}, junk),
    st.dictionaries(st.sampled_from(["S", "N", "M", "L", "Q"]), junk, max_size=2),
    junk,
)
image = st.one_of(st.dictionaries(st.sampled_from(["pk", "sk", "a"]), wire_value), junk)
damage = st.fixed_dictionaries(
    {},
    optional={
        "eventName": st.sampled_from(["INSERT", "MODIFY", "REMOVE", "UPSERT", None]) | junk,
        "eventSourceARN": st.sampled_from([ARN, "arn:aws:sqs:x:1:q", ":table/", None]) | junk,
        "Keys": image,
        "NewImage": image,
        "OldImage": image,
        "SequenceNumber": st.sampled_from(["1", "", None]) | junk,
    },
)


@settings(max_examples=300, deadline=None)
@given(damage)
def test_typed_record_accepts_only_what_parse_record_accepts(changes: dict[str, Any]) -> None:
    raw = record(**{k: v for k, v in changes.items() if k in ("Keys", "NewImage", "OldImage")})
    ddb = raw["dynamodb"]
    if "SequenceNumber" in changes:
        ddb["SequenceNumber"] = changes["SequenceNumber"]
    for field in ("eventName", "eventSourceARN"):
        if field in changes:
            raw[field] = changes[field]

    try:
        parsed = parse_record(copy.deepcopy(raw))
    except InvalidEventError:
        parsed = None
    try:
        typed = DynamoDBRecord.model_validate(copy.deepcopy(raw))
    except ValidationError:
        typed = None

    if parsed is None:
        assert typed is None  # what the one parser rejects, the typed record rejects
    if typed is not None:
        assert typed.to_stream_record() == parsed  # and what it accepts, it reads the same
