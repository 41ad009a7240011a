"""Large attributes kept in S3 as MBC keeps them (:mod:`cqrs.store.objects`), on moto's S3.

A command whose attributes take more than ``CQRS_ATTRIBUTE_LIMIT_SIZE`` bytes of JSON
stores ``s3://<bucket>/ddb/<table>/<pk>/<sk>/<ulid>.json`` in their place; its data row
and history items keep the same pointer (projection makes no S3 request), and every
read that hands attributes to a user resolves it, whoever wrote it. MBC-shaped items
are written raw, as MBC writes them; sync runs on moto's DynamoDB Streams records.
Engine-marked: on DynamoDB Local (which serves no S3), S3 is a moto server beside it.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest

from cqrs import (
    AttributesRef,
    Command,
    CommandInput,
    CommandPartialInput,
    Cqrs,
    InvokeContext,
    ItemTooLargeError,
    MissingAttributesObjectError,
    Settings,
    VersionConflictError,
)
from cqrs.core.errors import InvalidSettingsError, ThrottledError
from cqrs.store.classify import classify
from cqrs.store.clients import LOCAL_CREDENTIALS, attribute_objects
from cqrs.testing import RequestCounter, stream_records, table_items
from tests.test_mbc_compat import KEY, mbc_command, mbc_put

pytestmark = pytest.mark.engine

CTX = InvokeContext(tenant_code="acme", user_id="alice")
LIMIT = 2_000  # bytes of JSON: small, so tests stay fast
BIG = {"note": "n" * 3_000, "lines": [{"sku": "A", "qty": 2}], "total": 12.5, "名前": "注文"}
SMALL = {"note": "short"}


def order(version: int, attributes: dict[str, Any], name: str = "x") -> CommandInput:
    return CommandInput(
        pk=KEY[0], sk=KEY[1], code="x", name=name, tenant_code="acme", type="ORDER",
        version=version, attributes=attributes,
    )  # fmt: skip


@pytest.fixture
def bucket() -> str:
    return f"cqrs-large-{uuid.uuid4().hex[:12]}"


Bucketed = Callable[..., Cqrs]


@pytest.fixture
def bucketed(cqrs_app: Cqrs, s3_beside_engine: str | None) -> Bucketed:
    """``bucketed(bucket, limit=LIMIT)``: ``cqrs_app`` keeping attributes over ``limit``
    bytes in ``bucket`` (created), or none with ``bucket=None``."""
    return functools.partial(with_bucket, cqrs_app, s3=s3_beside_engine)


@pytest.fixture
def app(bucketed: Bucketed, bucket: str) -> Cqrs:
    """``cqrs_app`` with a bucket for large attributes over :data:`LIMIT` bytes."""
    return bucketed(bucket)


@functools.cache
def session() -> boto3.session.Session:
    """One boto3 session for every test's S3 client (it keeps the service model it
    loaded), made once the engine is active (moto hooks the sessions made after it)."""
    return boto3.session.Session(region_name="ap-northeast-1")


def with_bucket(base: Cqrs, bucket: str | None, limit: int = LIMIT, *, s3: str | None) -> Cqrs:
    settings = base.settings.replace(
        s3_bucket=bucket, attribute_limit_size=limit, s3_endpoint_url=s3
    )
    objects = attribute_objects(settings, session(), LOCAL_CREDENTIALS)
    app = Cqrs(settings, clients=replace(base.clients, objects=objects))
    if bucket is not None:
        s3 = app.clients.store.objects.client
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region}
        )
    return app


def s3_of(app: Cqrs) -> Any:
    return app.clients.store.objects.client


def objects_in(app: Cqrs, bucket: str) -> dict[str, Any]:
    """Every object of ``bucket``: key → parsed JSON body."""
    s3 = s3_of(app)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


def stored(app: Cqrs, kind: str) -> list[dict[str, Any]]:
    """The raw items of the order entity's ``kind`` table (pointers as stored)."""
    return table_items(app, getattr(app.entity("order").tables, kind), pk=KEY[0])


def sync_now(app: Cqrs) -> Any:
    report = app.synchronizer.handle_event({"Records": stream_records(app)})
    app.sync()  # move the follower's checkpoints past them
    return report


POINTER = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<key>ddb/(?P<table>[^/]+)/(?P<rest>.+)\.json)")


def test_small_attributes_stay_in_dynamodb(app: Cqrs, bucket: str) -> None:
    app.entity("order").commands.publish_async(order(0, SMALL), CTX)
    assert stored(app, "command")[0]["attributes"] == SMALL
    assert objects_in(app, bucket) == {}


