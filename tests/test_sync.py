"""The stream synchronizer: command versions → data and history, from real moto stream records.

Every test publishes commands, reads the records moto's DynamoDB Streams really
emitted (``stream_records``) and feeds them — in order, gapped, duplicated or
failing — through ``app.handle_event``/``process_event``, or lets ``drain``
pull them as the local follower does.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from injector import inject
from pydantic import BaseModel

from cqrs import SYSTEM, Command, CommandInput, Cqrs, InvokeContext
from cqrs.core.items import CommandItem
from cqrs.core.keys import remove_version
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize
from cqrs.store.stream_records import parse_record
from cqrs.testing import RequestCounter, stream_records

# -- helpers -------------------------------------------------------------------


def publish(app: Cqrs, code: str, *, entity: str = "order", tenant: str = "acme", **attrs: Any):
    """Publish the next version of ``<ENTITY>#<tenant> / <ENTITY>#<code>`` (async)."""
    kind = entity.upper()
    command = app.entity(entity).commands.publish_async(
        CommandInput(
            pk=f"{kind}#{tenant}", sk=f"{kind}#{code}", code=code, name=f"{entity} {code}",
            tenant_code=tenant, type=kind, version=-1, attributes=attrs,
        ),
        InvokeContext(tenant_code=tenant, user_id="u1"),
    )  # fmt: skip
    assert command is not None
    return command


def publish_versions(app: Cqrs, code: str, n: int, **kw: Any) -> None:
    for i in range(1, n + 1):
        publish(app, code, n=i, **kw)


def sk_of(record: dict) -> str:
    return record["dynamodb"]["Keys"]["sk"]["S"]


def record_for(records: list[dict], sk: str, pk: str = "ORDER#acme") -> dict:
    """The INSERT record of command ``pk / sk`` (``sk`` with ``@version``)."""
    return next(
        r for r in records
        if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"] == pk and sk_of(r) == sk
    )  # fmt: skip


def feed(app: Cqrs, records: list[dict]) -> dict:
    return app.handle_event({"Records": list(records)})


def failures(response: dict) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def data_row(app: Cqrs, code: str, entity: str = "order", tenant: str = "acme") -> dict | None:
    kind = entity.upper()
    return app.entity(entity).data.get_item(
        f"{kind}#{tenant}", f"{kind}#{code}", consistent=True, context=SYSTEM
    )


def table_items(app: Cqrs, table: str) -> dict[tuple[str, str], dict]:
    items = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): deserialize(i) for i in items}


def command_item(app: Cqrs, sk: str, pk: str = "ORDER#acme") -> dict:
    return table_items(app, app.entity("order").tables.command)[pk, sk]


def history_versions(app: Cqrs, code: str, entity: str = "order", tenant: str = "acme"):
    kind = entity.upper()
    return [
        h.version
        for h in app.entity(entity).history.list(
            f"{kind}#{tenant}", f"{kind}#{code}", context=SYSTEM
        )
    ]


def read_model(app: Cqrs) -> dict[str, dict]:
    out = {}
    for name in app.schema.entities:
        tables = app.schema.entity_tables(name)
        out[tables.data] = table_items(app, tables.data)
        out[tables.history] = table_items(app, tables.history)
    return out


def throttling(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation
    )


def fail_once(monkeypatch, client: Any, method: str, operation: str, when=lambda kw: True):
    """Make ``client.<method>`` raise a throttling error the first time ``when(kwargs)``."""
    real = getattr(client, method)
    calls = {"failed": 0}

    def wrapper(**kwargs: Any) -> Any:
        if not calls["failed"] and when(kwargs):
            calls["failed"] += 1
            raise throttling(operation)
        return real(**kwargs)

    monkeypatch.setattr(client, method, wrapper)
    return calls


