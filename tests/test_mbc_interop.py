"""MBC CQRS Serverless's own published code against our tables.

``tests/interop/mbc.js`` drives ``@mbc-cqrs-serverless/core`` (the exact version locked in
``tests/interop/package-lock.json``; ``cd tests/interop && npm ci`` installs it) on the
same engine as the test: MBC's ``CommandService`` writes commands into our command table,
our synchronizer projects them from the real stream records (``app.sync()``), and MBC's
own projection (its data-sync state machine's steps, run through its
``CommandEventHandler``) projects the same stream records into a second set of tables.
The two read models must be equal. Large attributes go through one bucket on the
moto server: MBC's ``S3Service`` keeps them there as ours does, and each side reads
what the other wrote.

Skipped when ``node`` or ``tests/interop/node_modules`` is missing, unless
``CQRS_MBC_INTEROP=required`` (``.ci/run`` sets it) or ``CI=true``: then it fails.

The tests after them need no Node: MBC-shaped command items written raw (as its
``publishAsync`` writes them: every version with its own author in ``createdBy``), to
check that history ``@v`` is the data row at ``v`` however the records are delivered,
what it costs, and that rebuild agrees.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cqrs import SYSTEM, CommandInput, Cqrs, InvokeContext, VersionConflictError
from cqrs.store.codec import from_wire_item, to_wire_item
from cqrs.testing import counting, stream_records, table_items
from cqrs.testing.engine import TEST_ENV, migrate_fresh, shared_engine

pytestmark = pytest.mark.engine

INTEROP = Path(__file__).parent / "interop"
TABLES = Path(__file__).parent / "fixtures" / "tables"
PK, SK = "ORDER#acme", "ORDER#x"
ALICE = {"id": "alice", "ip": "10.0.0.1", "tenant": "acme", "requestId": "req-alice"}
BOB = {"id": "bob", "ip": "10.0.0.2", "tenant": "acme", "requestId": "req-bob"}
CAROL = {"id": "carol", "ip": "10.0.0.3", "tenant": "acme", "requestId": "req-carol"}
#: MBC's S3_BUCKET_NAME and ATTRIBUTE_LIMIT_SIZE, and our CQRS_S3_BUCKET and
#: CQRS_ATTRIBUTE_LIMIT_SIZE in the large-attributes test: one bucket for both sides.
BUCKET, LIMIT = f"interop-{uuid.uuid4().hex[:12]}", 2_000
US = InvokeContext(tenant_code="acme", user_id="us", source_ip="192.0.2.1", request_id="req-us")


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (INTEROP / "node_modules" / "@mbc-cqrs-serverless" / "core").is_dir():
        return "MBC's package is not installed: cd tests/interop && npm ci"
    return None


def _required() -> bool:
    return os.environ.get("CQRS_MBC_INTEROP") == "required" or os.environ.get("CI") == "true"


class Mbc:
    """The Node process running tests/interop/mbc.js: one JSON request per line."""

    def __init__(self, endpoint: str, s3_endpoint: str) -> None:
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        env = {
            **os.environ,
            **TEST_ENV,
            "DYNAMODB_ENDPOINT": endpoint,
            "S3_ENDPOINT": s3_endpoint,
            "S3_BUCKET_NAME": BUCKET,
            "ATTRIBUTE_LIMIT_SIZE": str(LIMIT),
            # MBC writes local time with its offset (toISOStringWithTimezone): not UTC here,
            # so an offset other than +00:00 reaches our reader.
            "TZ": "Asia/Tokyo",
        }
        self._process = subprocess.Popen(
            ["node", "mbc.js"],
            cwd=INTEROP,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._next = 0

    def call(self, op: str, **request: Any) -> dict[str, Any]:
        """``{"ok": True, "result": ...}`` or ``{"ok": False, "error": {"name", "message"}}``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._next += 1
        self._process.stdin.write(json.dumps({"id": self._next, "op": op, **request}) + "\n")
        self._process.stdin.flush()
        while line := self._process.stdout.readline():
            if line.startswith("@@mbc "):
                answer: dict[str, Any] = json.loads(line[len("@@mbc ") :])
                assert answer["id"] == self._next
                return answer
        self._log.seek(0)
        raise AssertionError(f"mbc.js exited ({self._process.wait()}):\n{self._log.read()}")

    def ok(self, op: str, **request: Any) -> Any:
        answer = self.call(op, **request)
        assert answer["ok"], answer["error"]
        return answer["result"]

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def s3_endpoint(moto_server: str, s3_beside_engine: str | None) -> str:
    """Where S3 is: the moto server, which serves it too; beside an external engine
    (DynamoDB Local serves no S3), a moto server of its own."""
    return s3_beside_engine or moto_server