def test_large_attributes_go_to_s3_at_mbcs_key(app: Cqrs, bucket: str) -> None:
    command = app.entity("order").commands.publish_async(order(0, BIG), CTX)
    assert command is not None and command.attributes == BIG  # the caller sees them
    (item,) = stored(app, "command")
    match = POINTER.fullmatch(item["attributes"])
    assert match is not None, item["attributes"]
    table = app.entity("order").tables.command
    assert match["bucket"] == bucket and match["table"] == table
    assert match["rest"].startswith("ORDER#acme/ORDER#x@1/")  # ddb/{table}/{pk}/{sk}/{ulid}
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", match["rest"].rsplit("/", 1)[1])
    body = s3_of(app).get_object(Bucket=bucket, Key=match["key"])["Body"].read()
    # MBC's JSON.stringify: compact, non-ASCII as UTF-8
    assert body == json.dumps(BIG, separators=(",", ":"), ensure_ascii=False).encode()


def test_sync_copies_the_pointer_and_makes_no_s3_request(app: Cqrs, bucket: str) -> None:
    app.entity("order").commands.publish_async(order(0, BIG), CTX)
    (command,) = stored(app, "command")
    with RequestCounter(s3_of(app)) as s3:
        report = sync_now(app)
    assert report.applied == 1 and s3.total == 0
    (row,) = stored(app, "data")
    (history,) = stored(app, "history")
    assert row["attributes"] == history["attributes"] == command["attributes"]
    assert len(objects_in(app, bucket)) == 1  # one object, shared


def test_every_read_path_resolves(app: Cqrs) -> None:
    entity = app.entity("order")
    entity.commands.publish_async(order(0, BIG), CTX)
    sync_now(app)
    data, history, commands = entity.data, entity.history, entity.commands
    got = data.get(*KEY, context=CTX)
    assert got is not None and got.attributes == BIG
    row = data.get_item(*KEY, context=CTX)
    assert row is not None and row["attributes"] == BIG
    assert [r.attributes for r in data.list_by_pk(KEY[0], context=CTX).items] == [BIG]
    found = data.find_by_code("acme", "x", context=CTX)
    assert found is not None and found.attributes == BIG
    one = history.get(*KEY, 1, context=CTX)
    assert one is not None and one.attributes == BIG
    assert [h.attributes for h in history.list(*KEY, context=CTX)] == [BIG]
    cmd = commands.get(*KEY, 1, context=CTX)
    assert cmd is not None and cmd.attributes == BIG


def test_read_your_writes_resolves_while_sync_is_behind(app: Cqrs) -> None:
    entity = app.entity("order")
    first = entity.commands.publish_async(order(0, BIG), CTX)
    assert first is not None
    fresh = entity.data.get_fresh(*KEY, after=first, context=CTX)
    assert fresh is not None and fresh.attributes == BIG
    sync_now(app)
    bigger = {**BIG, "total": 99}
    entity.commands.publish_async(order(1, bigger), CTX)
    fresh = entity.data.get_fresh(*KEY, context=CTX)  # the command log, from the row's v1
    assert fresh is not None and fresh.version == 2 and fresh.attributes == bigger


def test_publish_sync_writes_the_pointer_and_returns_the_attributes(app: Cqrs) -> None:
    command = app.entity("order").commands.publish_sync(order(0, BIG), CTX)
    assert command is not None and command.attributes == BIG
    (row,) = stored(app, "data")
    assert row["attributes"] == stored(app, "command")[0]["attributes"]
    assert row["attributes"].startswith("s3://")


class Seen:
    """A data-sync handler recording the attributes it is given."""

    def __init__(self) -> None:
        self.attributes: list[Any] = []

    def up(self, command: Command[Any]) -> None:
        self.attributes.append(command.attributes)

    def down(self, command: Command[Any]) -> None:
        pass


def test_handlers_see_the_attributes(app: Cqrs) -> None:
    seen = Seen()
    app.register("order", handlers=[seen])
    app.entity("order").commands.publish_async(order(0, BIG), CTX)
    with RequestCounter(s3_of(app)) as s3:
        sync_now(app)
    assert seen.attributes == [BIG]
    assert s3.by_operation == {"GetObject": 1}


def test_a_partial_update_merges_into_attributes_kept_in_s3(app: Cqrs, bucket: str) -> None:
    commands = app.entity("order").commands
    commands.publish_async(order(0, BIG), CTX)
    patch = CommandPartialInput(pk=KEY[0], sk=KEY[1], version=1, attributes={"total": 1})
    second = commands.publish_partial_update_async(patch, CTX)
    assert second is not None and second.attributes == {**BIG, "total": 1}
    assert len(objects_in(app, bucket)) == 2  # each version's own object
    assert commands.publish_async(order(2, {**BIG, "total": 1}), CTX) is None  # not dirty
    assert len(objects_in(app, bucket)) == 2  # the dirty check writes nothing