class Recorder:
    """A custom projection that records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int]] = []

    def up(self, command: Command[Any]) -> None:
        self.calls.append(("up", command.pk, remove_version(command.sk), command.version))

    def down(self, command: Command[Any]) -> None:
        self.calls.append(("down", command.pk, remove_version(command.sk), command.version))

    def seen(self, code: str = "1", pk: str = "ORDER#acme", op: str = "up") -> list[int]:
        return [v for o, p, sk, v in self.calls if (o, p, sk) == (op, pk, f"ORDER#{code}")]


class FailingRecorder(Recorder):
    """Raises in ``up`` for ``ORDER#<code>`` at ``version``, ``times`` times."""

    def __init__(self, version: int, code: str = "1", times: int = 1) -> None:
        super().__init__()
        self.version, self.sk, self.times = version, f"ORDER#{code}", times

    def up(self, command: Command[Any]) -> None:
        super().up(command)
        if (command.version, remove_version(command.sk)) == (self.version, self.sk) and self.times:
            self.times -= 1
            raise RuntimeError(f"projection of version {self.version} failed")


# -- data and history ------------------------------------------------------------


@pytest.mark.engine
def test_each_version_becomes_the_data_row_and_a_history_item_equal_to_it(cqrs_app, drain):
    after: dict[int, dict] = {}
    for n in (1, 2, 3):
        publish(cqrs_app, "1", n=n)
        drain(cqrs_app)
        after[n] = data_row(cqrs_app, "1")

    row = after[3]
    assert (row["pk"], row["sk"], row["version"]) == ("ORDER#acme", "ORDER#1", 3)
    assert (row["cpk"], row["csk"]) == ("ORDER#acme", "ORDER#1@3")
    assert row["attributes"] == {"n": 3}
    history = table_items(cqrs_app, cqrs_app.entity("order").tables.history)
    assert set(history) == {("ORDER#acme", f"ORDER#1@{v}") for v in (1, 2, 3)}
    for v, state in after.items():
        assert history["ORDER#acme", f"ORDER#1@{v}"] == {**state, "sk": f"ORDER#1@{v}"}
    assert cqrs_app.entity("order").data.get("ORDER#acme", "ORDER#1", context=SYSTEM).version == 3


@pytest.mark.engine
def test_is_applied_tells_when_a_version_reached_the_read_model(cqrs_app, drain):
    commands = cqrs_app.entity("order").commands
    publish(cqrs_app, "1", n=1)
    assert not commands.is_applied("ORDER#acme", "ORDER#1", 1, context=SYSTEM)
    drain(cqrs_app)
    publish(cqrs_app, "1", n=2)
    assert commands.is_applied("ORDER#acme", "ORDER#1@1", 1, context=SYSTEM)
    assert not commands.is_applied("ORDER#acme", "ORDER#1", 2, context=SYSTEM)
    drain(cqrs_app)
    assert commands.is_applied("ORDER#acme", "ORDER#1", 2, context=SYSTEM)


@pytest.mark.engine
def test_a_gap_is_caught_up_from_the_command_table(cqrs_app):
    publish_versions(cqrs_app, "1", 4)
    records = stream_records(cqrs_app)

    report = cqrs_app.process_event({"Records": [record_for(records, "ORDER#1@4")]})

    assert report.failed == [] and report.applied == 1
    assert data_row(cqrs_app, "1")["version"] == 4
    assert history_versions(cqrs_app, "1") == [1, 2, 3, 4]


def test_a_gap_in_the_middle_is_caught_up_too(cqrs_app):
    publish_versions(cqrs_app, "1", 5)
    records = stream_records(cqrs_app)
    feed(cqrs_app, [record_for(records, "ORDER#1@1")])

    assert failures(feed(cqrs_app, [record_for(records, "ORDER#1@5")])) == []

    assert data_row(cqrs_app, "1")["attributes"] == {"n": 5}
    assert history_versions(cqrs_app, "1") == [1, 2, 3, 4, 5]


def test_a_long_gap_is_read_and_written_in_chunks(cqrs_app):
    """27 missing versions: more than one history BatchWriteItem (25 items each)."""
    orders, ctx = cqrs_app.entity("order"), InvokeContext(tenant_code="acme")
    for version in range(28):
        orders.commands.publish_async(
            CommandInput(
                pk="ORDER#acme", sk="ORDER#1", code="1", name="1", tenant_code="acme",
                type="ORDER", version=version, attributes={"n": version + 1},
            ),
            ctx,
        )  # fmt: skip
    last = record_for(stream_records(cqrs_app), "ORDER#1@28")

    with RequestCounter(cqrs_app.clients.dynamodb) as counter:
        assert failures(feed(cqrs_app, [last])) == []

    # The optimistic first try writes v28 alone; after the failed guess, 28 items in two.
    assert counter.by_operation["BatchWriteItem"] == 1 + 2
    assert history_versions(cqrs_app, "1") == list(range(1, 29))
    assert data_row(cqrs_app, "1")["attributes"] == {"n": 28}