@pytest.fixture(scope="module")
def mbc(moto_server: str, s3_endpoint: str) -> Iterator[Mbc]:
    missing = _missing()
    if missing is not None:
        if _required():
            pytest.fail(f"MBC interop is required here: {missing}")
        pytest.skip(missing)
    process = Mbc(moto_server, s3_endpoint)
    yield process
    process.close()


@pytest.fixture
def apps(cqrs_env: None, moto_server: str) -> tuple[Cqrs, Cqrs]:
    """Our app and a second set of tables for MBC's own projection. The prefixes have
    MBC's shape, ``${NODE_ENV}-${APP_NAME}-``, so MBC names exactly these tables."""
    engine = shared_engine(moto_server)
    tag = uuid.uuid4().hex[:10]
    made = []
    for side in ("ours", "mbc"):
        app = engine.app(TABLES, f"i{tag}-{side}-", migrate=False)
        migrate_fresh(app, wait=not engine.creates_active)
        made.append(app)
    return made[0], made[1]


def publish(mbc: Mbc, app: Cqrs, user: dict[str, str], partial: bool = False, **input: Any) -> Any:
    """MBC's CommandService.publishAsync (or publishPartialUpdateAsync) into ``app``'s tables."""
    op = "publishPartial" if partial else "publish"
    return mbc.call(
        op,
        prefix=app.settings.table_prefix,
        module="order",
        input={"pk": PK, "sk": SK, **input},
        user=user,
        source=f"{op} by {user['id']}",
    )


def order(code: str = "x", **fields: Any) -> dict[str, Any]:
    """A full MBC command input."""
    return {
        "sk": f"ORDER#{code}",
        "id": f"{PK}#ORDER#{code}",
        "code": code,
        "name": f"order {code}",
        "tenantCode": "acme",
        "type": "ORDER",
        "attributes": {"amount": 100, "lines": [{"sku": "A", "qty": 1}]},
        **fields,
    }


def project_with_mbc(mbc: Mbc, ours: Cqrs, theirs: Cqrs) -> None:
    """MBC's own projection of every command in ``ours``'s command table (the INSERT stream
    records, as its Lambda receives them) into ``theirs``'s tables, version by version."""
    table = ours.entity("order").tables.command
    records = [
        r
        for r in stream_records(ours)
        if r["eventName"] == "INSERT" and r["eventSourceARN"].split("/")[1] == table
    ]
    records.sort(key=lambda r: (r["dynamodb"]["Keys"]["sk"]["S"].split("@")[0], _version(r)))
    for record in records:
        prefix = theirs.settings.table_prefix
        steps = mbc.ok("project", prefix=prefix, module="order", record=record)
        assert steps["check_version"] == {"result": 0}, record["dynamodb"]["Keys"]
        assert steps["sync_data"] == ["DataSyncDdsHandler"]


def _version(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["NewImage"]["version"]["N"])


