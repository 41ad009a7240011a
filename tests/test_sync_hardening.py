"""Nothing blocks a shard: malformed records, refused items, permanent and unknown errors.

Driven by moto's real stream records: bad items are written raw into the command
table (as another writer, e.g. MBC, could), so the records the synchronizer sees
are the ones DynamoDB Streams really produces. Only "missing pk" (which DynamoDB
cannot produce, pk being a key) mutates a real record.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cqrs import SYSTEM, CommandInput, Cqrs, InvokeContext, ItemTooLargeError
from cqrs.core.errors import RequestRejectedError, UnexpectedError
from cqrs.events.notifications import EntityStuckEvent, RecordRejectedEvent
from cqrs.store.codec import item_size, to_wire_item
from cqrs.testing import stream_records, table_items

MAX_ATTEMPTS = 2
CTX = InvokeContext(tenant_code="acme", user_id="u1")


@pytest.fixture
def app(cqrs_app: Cqrs) -> Cqrs:
    settings = cqrs_app.settings.model_copy(update={"sync_max_attempts": MAX_ATTEMPTS})
    return Cqrs(settings, clients=cqrs_app.clients)


def publish(app: Cqrs, code: str) -> None:
    app.entity("order").commands.publish_async(
        CommandInput(
            pk="ORDER#acme", sk=f"ORDER#{code}", code=code, name=code, tenant_code="acme",
            type="ORDER", version=-1, attributes={"code": code},
        ),
        CTX,
    )  # fmt: skip


def raw_put(app: Cqrs, item: dict[str, Any]) -> None:
    """Write an item into the order command table directly (another writer's bug)."""
    app.clients.dynamodb.put_item(
        TableName=app.entity("order").tables.command, Item=to_wire_item(item)
    )


def version(app: Cqrs, code: str) -> int | None:
    row = app.entity("order").data.get("ORDER#acme", f"ORDER#{code}", context=SYSTEM)
    return row.version if row else None


def subscribe(app: Cqrs, kind: type) -> list[Any]:
    seen: list[Any] = []
    app.events.subscribe(kind)(seen.append)
    return seen


BAD_ITEMS = {
    "version is text": {"pk": "ORDER#acme", "sk": "ORDER#B1@1", "version": "one"},
    "version disagrees with sk": {"pk": "ORDER#acme", "sk": "ORDER#B2@1", "version": 7},
    "no version": {"pk": "ORDER#acme", "sk": "ORDER#B3@1"},
    "sk without @version": {"pk": "ORDER#acme", "sk": "ORDER#B4", "version": 1},
    "pk without tenant": {"pk": "ORDER", "sk": "ORDER#B5@1", "version": 1},
    "malformed suffix": {"pk": "ORDER#acme", "sk": "ORDER#B6@x1", "version": 1},
}


@pytest.mark.engine
def test_malformed_command_images_are_rejected_and_the_valid_records_applied(app: Cqrs) -> None:
    rejected_alarms = subscribe(app, RecordRejectedEvent)
    publish(app, "1")
    for item in BAD_ITEMS.values():
        raw_put(app, item)
    publish(app, "2")
    records = stream_records(app)

    report = app.process_event({"Records": records})

    assert report.failed == [] and report.applied == 2
    assert (version(app, "1"), version(app, "2")) == (1, 1)
    kept = app.sync_failures.rejected_records.list()
    assert sorted(r.sk or "" for r in kept) == sorted(i["sk"] for i in BAD_ITEMS.values())
    assert all(r.table == app.entity("order").tables.command and r.reason for r in kept)
    assert len(rejected_alarms) == len(BAD_ITEMS)
    # A redelivery of the whole batch keeps each record once and raises no new alarm.
    assert app.process_event({"Records": records}).failed == []
    assert len(app.sync_failures.rejected_records.list()) == len(BAD_ITEMS)
    assert len(rejected_alarms) == len(BAD_ITEMS)


@pytest.mark.engine
def test_a_record_missing_pk_is_rejected_with_its_raw_text(app: Cqrs) -> None:
    publish(app, "1")
    publish(app, "2")
    records = stream_records(app)
    broken = copy.deepcopy(records[0])
    del broken["dynamodb"]["NewImage"]["pk"]

    report = app.process_event({"Records": [broken, records[1]]})

    assert report.failed == [] and version(app, "2") == 1
    (kept,) = app.sync_failures.rejected_records.list()
    assert "pk" in kept.reason and json.loads(kept.raw) == broken
    assert kept.sequence_number == broken["dynamodb"]["SequenceNumber"]
    assert app.sync_failures.rejected_records.dismiss(kept)
    assert app.sync_failures.rejected_records.list() == []


def test_a_rejected_record_that_cannot_be_recorded_now_is_retried(
    app: Cqrs, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw_put(app, BAD_ITEMS["version is text"])
    records = stream_records(app)
    failures = app.sync_failures.rejected_records

    def throttled(record: Any) -> bool:
        response: Any = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
        from cqrs.store.classify import classify

        raise classify(ClientError(response, "PutItem"), "put")

    monkeypatch.setattr(failures, "add", throttled)
    assert app.process_event({"Records": records}).failed == [
        records[0]["dynamodb"]["SequenceNumber"]
    ]
    monkeypatch.undo()
    assert app.process_event({"Records": records}).failed == []
    assert len(app.sync_failures.rejected_records.list()) == 1


def test_an_oversized_history_item_fails_only_its_entity_then_it_is_stuck(app: Cqrs) -> None:
    """A raw command that the table accepts, whose history item (plus cpk/csk, a long key
    twice) the table refuses: the other entities of the batch apply; the big one counts
    attempts, is stuck, and acknowledged. moto refuses items over 405,000 bytes."""
    stuck = subscribe(app, EntityStuckEvent)
    code = "k" * 900
    big = {
        "pk": "ORDER#acme", "sk": f"ORDER#{code}@1", "id": f"ORDER#acme#ORDER#{code}",
        "code": code, "name": "big", "tenantCode": "acme", "type": "ORDER", "version": 1,
        "attributes": {"blob": ""},
    }  # fmt: skip
    big["attributes"] = {"blob": "x" * (404_600 - item_size(to_wire_item(big)))}
    publish(app, "1")
    raw_put(app, big)
    publish(app, "2")
    records = stream_records(app)

    first = app.process_event({"Records": records})

    assert (version(app, "1"), version(app, "2"), version(app, code)) == (1, 1, None)
    assert isinstance(first.errors[0], ItemTooLargeError) and len(first.failed) == 1
    second = app.process_event({"Records": [records[1]]})  # Lambda retries from there
    assert second.failed == [] and second.stuck == [("ORDER#acme", f"ORDER#{code}")]
    assert len(stuck) == 1
    (failure,) = app.sync_failures.failing("order")
    assert failure.stuck and failure.error.startswith("ItemTooLargeError")
    history = table_items(app, app.entity("order").tables.history, pk="ORDER#acme")
    assert sorted(h["sk"] for h in history) == ["ORDER#1@1", "ORDER#2@1"]


@pytest.mark.engine
@pytest.mark.parametrize(
    ("code", "error"),
    [("ValidationException", RequestRejectedError), ("InternalWidgetException", UnexpectedError)],
)
def test_permanent_and_unknown_errors_count_as_attempts(
    app: Cqrs, code: str, error: type[Exception]
) -> None:
    publish(app, "1")
    records = stream_records(app)
    table = app.entity("order").tables.data

    def refuse(params: Any, **_: Any) -> None:
        if params.get("TableName") == table:
            response: Any = {
                "Error": {"Code": code, "Message": "refused"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(response, "UpdateItem")

    events = app.clients.dynamodb.meta.events
    events.register("provide-client-params.dynamodb.UpdateItem", refuse)
    try:
        reports = [app.process_event({"Records": records}) for _ in range(MAX_ATTEMPTS)]
    finally:
        events.unregister("provide-client-params.dynamodb.UpdateItem", refuse)
    assert isinstance(reports[0].errors[0], error) and not reports[0].errors[0].retryable
    assert reports[0].failed and not reports[-1].failed  # stuck: acknowledged, shard moves on
    assert reports[-1].stuck == [("ORDER#acme", "ORDER#1")]
    assert app.sync_failures.redrive("order")[0].ok
    assert version(app, "1") == 1


def test_a_bug_in_projection_fails_its_entities_as_unexpected_and_never_escapes(
    app: Cqrs, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(app, "1")
    records = stream_records(app)
    projector = app.entity("order").projector

    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(projector, "apply", broken)
    report = app.process_event({"Records": records})
    assert len(report.failed) == 1 and isinstance(report.errors[0], UnexpectedError)
    (failure,) = app.sync_failures.failing("order")
    assert failure.attempts == 1 and "a bug" in failure.error


def test_cqrs_stuck_lists_rejected_records_and_fails_until_dismissed(
    app: Cqrs, capsys: pytest.CaptureFixture[str]
) -> None:
    from cqrs.cli import main

    raw_put(app, BAD_ITEMS["version is text"])
    app.process_event({"Records": stream_records(app)})
    s = app.settings
    common = ["--tables-dir", str(s.tables_dir), "--prefix", s.table_prefix]
    if s.endpoint_url:
        common += ["--endpoint-url", s.endpoint_url]

    assert main(["stuck", *common]) == 1
    out = capsys.readouterr().out
    assert "REJECTED" in out and "ORDER#acme / ORDER#B1@1" in out and "'version'" in out
    assert "stuck: 0 stuck, 0 retrying, 1 rejected record(s)" in out
    assert main(["stuck", "cat", *common]) == 0  # another entity's table: none of it
    capsys.readouterr()
    for kept in app.sync_failures.rejected_records.list():
        app.sync_failures.rejected_records.dismiss(kept)
    assert main(["stuck", *common]) == 0


@pytest.mark.parametrize("how", ["huge exponent", "nested 2,000 deep"])
def test_pathological_images_are_rejected_quickly_not_raised(app: Cqrs, how: str) -> None:
    """Hand-made records (DynamoDB's own limits keep them out of real streams) must not
    hang the decoder or blow the stack while the rejected record is kept."""
    publish(app, "1")
    (record,) = stream_records(app)
    broken = copy.deepcopy(record)
    broken["dynamodb"]["SequenceNumber"] = "9" + record["dynamodb"]["SequenceNumber"]
    if how == "huge exponent":
        broken["dynamodb"]["NewImage"]["version"] = {"N": "1e1000000"}
    else:
        deep: dict[str, Any] = {"S": "leaf"}
        for _ in range(2000):
            deep = {"M": {"a": deep}}
        broken["dynamodb"]["NewImage"]["attributes"] = deep
    report = app.process_event({"Records": [broken, record]})
    assert report.failed == [] and version(app, "1") == 1
    (kept,) = app.sync_failures.rejected_records.list()
    assert kept.sequence_number == broken["dynamodb"]["SequenceNumber"]
