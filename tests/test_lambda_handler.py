"""``cqrs.aws.handler``: Lambda's DynamoDB stream event in, partial batch response out."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from cqrs import (
    SYSTEM,
    Command,
    CommandInput,
    ConfigurationError,
    Cqrs,
    InvalidEventError,
    InvokeContext,
    Settings,
)
from cqrs.aws import get_app, handler, set_app
from cqrs.store.codec import to_wire_item as serialize
from cqrs.store.streams import StreamsGateway
from cqrs.sync.follower import StreamFollower
from cqrs.testing import REGION, stream_records

TABLES = Path(__file__).parent / "fixtures" / "tables"


def publish(app: Cqrs, entity: str, code: str, version: int = 0, **attrs: Any) -> None:
    kind = entity.upper()
    app.entity(entity).commands.publish_async(
        CommandInput(
            pk=f"{kind}#acme", sk=f"{kind}#{code}", code=code, name=code, tenant_code="acme",
            type=kind, version=version, attributes=attrs,
        ),
        InvokeContext(tenant_code="acme"),
    )  # fmt: skip


def version_of(app: Cqrs, entity: str, code: str) -> int | None:
    kind = entity.upper()
    row = app.entity(entity).data.get_item(
        f"{kind}#acme", f"{kind}#{code}", consistent=True, context=SYSTEM
    )
    return row["version"] if row else None


def lambda_event(records: list[dict]) -> dict:
    """What Lambda hands the function: JSON, so round-trip it."""
    return json.loads(json.dumps({"Records": records}))


@pytest.fixture
def served(cqrs_app: Cqrs):
    """``cqrs_app`` as the app ``cqrs.aws.handler`` serves."""
    set_app(cqrs_app)
    yield cqrs_app
    set_app(None)


# -- the event ---------------------------------------------------------------------


def test_records_have_lambdas_shape(cqrs_app):
    publish(cqrs_app, "order", "1")
    (record,) = stream_records(cqrs_app)

    assert set(record) == {
        "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
        "eventSourceARN",
    }  # fmt: skip
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == REGION
    table = cqrs_app.entity("order").tables.command
    assert re.fullmatch(rf"arn:aws:dynamodb:{REGION}:\d{{12}}:table/{table}/stream/.+",
                        record["eventSourceARN"])  # fmt: skip
    ddb = record["dynamodb"]
    assert set(ddb) >= {
        "ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes",
        "StreamViewType",
    }  # fmt: skip
    assert isinstance(ddb["ApproximateCreationDateTime"], (int, float))
    assert ddb["Keys"] == serialize({"pk": "ORDER#acme", "sk": "ORDER#1@1"})
    assert ddb["NewImage"]["version"] == {"N": "1"}
    assert ddb["SequenceNumber"].isdigit() and isinstance(ddb["SizeBytes"], int)
    assert ddb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert lambda_event([record]) == {"Records": [record]}  # plain JSON


# -- routing and the response ------------------------------------------------------------


@pytest.mark.engine
def test_records_are_routed_to_their_entity_by_source_arn(served):
    publish(served, "order", "1")
    publish(served, "order", "1", version=1, n=2)
    publish(served, "cat", "1")

    assert handler(lambda_event(stream_records(served)), None) == {"batchItemFailures": []}

    assert version_of(served, "order", "1") == 2
    assert version_of(served, "cat", "1") == 1


class FailOnVersion2:
    def up(self, command: Command[Any]) -> None:
        if command.version == 2:
            raise RuntimeError("cannot project version 2")

    def down(self, command: Command[Any]) -> None:
        pass


@pytest.mark.engine
def test_a_failing_record_is_returned_as_a_batch_item_failure(served):
    served.register("order", handlers=[FailOnVersion2()])
    publish(served, "order", "1")
    publish(served, "order", "1", version=1, n=2)
    publish(served, "cat", "1")
    records = stream_records(served)

    response = handler(lambda_event(records), None)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]
    }
    assert version_of(served, "order", "1") == 1
    assert version_of(served, "cat", "1") == 1


def test_records_of_other_tables_are_ignored(served):
    ddb = served.clients.dynamodb
    other = f"{served.settings.table_prefix}other"
    ddb.create_table(
        TableName=other,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    ddb.put_item(TableName=other, Item=serialize({"id": "x", "sk": "ORDER#1@1", "version": 1}))
    tasks = served.schema.system_table("tasks")
    ddb.put_item(TableName=tasks, Item=serialize({"pk": "TASK#acme", "sk": "T#1@1", "version": 1}))
    publish(served, "order", "1")
    streams = StreamsGateway(ddb, served.clients.streams)
    foreign = StreamFollower(streams, [other], lambda e: {}).read_records()
    records = foreign + stream_records(served)
    assert len(records) == 3

    report = served.process_event(lambda_event(records))

    # The foreign table's record is ignored; the tasks record goes to the task service
    # (which finds no task lifecycle in it and does nothing); the command is applied.
    assert (report.failed, report.ignored, report.applied) == ([], 1, 1)
    assert handler(lambda_event(records), None) == {"batchItemFailures": []}
    assert version_of(served, "order", "1") == 1


# -- malformed events -------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_app() -> Cqrs:
    """An app that is never reached: malformed events fail before any request."""
    return Cqrs(Settings(tables_dir=TABLES, region=REGION))


@pytest.fixture
def offline(offline_app: Cqrs):
    set_app(offline_app)
    yield offline_app
    set_app(None)


@pytest.mark.parametrize(
    "event", [{}, {"Records": None}, {"Records": {"a": 1}}, [], None, "Records"],
    ids=["no Records", "null Records", "Records not a list", "a list", "None", "a string"],
)  # fmt: skip
def test_an_event_without_a_records_list_is_invalid(offline, event):
    with pytest.raises(InvalidEventError, match="Records"):
        handler(event, None)


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (
            {"eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:x:1:table/t/stream/s"},
            "needs 'dynamodb'",
        ),
        ({"eventName": "INSERT", "dynamodb": {"NewImage": {}}}, "needs 'dynamodb'"),
        ({"eventName": "INSERT"}, "needs 'dynamodb'"),
        ("not a record", "must be a mapping"),
    ],
    ids=["no dynamodb", "no eventSourceARN nor SequenceNumber", "only a name", "not a mapping"],
)
def test_a_record_that_cannot_be_identified_is_rejected_and_the_rest_applied(served, record, says):
    """No retry can make it valid: it is acknowledged and kept, never fails the batch."""
    publish(served, "order", "1")
    response = handler(lambda_event([record, *stream_records(served)]), None)
    assert response == {"batchItemFailures": []}
    assert version_of(served, "order", "1") == 1
    (kept,) = served.sync_failures.rejected_records.list()
    assert says in kept.reason and kept.sequence_number is None
    assert json.loads(kept.raw) == record


def _broken(record: dict, n: int, how: str) -> dict:
    broken = json.loads(json.dumps(record))
    broken["dynamodb"]["SequenceNumber"] = f"{n}{broken['dynamodb']['SequenceNumber']}"
    if how == "image":
        broken["dynamodb"]["NewImage"] = {"pk": "not DynamoDB JSON"}
    elif how == "event name":
        broken["eventName"] = "UPSERT"
    elif how == "arn":
        broken["eventSourceARN"] = "order-command"
    return broken


def test_malformed_records_with_a_sequence_number_are_acknowledged_and_kept(served):
    publish(served, "order", "1")
    publish(served, "cat", "1")
    records = stream_records(served)
    broken = [_broken(records[0], n, how) for n, how in enumerate(["image", "event name", "arn"])]

    report = served.process_event(lambda_event([*broken, *records]))

    assert report.failed == []
    assert [r.sequence_number for r in report.rejected] == [
        b["dynamodb"]["SequenceNumber"] for b in broken
    ]
    kept = served.sync_failures.rejected_records.list()
    assert sorted(r.sequence_number or "" for r in kept) == sorted(
        b["dynamodb"]["SequenceNumber"] for b in broken
    )
    assert version_of(served, "order", "1") == 1 and version_of(served, "cat", "1") == 1


# -- which app the handler serves --------------------------------------------------------


def write_app_module(tmp_path, monkeypatch, tables_dir: Path, prefix: str) -> str:
    """A module ``service_<id>`` building an app on those tables, importable from ``tmp_path``."""
    name = f"service_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from cqrs import Cqrs, Settings\n\n\n"
        "def create():\n"
        f"    return Cqrs(Settings(tables_dir={str(tables_dir)!r}, table_prefix={prefix!r},\n"
        f"                         region={REGION!r}))\n"
        "\n\napp = create()\nnot_an_app = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_cqrs_app_names_the_app_to_serve(cqrs_app, tmp_path, monkeypatch):
    module = write_app_module(
        tmp_path, monkeypatch, cqrs_app.settings.tables_dir, cqrs_app.settings.table_prefix
    )
    for version, attribute in enumerate(["create", "app"], start=1):  # a factory, an instance
        monkeypatch.setenv("CQRS_APP", f"{module}:{attribute}")
        set_app(None)
        try:
            publish(cqrs_app, "order", "1", version=version - 1, n=version)
            records = stream_records(cqrs_app)[-1:]
            assert handler(lambda_event(records), None) == {"batchItemFailures": []}
            served = get_app()
            assert served is not cqrs_app and served is get_app()  # built once per container
            assert served.settings.table_prefix == cqrs_app.settings.table_prefix
        finally:
            set_app(None)
        assert version_of(cqrs_app, "order", "1") == version


@pytest.mark.parametrize("spec", ["no_colon", "{module}:not_an_app", "{module}:"])
def test_a_bad_cqrs_app_is_a_configuration_error(tmp_path, monkeypatch, spec):
    module = write_app_module(tmp_path, monkeypatch, TABLES, "unused-")
    monkeypatch.setenv("CQRS_APP", spec.format(module=module))
    set_app(None)
    try:
        with pytest.raises(ConfigurationError, match=r"CQRS_APP|not a Cqrs app"):
            handler({"Records": []}, None)
    finally:
        set_app(None)