def rows(app: Cqrs, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the order entity's data or history table, decoded, normalised."""
    tables = app.entity("order").tables
    table = tables.data if kind == "data" else tables.history
    items = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): normalised(from_wire_item(i)) for i in items}


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    """The one normalisation: MBC stores ``ttl: null`` (no TTL configured for the tenant:
    its TtlService returns null, and marshall writes a NULL attribute); we leave ``ttl``
    out. Both mean "no TTL" to every reader (DynamoDB's TTL ignores a non-number, MBC's
    unmarshall gives null or undefined). Any other attribute must match exactly,
    timestamps included: every one of them comes from a command, none is generated at
    projection time."""
    if "ttl" in row and row["ttl"] is None:
        return {k: v for k, v in row.items() if k != "ttl"}
    return row


def same_instants(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """``rows`` with createdAt/updatedAt as UTC instants truncated to the second."""
    return {
        key: {k: _second(v) if k in ("createdAt", "updatedAt") else v for k, v in row.items()}
        for key, row in rows.items()
    }


def _second(text: str) -> str:
    instant = datetime.fromisoformat(text).astimezone(UTC).replace(microsecond=0)
    return instant.isoformat()


@pytest.mark.slow  # a Node process
@pytest.mark.parametrize("sync_each", [True, False], ids=["synced one by one", "in one batch"])
def test_mbc_commands_project_exactly_as_mbc_projects_them(
    mbc: Mbc, apps: tuple[Cqrs, Cqrs], sync_each: bool
) -> None:
    ours, theirs = apps
    writes = [
        (ALICE, False, order(version=0)),  # create
        (BOB, False, order(version=1, name="renamed", attributes={"amount": 200})),  # update
        (CAROL, True, {"version": 2, "attributes": {"lines": [{"sku": "B", "qty": 2}]}}),
        (ALICE, False, order("y", version=0)),  # a second entity, one version
    ]
    for n, (user, partial, input) in enumerate(writes):
        assert publish(mbc, ours, user, partial, **input)["ok"]
        if sync_each:
            ours.sync()
        if n == 0:
            time.sleep(1.05)  # MBC's timestamps have whole seconds: v2's createdAt differs
    ours.sync()
    project_with_mbc(mbc, ours, theirs)

    data, history = rows(ours, "data"), rows(ours, "history")
    assert data == rows(theirs, "data")
    row = data[(PK, SK)]
    assert (row["version"], row["createdBy"], row["updatedBy"]) == (3, "alice", "carol")
    assert row["attributes"] == {"amount": 200, "lines": [{"sku": "B", "qty": 2}]}

    # MBC copies the data row at v into history when it projects v + 1 (history_copy runs
    # before sync_data): its history has every version but the latest. Ours writes @v
    # with v; both are the data row at v.
    theirs_history = rows(theirs, "history")
    assert sorted(theirs_history) == [(PK, f"{SK}@1"), (PK, f"{SK}@2")]
    for key, item in theirs_history.items():
        assert history[key] == item, key
    assert history[(PK, f"{SK}@2")]["createdBy"] == "alice"  # the entity's creator, not bob
    assert history[(PK, f"{SK}@2")]["updatedBy"] == "bob"
    for (pk, sk), latest in data.items():
        assert history[(pk, f"{sk}@{latest['version']}")] == {
            **latest,
            "sk": f"{sk}@{latest['version']}",
        }
    assert len(history) == 4


@pytest.mark.slow  # a Node process
def test_optimistic_locking_holds_across_both_sides(mbc: Mbc, apps: tuple[Cqrs, Cqrs]) -> None:
    ours, theirs = apps
    orders = ours.entity("order").commands

    # MBC writes v1; we write v2 based on 1; MBC's stale v2 (and a second create) are refused.
    assert publish(mbc, ours, ALICE, **order(version=0))["ok"]
    ours_input = CommandInput(
        pk=PK, sk=SK, code="x", name="ours", tenant_code="acme", type="ORDER", version=1,
        attributes={"amount": 150},
    )  # fmt: skip
    assert orders.publish_async(ours_input, US) is not None
    for stale in (order(version=1, name="stale"), order(version=0, name="again")):
        refused = publish(mbc, ours, BOB, **stale)
        assert not refused["ok"]
        assert refused["error"]["name"] == "ConditionalCheckFailedException"
    refused = publish(mbc, ours, BOB, partial=True, version=1, attributes={"amount": 1})
    assert refused["error"]["name"] == "ConditionalCheckFailedException"

    # And the other way round: we write v1 of y; MBC writes v2 based on 1; ours is refused.
    y_input = CommandInput(
        pk=PK, sk="ORDER#y", code="y", name="ours", tenant_code="acme", type="ORDER",
        attributes={"amount": 1},
    )  # fmt: skip
    assert orders.publish_async(y_input, US) is not None
    assert publish(mbc, ours, BOB, **order("y", version=1, name="theirs"))["ok"]
    with pytest.raises(VersionConflictError):
        orders.publish_async(y_input.model_copy(update={"version": 1, "name": "stale"}), US)

    ours.sync()
    data = ours.entity("order").data
    x = data.get(PK, SK, consistent=True, context=SYSTEM)
    assert (x.version, x.name, x.created_by, x.updated_by) == (2, "ours", "alice", "us")
    y = data.get(PK, "ORDER#y", consistent=True, context=SYSTEM)
    assert (y.version, y.name, y.created_by, y.updated_by) == (2, "theirs", "us", "bob")
    history = rows(ours, "history")
    assert history[(PK, "ORDER#y@2")]["createdBy"] == "us"  # the data row at 2
    assert history[(PK, "ORDER#y@2")]["updatedBy"] == "bob"
    assert history[(PK, f"{SK}@2")]["createdBy"] == "alice"

    # MBC's own projection of this mixed log gives the same rows, up to how it writes our
    # timestamps: it reads createdAt/updatedAt into a Date and writes every Date back as
    # local time to the second (0.1.48's toISOStringWithTimezone), so our text
    # "...T21:36:47.321+00:00" comes back as "...T06:36:47+09:00": the same instant, to
    # the second. Compared as such; everything else exactly.
    project_with_mbc(mbc, ours, theirs)
    assert same_instants(rows(ours, "data")) == same_instants(rows(theirs, "data"))
    theirs_history = rows(theirs, "history")
    assert sorted(theirs_history) == [(PK, f"{SK}@1"), (PK, "ORDER#y@1")]
    for key, item in theirs_history.items():
        assert same_instants({key: history[key]}) == same_instants({key: item})


# -- history @v without Node: MBC-shaped commands written raw ---------------------------

AUTHORS = {1: ("alice", "10.0.0.1"), 2: ("bob", "10.0.0.2"), 3: ("carol", None)}


def mbc_command(version: int) -> dict[str, Any]:
    """Version ``version`` as MBC's publishAsync writes it: its own author in created*
    (carol's has no IP: published outside HTTP, MBC leaves createdIp out)."""
    user, ip = AUTHORS[version]
    at = f"2026-05-0{version}T10:00:00+09:00"
    item = {
        "pk": PK, "sk": f"{SK}@{version}", "id": f"{PK}#{SK}", "code": "x",
        "name": f"v{version}", "version": version, "tenantCode": "acme", "type": "ORDER",
        "attributes": {"n": version}, "source": "test", "requestId": f"r{version}",
        "createdAt": at, "createdBy": user, "updatedAt": at, "updatedBy": user,
    }  # fmt: skip
    if ip is not None:
        item |= {"createdIp": ip, "updatedIp": ip}
    return item


def data_row_at(version: int) -> dict[str, Any]:
    """MBC's data row after ``version`` (DataService.publish): the creation fields are the
    first version's, each field the first one given."""
    command = {k: v for k, v in mbc_command(version).items() if k != "source"}
    first = mbc_command(1)
    row = command | {k: first[k] for k in ("createdAt", "createdBy", "createdIp")}
    return row | {"sk": SK, "cpk": PK, "csk": f"{SK}@{version}"}


def write_commands(app: Cqrs, versions: range) -> list[dict[str, Any]]:
    """Put the commands raw; return their stream records, by version."""
    table = app.entity("order").tables.command
    for v in versions:
        app.clients.dynamodb.put_item(TableName=table, Item=to_wire_item(mbc_command(v)))
    records = [r for r in stream_records(app) if r["eventName"] == "INSERT"]
    return sorted(records, key=_version)


def deliver(app: Cqrs, batch: list[dict[str, Any]]) -> None:
    assert app.handle_event({"Records": batch}) == {"batchItemFailures": []}


def assert_history_is_the_data_row(app: Cqrs, through: int) -> None:
    history = {k[1]: v for k, v in rows(app, "history").items()}
    assert rows(app, "data") == {(PK, SK): data_row_at(through)}
    assert history == {f"{SK}@{v}": data_row_at(v) | {"sk": f"{SK}@{v}"} for v in (1, 2, 3)}


# -- large attributes: one bucket for both sides ------------------------------------------
# MBC's DynamoDbService (its S3Service at the moto server) keeps attributes over
# ATTRIBUTE_LIMIT_SIZE in S3 and stores the pointer; ours does the same over
# CQRS_ATTRIBUTE_LIMIT_SIZE. Each side reads what the other wrote.

LARGE = {"amount": 100, "lines": [{"sku": "A", "qty": 1}], "memo": "m" * 3_000}


def with_bucket(app: Cqrs, s3_endpoint: str) -> Cqrs:
    """``app`` keeping attributes over :data:`LIMIT` bytes in MBC's bucket."""
    settings = app.settings.replace(
        s3_bucket=BUCKET, attribute_limit_size=LIMIT, s3_endpoint_url=s3_endpoint
    )
    large = Cqrs(settings, clients=replace(app.clients, objects=None))
    s3 = large.clients.store.objects.client
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": settings.region}
        )
    return large