def test_a_gap_that_cannot_be_filled_stops_the_entity(cqrs_app):
    """A missing version (expired by TTL?) is not skipped: the entity waits, reported."""
    publish_versions(cqrs_app, "1", 3)
    publish_versions(cqrs_app, "2", 1)
    records = stream_records(cqrs_app)
    feed(cqrs_app, records[:1])
    cqrs_app.clients.dynamodb.delete_item(
        TableName=cqrs_app.entity("order").tables.command,
        Key=serialize({"pk": "ORDER#acme", "sk": "ORDER#1@2"}),
    )
    last = record_for(records, "ORDER#1@3")

    report = cqrs_app.process_event({"Records": [last, record_for(records, "ORDER#2@1")]})

    assert report.failed == [last["dynamodb"]["SequenceNumber"]]
    assert "ORDER#1@2" in str(report.errors[0]) and "not found" in str(report.errors[0])
    assert data_row(cqrs_app, "1")["version"] == 1
    assert data_row(cqrs_app, "2")["version"] == 1


@pytest.mark.engine
def test_applied_versions_are_skipped_and_data_never_goes_back(cqrs_app):
    publish_versions(cqrs_app, "1", 3)
    records = stream_records(cqrs_app)
    feed(cqrs_app, records)
    before = read_model(cqrs_app)

    for sk in ("ORDER#1@1", "ORDER#1@2", "ORDER#1@3"):
        assert failures(feed(cqrs_app, [record_for(records, sk)])) == []
    assert failures(feed(cqrs_app, list(reversed(records)))) == []

    assert read_model(cqrs_app) == before


def test_a_stale_projector_cannot_move_data_backwards(cqrs_app):
    """The data write is conditional on the version it replaces."""
    publish_versions(cqrs_app, "1", 3)
    records = stream_records(cqrs_app)
    feed(cqrs_app, records)
    projector = cqrs_app.entity("order").projector
    v2 = parse_record(record_for(records, "ORDER#1@2")).new_image

    # This projector believes the data row is still at version 1.
    outcome = projector.apply(
        [CommandItem.from_item(v2)], known_versions={("ORDER#acme", "ORDER#1"): 1}
    )

    assert outcome["ORDER#acme", "ORDER#1"].ok
    assert outcome["ORDER#acme", "ORDER#1"].applied_through == 3
    assert data_row(cqrs_app, "1")["version"] == 3


# -- records that are not new commands -------------------------------------------


def test_status_updates_and_deletes_of_commands_are_ignored(cqrs_app):
    recorder = Recorder()
    cqrs_app.register("order", handlers=[recorder])
    publish_versions(cqrs_app, "1", 2)
    feed(cqrs_app, stream_records(cqrs_app))
    before = read_model(cqrs_app)
    ddb, table = cqrs_app.clients.dynamodb, cqrs_app.entity("order").tables.command
    key = serialize({"pk": "ORDER#acme", "sk": "ORDER#1@2"})
    ddb.update_item(  # what MBC's step functions do to a command
        TableName=table, Key=key, UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "finish:FINISHED"}},
    )  # fmt: skip
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    ddb.put_item(TableName=table, Item=item)  # a no-op write: moto emits a MODIFY
    ddb.delete_item(TableName=table, Key=key)  # as TTL would

    new = [r for r in stream_records(cqrs_app) if r["eventName"] != "INSERT"]
    assert [r["eventName"] for r in new] == ["MODIFY", "MODIFY", "REMOVE"]
    report = cqrs_app.process_event({"Records": new})

    assert (report.ignored, report.applied, report.failed) == (3, 0, [])
    assert read_model(cqrs_app) == before
    assert recorder.seen() == [1, 2]