def test_the_command_that_loses_the_version_race_leaves_no_object(app: Cqrs, bucket: str) -> None:
    commands = app.entity("order").commands
    commands.publish_async(order(0, BIG), CTX)
    with pytest.raises(VersionConflictError):
        commands.publish_async(order(0, {**BIG, "total": 2}), CTX)
    assert len(objects_in(app, bucket)) == 1


def test_too_large_inline_is_offloaded_whatever_the_limit(bucketed: Bucketed, bucket: str) -> None:
    app = bucketed(bucket, limit=10_000_000)
    huge = {"note": "n" * 420_000}
    command = app.entity("order").commands.publish_async(order(0, huge), CTX)
    assert command is not None and command.attributes == huge
    assert stored(app, "command")[0]["attributes"].startswith(f"s3://{bucket}/")


def test_too_large_without_its_attributes_is_refused_before_any_write(
    app: Cqrs, bucket: str
) -> None:
    with pytest.raises(ItemTooLargeError):
        app.entity("order").commands.publish_async(order(0, BIG, name="n" * 420_000), CTX)
    assert objects_in(app, bucket) == {} and stored(app, "command") == []


def test_attributes_json_cannot_hold_stay_inline(app: Cqrs, bucket: str) -> None:
    """Sets and binary have no JSON form: inline, refused only when too large."""
    tagged = {"tags": {f"t{i:05}" for i in range(300)}}
    app.entity("order").commands.publish_async(order(0, tagged), CTX)
    assert stored(app, "command")[0]["attributes"] == tagged
    with pytest.raises(ItemTooLargeError):
        huge = {"tags": {f"t{i:07}" for i in range(60_000)}}
        app.entity("order").commands.publish_async(order(1, huge), CTX)
    assert objects_in(app, bucket) == {}


def test_without_a_bucket_large_attributes_are_refused(cqrs_app: Cqrs) -> None:
    assert cqrs_app.settings.s3_bucket is None
    with pytest.raises(ItemTooLargeError):
        cqrs_app.entity("order").commands.publish_async(order(0, {"n": "n" * 420_000}), CTX)


def mbc_object(app: Cqrs, bucket: str, table: str, sk: str, attributes: Any) -> str:
    """What MBC's DynamoDbService.objToDdbItem writes to S3; returns the pointer."""
    key = f"ddb/{table}/{KEY[0]}/{sk}/01J0MBC{uuid.uuid4().hex[:19].upper()}.json"
    s3_of(app).put_object(Bucket=bucket, Key=key, Body=json.dumps(attributes).encode())
    return f"s3://{bucket}/{key}"


def test_mbc_written_items_read_exactly_like_ours(bucketed: Bucketed, bucket: str) -> None:
    """MBC's command, projected by us; MBC's own data row with its own object; both read
    as inline ones do, also by an app with no bucket of its own (the pointer names it)."""
    app = bucketed(bucket)
    tables = app.entity("order").tables
    attributes = {"amount": 100, "lines": [{"sku": "A", "qty": 1}], "memo": "m" * 3_000}
    pointer = mbc_object(app, bucket, tables.command, "ORDER#x@1", attributes)
    mbc_put(app, mbc_command(1, "2024-05-01T10:00:00.000Z", attributes=pointer))
    inline = bucketed(None)
    inline_row: dict[str, Any] | None = None
    with RequestCounter(s3_of(app)) as s3:
        assert sync_now(app).applied == 1
    assert s3.total == 0
    (row,) = stored(app, "data")
    assert row["attributes"] == pointer
    for reader in (app, inline):
        got = reader.entity("order").data.get(*KEY, context=CTX)
        assert got is not None and got.attributes == attributes
        inline_row = reader.entity("order").data.get_item(*KEY, context=CTX)
    # MBC's projection keeps its own copy under the data table: read the same way.
    own = mbc_object(app, bucket, tables.data, "ORDER#x", attributes)
    app.clients.store.put(tables.data, {**row, "attributes": own})
    assert app.entity("order").data.get_item(*KEY, context=CTX) == inline_row
    # Our next version builds on MBC's (the log loads the base's attributes).
    patch = CommandPartialInput(pk=KEY[0], sk=KEY[1], version=1, attributes={"amount": 5})
    second = app.entity("order").commands.publish_partial_update_async(patch, CTX)
    assert second is not None and second.attributes == {**attributes, "amount": 5}


def test_a_missing_object_is_a_permanent_error(app: Cqrs, bucket: str) -> None:
    app.entity("order").commands.publish_async(order(0, BIG), CTX)
    sync_now(app)
    for key in objects_in(app, bucket):
        s3_of(app).delete_object(Bucket=bucket, Key=key)
    with pytest.raises(MissingAttributesObjectError) as caught:
        app.entity("order").data.get(*KEY, context=CTX)
    assert not caught.value.retryable and caught.value.cause is not None