def resolved(app: Cqrs, items: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {key: app.clients.store.objects.resolve(item) for key, item in items.items()}


@pytest.mark.slow  # a Node process
def test_large_attributes_cross_both_sides(
    mbc: Mbc, apps: tuple[Cqrs, Cqrs], s3_endpoint: str
) -> None:
    ours, theirs = (with_bucket(app, s3_endpoint) for app in apps)
    tables = ours.entity("order").tables

    # MBC writes a large command into our table; our sync projects it, pointer and all.
    assert publish(mbc, ours, ALICE, **order(version=0, attributes=LARGE))["ok"]
    (command,) = table_items(ours, tables.command)
    assert command["attributes"].startswith(f"s3://{BUCKET}/ddb/{tables.command}/{PK}/{SK}@1/")
    ours.sync()
    assert rows(ours, "data")[(PK, SK)]["attributes"] == command["attributes"]
    got = ours.entity("order").data.get(PK, SK, context=SYSTEM)
    assert got is not None and got.attributes == LARGE

    # MBC's own projection keeps a copy under its data table: resolved, the rows agree.
    project_with_mbc(mbc, ours, theirs)
    theirs_row = rows(theirs, "data")[(PK, SK)]
    their_table = theirs.entity("order").tables.data
    assert theirs_row["attributes"].startswith(f"s3://{BUCKET}/ddb/{their_table}/")
    assert resolved(ours, rows(ours, "data")) == resolved(ours, rows(theirs, "data"))

    # We write v2 (large, through our API); MBC's partial update reads it and merges.
    ours_v2 = CommandInput(
        pk=PK, sk=SK, code="x", name="ours", tenant_code="acme", type="ORDER", version=1,
        attributes={**LARGE, "amount": 200},
    )  # fmt: skip
    assert ours.entity("order").commands.publish_async(ours_v2, US) is not None
    ours.sync()
    patch = {"version": 2, "attributes": {"note": "from MBC"}}
    answer = publish(mbc, ours, BOB, partial=True, **patch)
    assert answer["ok"], answer
    ours.sync()
    latest = ours.entity("order").data.get(PK, SK, context=SYSTEM)
    assert latest is not None and latest.version == 3
    assert latest.attributes == {**LARGE, "amount": 200, "note": "from MBC"}
    history = ours.entity("order").history.list(PK, SK, context=SYSTEM)
    assert [h.attributes["amount"] for h in history] == [100, 200, 200]


@pytest.mark.parametrize(
    "deliveries",
    [
        [[1], [2], [3]],
        [[1, 2, 3]],
        [[1, 2], [2], [3], [2, 3]],  # v2 again once applied: its history item is repaired
        [[3], [1, 2, 3]],  # v3 first: 1 and 2 read from the command table
        [[2, 3], [1]],
    ],
    ids=["one by one", "in one batch", "redelivered", "gap filled", "out of order"],
)
def test_history_at_v_is_the_data_row_at_v_however_delivered(cqrs_app, deliveries) -> None:
    records = write_commands(cqrs_app, range(1, 4))
    for batch in deliveries:
        deliver(cqrs_app, [records[v - 1] for v in batch])
    assert_history_is_the_data_row(cqrs_app, 3)


def test_a_wrong_creator_assumption_costs_one_refused_write(cqrs_app) -> None:
    """The projector assumes the row's creation fields are the first command's: bob's v2
    is refused by the row (alice's), the history item is written again, then the row."""
    records = write_commands(cqrs_app, range(1, 4))
    deliver(cqrs_app, records[:1])
    for batch in (records[1:2], records[2:]):  # seen once per batch, not remembered
        with counting(cqrs_app.clients.dynamodb) as n:
            deliver(cqrs_app, batch)
        ops = dict(n.by_operation)
        assert ops.pop("GetItem", 0) <= 1  # DynamoDB Local returns no row with the conflict
        assert ops == {"BatchWriteItem": 2, "UpdateItem": 2}
    assert_history_is_the_data_row(cqrs_app, 3)


class Recorder:
    def __init__(self) -> None:
        self.versions: list[tuple[int, str | None]] = []

    def up(self, command: Any) -> None:
        self.versions.append((command.version, command.created_by))

    def down(self, command: Any) -> None:
        pass


def test_with_handlers_the_read_data_row_gives_the_creators(cqrs_app) -> None:
    recorder = Recorder()
    cqrs_app.register("order", handlers=[recorder])
    records = write_commands(cqrs_app, range(1, 4))
    deliver(cqrs_app, records[:1])
    with counting(cqrs_app.clients.dynamodb) as n:
        deliver(cqrs_app, records[1:])
    assert dict(n.by_operation) == {"BatchGetItem": 1, "BatchWriteItem": 1, "UpdateItem": 1}
    assert recorder.versions == [(1, "alice"), (2, "bob"), (3, "carol")]  # the commands
    assert_history_is_the_data_row(cqrs_app, 3)


def test_rebuild_implies_the_same_history(cqrs_app) -> None:
    deliver(cqrs_app, write_commands(cqrs_app, range(1, 4)))
    assert not cqrs_app.rebuild("order").changed  # a healthy read model: nothing to write
    tables = cqrs_app.entity("order").tables
    for v in (1, 2, 3):
        key = to_wire_item({"pk": PK, "sk": f"{SK}@{v}"})
        cqrs_app.clients.dynamodb.delete_item(TableName=tables.history, Key=key)
    data_key = to_wire_item({"pk": PK, "sk": SK})
    cqrs_app.clients.dynamodb.delete_item(TableName=tables.data, Key=data_key)
    assert cqrs_app.rebuild("order").history_written == 3
    assert_history_is_the_data_row(cqrs_app, 3)