def test_a_command_created_by_update_item_is_projected_once(cqrs_app):
    """moto emits two INSERT records for it (keys only, then the full image)."""
    recorder = Recorder()
    cqrs_app.register("order", handlers=[recorder])
    publish(cqrs_app, "1", n=1)
    feed(cqrs_app, stream_records(cqrs_app))
    command = command_item(cqrs_app, "ORDER#1@1")
    command.update(sk="ORDER#1@2", version=2, attributes={"n": 2})
    values = {k: v for k, v in command.items() if k not in ("pk", "sk")}
    cqrs_app.clients.dynamodb.update_item(
        TableName=cqrs_app.entity("order").tables.command,
        Key=serialize({"pk": "ORDER#acme", "sk": "ORDER#1@2"}),
        UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(values))),
        ExpressionAttributeNames={f"#{i}": k for i, k in enumerate(values)},
        ExpressionAttributeValues=serialize({f":{i}": v for i, v in enumerate(values.values())}),
    )
    records = stream_records(cqrs_app)[1:]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT"]

    assert failures(feed(cqrs_app, records + records)) == []

    assert recorder.seen() == [1, 2]
    assert data_row(cqrs_app, "1")["attributes"] == {"n": 2}
    assert history_versions(cqrs_app, "1") == [1, 2]


# -- custom projections ---------------------------------------------------------


class NeedsApp(Recorder):
    """A handler class built by the app's injector."""

    @inject
    def __init__(self, app: Cqrs) -> None:
        super().__init__()
        self.app = app


def test_a_handler_class_is_built_by_the_injector_and_sees_each_version_in_order(cqrs_app, drain):
    cqrs_app.register("order", handlers=[NeedsApp])
    (handler,) = cqrs_app.entity("order").projector.handlers
    assert isinstance(handler, NeedsApp) and handler.app is cqrs_app

    publish_versions(cqrs_app, "1", 2)
    drain(cqrs_app)
    publish_versions(cqrs_app, "2", 1)
    publish(cqrs_app, "1", n=3)
    drain(cqrs_app)

    assert handler.seen("1") == [1, 2, 3]
    assert handler.seen("2") == [1]
    assert [c[0] for c in handler.calls] == ["up"] * 4


@pytest.mark.engine
def test_handlers_see_each_version_once_in_order_when_records_come_reversed(cqrs_app):
    recorder = Recorder()
    cqrs_app.register("order", handlers=[recorder])
    publish_versions(cqrs_app, "1", 4)
    records = stream_records(cqrs_app)

    for sk in ("ORDER#1@3", "ORDER#1@4", "ORDER#1@2", "ORDER#1@1", "ORDER#1@4"):
        assert failures(feed(cqrs_app, [record_for(records, sk)])) == []

    assert recorder.seen() == [1, 2, 3, 4]
    assert data_row(cqrs_app, "1")["version"] == 4


@pytest.mark.engine
def test_a_handler_failure_is_reported_and_blocks_only_its_entity(cqrs_app):
    first, failing = Recorder(), FailingRecorder(version=2)
    cqrs_app.register("order", handlers=[first, failing])
    publish_versions(cqrs_app, "1", 3)
    publish_versions(cqrs_app, "2", 2)
    publish_versions(cqrs_app, "1", 2, entity="cat")
    records = stream_records(cqrs_app)
    failed = record_for(records, "ORDER#1@2")

    response = feed(cqrs_app, records)

    assert failures(response) == [failed["dynamodb"]["SequenceNumber"]]
    assert data_row(cqrs_app, "1")["version"] == 1  # v3 not applied ahead of v2
    assert history_versions(cqrs_app, "1") == [1]
    assert data_row(cqrs_app, "2")["version"] == 2  # other entities still apply
    assert data_row(cqrs_app, "1", entity="cat")["version"] == 2
    assert first.seen("1", op="down") == [2]  # its up succeeded for the failed version
    assert failing.seen("1", op="down") == []

    # Lambda redelivers from the reported record.
    assert failures(feed(cqrs_app, records[records.index(failed) :])) == []

    assert data_row(cqrs_app, "1")["version"] == 3
    assert history_versions(cqrs_app, "1") == [1, 2, 3]
    assert first.seen("1") == [1, 2, 2, 3]  # the version seen twice carries its number
    assert failing.seen("1") == [1, 2, 2, 3]
    assert first.seen("2") == [1, 2]


class Amount(BaseModel):
    n: int