def test_a_missing_object_fails_the_handlers_version_not_the_batch(app: Cqrs, bucket: str) -> None:
    app.register("order", handlers=[Seen()])
    app.entity("order").commands.publish_async(order(0, BIG), CTX)
    for key in objects_in(app, bucket):
        s3_of(app).delete_object(Bucket=bucket, Key=key)
    report = sync_now(app)
    assert report.applied == 0 and len(report.failed) == 1
    failure = app.sync_failures.get("order", *KEY)
    assert failure is not None and "MissingAttributesObjectError" in failure.error


def test_s3_errors_are_classified_by_code() -> None:
    from botocore.exceptions import ClientError

    def error(code: str, status: int) -> ClientError:
        response: Any = {"Error": {"Code": code, "Message": code}}
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
        return ClientError(response, "GetObject")

    assert isinstance(classify(error("SlowDown", 503), "get"), ThrottledError)
    assert classify(error("SlowDown", 503), "get").retryable
    missing = classify(error("NoSuchKey", 404), "get")
    assert isinstance(missing, MissingAttributesObjectError) and not missing.retryable
    assert not classify(error("AccessDenied", 403), "get").retryable


def test_rebuild_keeps_the_pointers_without_s3_requests(app: Cqrs) -> None:
    entity = app.entity("order")
    entity.commands.publish_async(order(0, BIG), CTX)
    entity.commands.publish_async(order(1, {**BIG, "total": 2}), CTX)
    with RequestCounter(s3_of(app)) as s3:
        app.rebuild("order")
    assert s3.total == 0
    (row,) = stored(app, "data")
    assert row["attributes"] == stored(app, "command")[1]["attributes"]
    got = entity.data.get(*KEY, context=CTX)
    assert got is not None and got.version == 2 and got.attributes == {**BIG, "total": 2}


def test_cqrs_show_shows_the_attributes(app: Cqrs) -> None:
    from cqrs.cli.show import load_entity_view

    app.entity("order").commands.publish_async(order(0, BIG), CTX)
    view = load_entity_view(app.entity("order"), *KEY)
    assert view.versions[0].item["attributes"] == BIG  # not yet synced: from the command
    sync_now(app)
    view = load_entity_view(app.entity("order"), *KEY)
    assert view.data is not None and view.data["attributes"] == BIG
    assert view.versions[0].item["attributes"] == BIG


def test_an_invalid_pointer_is_a_rejected_record(cqrs_app: Cqrs) -> None:
    mbc_put(cqrs_app, mbc_command(1, "2024-05-01T10:00:00.000Z", attributes="s3://nokey"))
    report = sync_now(cqrs_app)
    assert report.applied == 0 and len(report.rejected) == 1
    assert "S3 pointer" in cqrs_app.sync_failures.rejected_records.list()[0].reason


def test_pointers_parse_as_mbc_writes_them() -> None:
    ref = AttributesRef.parse("s3://b-1/ddb/t/ORDER#acme/ORDER#x@1/01ABC.json")
    assert (ref.bucket, ref.key) == ("b-1", "ddb/t/ORDER#acme/ORDER#x@1/01ABC.json")
    assert ref.uri == "s3://b-1/ddb/t/ORDER#acme/ORDER#x@1/01ABC.json"


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_S3_BUCKET", "shop-attributes")
    monkeypatch.setenv("CQRS_ATTRIBUTE_LIMIT_SIZE", "389120")
    settings = Settings()
    assert (settings.s3_bucket, settings.attribute_limit_size) == ("shop-attributes", 389120)
    objects = attribute_objects(settings)
    assert (objects.bucket, objects.limit, objects.enabled) == ("shop-attributes", 389120, True)
    monkeypatch.delenv("CQRS_ATTRIBUTE_LIMIT_SIZE")
    assert Settings().attribute_limit_size == 102_400
    for bad in ({"s3_bucket": "Shop_Attributes"}, {"attribute_limit_size": 0}):
        with pytest.raises(InvalidSettingsError):
            Settings(**bad)


def test_data_migrations_see_the_attributes(app: Cqrs, tmp_path: Any) -> None:
    from tests.test_data_migrations import context_for

    app.entity("order").commands.publish_async(order(0, BIG), CTX)
    sync_now(app)
    ctx = context_for(app, tmp_path)
    assert [row["attributes"] for row in ctx.scan_data("order")] == [BIG]
    latest = ctx.latest_command("order", *KEY)
    assert latest is not None and latest["attributes"] == BIG