def test_a_command_that_does_not_fit_the_attributes_model_is_reported(cqrs_app):
    """Written by another service: the handlers cannot get a typed command; others go on."""
    recorder = Recorder()
    cqrs_app.register("order", attributes=Amount, handlers=[recorder])
    publish_versions(cqrs_app, "1", 1)
    bad = {**command_item(cqrs_app, "ORDER#1@1"), "sk": "ORDER#2@1", "attributes": {"n": "x"}}
    bad["id"] = "ORDER#acme#ORDER#2"
    cqrs_app.clients.dynamodb.put_item(
        TableName=cqrs_app.entity("order").tables.command, Item=serialize(bad)
    )
    records = stream_records(cqrs_app)

    assert failures(feed(cqrs_app, records)) == [records[1]["dynamodb"]["SequenceNumber"]]

    assert recorder.seen("1") == [1] and data_row(cqrs_app, "2") is None


def test_the_failure_is_reported_on_the_earliest_record_of_the_entity_in_the_batch(cqrs_app):
    """Records out of order in a batch: retrying from the reported one must cover v2."""
    cqrs_app.register("order", handlers=[FailingRecorder(version=2)])
    publish_versions(cqrs_app, "1", 3)
    records = stream_records(cqrs_app)
    batch = [record_for(records, f"ORDER#1@{v}") for v in (3, 1, 2)]

    reported = failures(feed(cqrs_app, batch))

    assert reported == [batch[0]["dynamodb"]["SequenceNumber"]]
    assert data_row(cqrs_app, "1")["version"] == 1
    assert failures(feed(cqrs_app, batch)) == []
    assert data_row(cqrs_app, "1")["version"] == 3


@pytest.mark.engine
def test_the_local_follower_checkpoints_before_a_failed_record_and_retries_from_it(cqrs_app, drain):
    failing = FailingRecorder(version=2, times=2)  # fails both polls of the first drain
    cqrs_app.register("order", handlers=[failing])
    publish_versions(cqrs_app, "1", 1)
    publish_versions(cqrs_app, "2", 1)
    publish(cqrs_app, "1", n=2)
    publish(cqrs_app, "1", n=3)
    publish(cqrs_app, "2", n=2)

    first = drain(cqrs_app)

    assert first.failed > 0
    assert data_row(cqrs_app, "1")["version"] == 1
    assert data_row(cqrs_app, "2")["version"] == 2
    second = drain(cqrs_app)
    assert second.records == 3 and second.failed == 0  # from ORDER#1@2 on, not from the start
    assert data_row(cqrs_app, "1")["version"] == 3
    assert failing.seen("1") == [1, 2, 2, 2, 3]
    assert drain(cqrs_app).records == 0


@pytest.mark.engine
def test_a_failed_record_blocks_the_rest_of_its_shard_until_it_is_retried(cqrs_app):
    """Small batches: the follower must not checkpoint later batches past a failed record."""
    failing = FailingRecorder(version=2)
    cqrs_app.register("order", handlers=[failing])
    publish_versions(cqrs_app, "1", 1)
    publish_versions(cqrs_app, "2", 1)
    publish(cqrs_app, "1", n=2)
    publish(cqrs_app, "1", n=3)
    publish(cqrs_app, "2", n=2)
    follower = cqrs_app.follower(batch_size=2)

    first = follower.poll()

    assert (first.batches, first.failed) == (2, 2)
    assert data_row(cqrs_app, "1")["version"] == 1
    assert data_row(cqrs_app, "2")["version"] == 1  # its version 2 waits behind ORDER#1@2
    assert follower.poll().records == 3
    assert (data_row(cqrs_app, "1")["version"], data_row(cqrs_app, "2")["version"]) == (3, 2)
    assert follower.poll().records == 0


@pytest.mark.engine
def test_a_concurrent_writer_between_read_and_commit_does_not_replay_handlers(
    cqrs_app, monkeypatch
):
    """The data row moves after the handlers ran: retry from there, without calling them again."""
    recorder = Recorder()
    orders = cqrs_app.register("order", handlers=[recorder])
    publish_versions(cqrs_app, "1", 3)
    records = stream_records(cqrs_app)
    feed(cqrs_app, records[:1])
    ddb = cqrs_app.clients.dynamodb
    real_update = ddb.update_item
    other_writer = type(orders.projector)(cqrs_app.clients.store, orders.tables)  # a publish_sync

    def update_item(**kwargs: Any) -> Any:
        monkeypatch.setattr(ddb, "update_item", real_update)
        other_writer.apply([CommandItem.from_item(command_item(cqrs_app, "ORDER#1@2"))])
        return real_update(**kwargs)

    monkeypatch.setattr(ddb, "update_item", update_item)

    assert failures(feed(cqrs_app, records[1:])) == []

    assert recorder.seen() == [1, 2, 3]
    assert data_row(cqrs_app, "1")["version"] == 3
    assert history_versions(cqrs_app, "1") == [1, 2, 3]


# -- DynamoDB failures ------------------------------------------------------------


def _data_update(app: Cqrs):
    table = app.entity("order").tables.data
    return lambda kw: kw.get("TableName") == table


@pytest.mark.engine
def test_a_throttled_data_write_is_reported_and_the_retry_completes(cqrs_app, monkeypatch):
    publish_versions(cqrs_app, "1", 2)
    publish_versions(cqrs_app, "2", 1)
    records = stream_records(cqrs_app)
    ddb = cqrs_app.clients.dynamodb
    fail_once(monkeypatch, ddb, "update_item", "UpdateItem", _data_update(cqrs_app))

    report = cqrs_app.process_event({"Records": records})

    assert len(report.failed) == 1 and report.errors
    assert report.failed[0] in {r["dynamodb"]["SequenceNumber"] for r in records}
    assert "throttled" in str(report.errors[0])
    pending = records[[r["dynamodb"]["SequenceNumber"] for r in records].index(report.failed[0]) :]
    assert failures(feed(cqrs_app, pending)) == []
    assert data_row(cqrs_app, "1")["version"] == 2
    assert data_row(cqrs_app, "2")["version"] == 1
    assert history_versions(cqrs_app, "1") == [1, 2]


def test_a_throttled_history_write_fails_the_batch_records_and_loses_nothing(cqrs_app, monkeypatch):
    publish_versions(cqrs_app, "1", 2)
    publish_versions(cqrs_app, "2", 1)
    records = stream_records(cqrs_app)
    fail_once(monkeypatch, cqrs_app.clients.dynamodb, "batch_write_item", "BatchWriteItem")

    response = feed(cqrs_app, records)

    assert failures(response) == [
        record_for(records, sk)["dynamodb"]["SequenceNumber"] for sk in ("ORDER#1@1", "ORDER#2@1")
    ]
    assert data_row(cqrs_app, "1") is None and data_row(cqrs_app, "2") is None
    assert failures(feed(cqrs_app, records)) == []
    assert data_row(cqrs_app, "1")["version"] == 2
    assert history_versions(cqrs_app, "1") == [1, 2]


def test_a_throttle_raised_inside_botocore_is_reported_too(cqrs_app):
    """Injected with a botocore event handler, below the client method."""
    publish_versions(cqrs_app, "1", 1)
    records = stream_records(cqrs_app)
    events = cqrs_app.clients.dynamodb.meta.events
    state = {"raised": False}

    def throttle(**_: Any) -> None:
        if not state["raised"]:
            state["raised"] = True
            raise throttling("UpdateItem")

    events.register("before-call.dynamodb.UpdateItem", throttle)
    try:
        assert failures(feed(cqrs_app, records)) == [records[0]["dynamodb"]["SequenceNumber"]]
    finally:
        events.unregister("before-call.dynamodb.UpdateItem", throttle)
    assert failures(feed(cqrs_app, records)) == []
    assert data_row(cqrs_app, "1")["version"] == 1


def test_a_throttled_data_version_read_is_reported_not_raised(cqrs_app, monkeypatch):
    """With handlers the projector reads data versions first (BatchGetItem)."""
    recorder = Recorder()
    cqrs_app.register("order", handlers=[recorder])
    publish_versions(cqrs_app, "1", 2)
    records = stream_records(cqrs_app)
    fail_once(monkeypatch, cqrs_app.clients.dynamodb, "batch_get_item", "BatchGetItem")

    assert failures(feed(cqrs_app, records)) == [records[0]["dynamodb"]["SequenceNumber"]]

    assert data_row(cqrs_app, "1") is None and recorder.calls == []
    assert failures(feed(cqrs_app, records)) == []
    assert recorder.seen() == [1, 2] and data_row(cqrs_app, "1")["version"] == 2


def test_a_throttled_gap_fill_is_reported_and_the_retry_completes(cqrs_app, monkeypatch):
    publish_versions(cqrs_app, "1", 3)
    records = stream_records(cqrs_app)
    last = record_for(records, "ORDER#1@3")
    fail_once(monkeypatch, cqrs_app.clients.dynamodb, "batch_get_item", "BatchGetItem")

    assert failures(feed(cqrs_app, [last])) == [last["dynamodb"]["SequenceNumber"]]
    assert data_row(cqrs_app, "1") is None
    assert failures(feed(cqrs_app, [last])) == []
    assert history_versions(cqrs_app, "1") == [1, 2, 3]


# -- request budget --------------------------------------------------------------

READS = ("GetItem", "BatchGetItem", "Query", "Scan")


def _projection_requests(counter: RequestCounter) -> dict[str, int]:
    return {
        op: n
        for op, n in counter.by_operation.items()
        if op in (*READS, "UpdateItem", "BatchWriteItem", "PutItem")
    }


def test_without_handlers_versions_in_order_cost_one_history_batch_and_one_update(cqrs_app):
    publish_versions(cqrs_app, "1", 1)
    publish_versions(cqrs_app, "2", 1)
    ddb = cqrs_app.clients.dynamodb
    with RequestCounter(ddb) as counter:
        feed(cqrs_app, stream_records(cqrs_app))
    assert _projection_requests(counter) == {"BatchWriteItem": 1, "UpdateItem": 2}

    publish(cqrs_app, "1", n=2)
    publish(cqrs_app, "1", n=3)
    records = stream_records(cqrs_app)[2:]
    with RequestCounter(ddb) as counter:
        feed(cqrs_app, records)
    assert _projection_requests(counter) == {"BatchWriteItem": 1, "UpdateItem": 1}
    assert data_row(cqrs_app, "1")["version"] == 3


def test_a_wrong_optimistic_guess_reads_the_row_only_when_the_engine_returns_none(cqrs_app):
    publish_versions(cqrs_app, "1", 3)
    records = stream_records(cqrs_app)
    ddb = cqrs_app.clients.dynamodb

    with RequestCounter(ddb) as counter:  # nothing applied yet: the row does not exist
        feed(cqrs_app, [record_for(records, "ORDER#1@2")])
    assert counter.by_operation["GetItem"] == 1  # no old row to return: one fallback read
    assert counter.by_operation["UpdateItem"] == 2
    assert data_row(cqrs_app, "1")["version"] == 2

    publish(cqrs_app, "1", n=4)
    publish(cqrs_app, "1", n=5)
    records = stream_records(cqrs_app)
    with RequestCounter(ddb) as counter:  # the row exists at 2: the failed write returns it
        feed(cqrs_app, [record_for(records, "ORDER#1@5")])
    assert counter.by_operation["GetItem"] == 0
    assert counter.by_operation["BatchGetItem"] == 1  # version 4 from the command table
    assert data_row(cqrs_app, "1")["version"] == 5


def test_with_handlers_data_versions_are_read_once_per_batch(cqrs_app):
    cqrs_app.register("order", handlers=[Recorder()])
    for code in "123":
        publish_versions(cqrs_app, code, 2)
    with RequestCounter(cqrs_app.clients.dynamodb) as counter:
        feed(cqrs_app, stream_records(cqrs_app))
    assert _projection_requests(counter) == {
        "BatchGetItem": 1,
        "BatchWriteItem": 1,
        "UpdateItem": 3,
    }


def test_publish_sync_and_the_stream_agree(cqrs_app, drain):
    """publish_sync projects through the same code; the stream then finds nothing to do."""
    orders = cqrs_app.entity("order")
    ctx = InvokeContext(tenant_code="acme", user_id="u1")
    orders.commands.publish_sync(
        CommandInput(pk="ORDER#acme", sk="ORDER#1", code="1", name="a", tenant_code="acme",
                     type="ORDER", attributes={"n": 1}), ctx)  # fmt: skip
    before = read_model(cqrs_app)
    drain(cqrs_app)
    assert read_model(cqrs_app) == before
    command = CommandItem.from_item(command_item(cqrs_app, "ORDER#1@1"))
    assert data_row(cqrs_app, "1") == command.data_row().to_item()
