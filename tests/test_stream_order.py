"""Out-of-order, duplicated and re-batched stream records give the in-order result.

One fixed scenario (two entity types, two tenants, several versions, a status
update) is published once per test on ``cqrs_app`` (a fresh moto); its real stream
records are then delivered shuffled across entities, reversed within one, duplicated, split
into batches and redelivered, each delivery to a fresh (emptied) read model. Data
and history must equal what in-order delivery produces, and custom projections
must still see every version once, in order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cqrs import SYSTEM, Command, CommandInput, Cqrs, InvokeContext
from cqrs.core.errors import ThrottledError
from cqrs.core.keys import remove_version
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize
from cqrs.sync.follower import MemoryCheckpoints, StreamFollower
from cqrs.testing import stream_records

#: (entity, tenant, code) → number of versions published.
SCENARIO = {
    ("order", "acme", "1"): 4,
    ("order", "beta", "1"): 3,
    ("cat", "acme", "1"): 2,
}


class Recorder:
    """Records the versions a custom projection sees, per entity."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[int]] = defaultdict(list)

    def up(self, command: Command[Any]) -> None:
        self.seen[command.pk, remove_version(command.sk)].append(command.version)

    def down(self, command: Command[Any]) -> None:
        raise AssertionError("nothing fails here")


def publish_scenario(app: Cqrs) -> list[dict]:
    """Publish :data:`SCENARIO` (versions interleaved across entities); return its records."""
    for round_ in range(1, max(SCENARIO.values()) + 1):
        for (entity, tenant, code), versions in SCENARIO.items():
            if round_ <= versions:
                kind = entity.upper()
                app.entity(entity).commands.publish_async(
                    CommandInput(
                        pk=f"{kind}#{tenant}", sk=f"{kind}#{code}", code=code, name=code,
                        tenant_code=tenant, type=kind, version=round_ - 1,
                        attributes={"round": round_},
                    ),
                    InvokeContext(tenant_code=tenant, user_id=f"user-{round_}"),
                )  # fmt: skip
    app.clients.dynamodb.update_item(  # a MODIFY in the middle of the stream, to be ignored
        TableName=app.entity("order").tables.command,
        Key=serialize({"pk": "ORDER#acme", "sk": "ORDER#1@2"}),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "sync_data:FINISHED"}},
    )
    records = stream_records(app)
    assert len(records) == sum(SCENARIO.values()) + 1
    return records


def read_model(app: Cqrs) -> dict[str, Any]:
    out = {}
    for entity in app.schema.entities:
        tables = app.schema.entity_tables(entity)
        for kind, table in (("data", tables.data), ("history", tables.history)):
            items = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
            out[f"{entity}-{kind}"] = sorted(
                (deserialize(i) for i in items), key=lambda i: (i["pk"], i["sk"])
            )
    return out


def clear_read_model(app: Cqrs, model: dict[str, Any]) -> None:
    """Delete the items of ``model`` (a :func:`read_model`): a fresh read model."""
    for name, items in model.items():
        table = f"{app.settings.table_prefix}{name}"
        keys = [
            {"DeleteRequest": {"Key": serialize({"pk": i["pk"], "sk": i["sk"]})}} for i in items
        ]
        for start in range(0, len(keys), 25):
            app.clients.dynamodb.batch_write_item(RequestItems={table: keys[start : start + 25]})


def deliver(app: Cqrs, batches: list[list[dict]]) -> None:
    for batch in batches:
        assert app.handle_event({"Records": batch}) == {"batchItemFailures": []}


def expected_versions() -> dict[tuple[str, str], list[int]]:
    return {
        (f"{e.upper()}#{t}", f"{e.upper()}#{c}"): list(range(1, n + 1))
        for (e, t, c), n in SCENARIO.items()
    }


def check_in_order_result(model: dict[str, Any]) -> None:
    """The reference itself: data at the last version, history holds every version."""
    data = {(i["pk"], i["sk"]): i for k in ("order-data", "cat-data") for i in model[k]}
    history = [(i["pk"], i["sk"]) for k in ("order-history", "cat-history") for i in model[k]]
    for key, versions in expected_versions().items():
        assert data[key]["version"] == versions[-1]
        assert data[key]["attributes"] == {"round": versions[-1]}
        assert (
            data[key]["createdBy"] == "user-1" and data[key]["updatedBy"] == f"user-{versions[-1]}"
        )
        assert sorted(sk for pk, sk in history if (pk, sk.rpartition("@")[0]) == key) == sorted(
            f"{key[1]}@{v}" for v in versions
        )


# -- delivery plans -----------------------------------------------------------------


@st.composite
def deliveries(draw: st.DrawFn, records: list[dict]) -> list[list[dict]]:
    """Shuffle, duplicate some records, cut into batches, redeliver some whole batches."""
    sequence = list(draw(st.permutations(records)))
    for extra in draw(st.lists(st.sampled_from(records), max_size=4)):
        sequence.insert(draw(st.integers(0, len(sequence))), extra)
    cuts = sorted(draw(st.sets(st.integers(1, len(sequence) - 1), max_size=4)))
    bounds = [0, *cuts, len(sequence)]
    batches = [sequence[a:b] for a, b in pairwise(bounds)]
    for i in draw(st.lists(st.integers(0, len(batches) - 1), max_size=2)):
        batches.insert(draw(st.integers(i + 1, len(batches))), batches[i])
    return batches


def entity_of(record: dict) -> tuple[str, str]:
    keys = record["dynamodb"]["Keys"]
    return keys["pk"]["S"], remove_version(keys["sk"]["S"])


def reversed_within(records: list[dict], pk: str, base_sk: str) -> list[list[dict]]:
    """One record per batch, the versions of one entity in reverse order, others in place."""
    mine = [r for r in records if entity_of(r) == (pk, base_sk)]
    slots = iter(reversed(mine))
    return [[next(slots) if r in mine else r] for r in records]


PLANS = {
    "reversed": lambda rs: [rs[::-1]],
    "reversed, one per batch": lambda rs: [[r] for r in rs[::-1]],
    "one entity reversed": lambda rs: reversed_within(rs, "ORDER#acme", "ORDER#1"),
    "everything twice": lambda rs: [rs, rs],
    "each record twice": lambda rs: [rs + rs],
    "by entity type, cats first": lambda rs: sorted(
        ([r] for r in rs), key=lambda b: "cat-command" not in b[0]["eventSourceARN"]
    ),
}


# -- tests ------------------------------------------------------------------------


@dataclass
class World:
    """The scenario published once; two apps over the same tables, one with handlers."""

    plain: Cqrs
    handled: Cqrs
    recorder: Recorder
    records: list[dict]
    reference: dict[str, Any]

    def run(self, batches: list[list[dict]], *, with_handler: bool) -> dict[str, Any]:
        """Deliver ``batches`` to an empty read model; return the result and empty it again."""
        self.recorder.seen.clear()
        deliver(self.handled if with_handler else self.plain, batches)
        model = read_model(self.plain)
        clear_read_model(self.plain, model)
        return model


def world(app: Cqrs) -> World:
    """Publish the scenario on ``app``; deliver it in order once for the reference."""
    recorder = Recorder()
    handled = Cqrs(app.settings, clients=app.clients)
    handled.register("order", handlers=[recorder])
    handled.register("cat", handlers=[recorder])
    records = publish_scenario(app)
    deliver(app, [records])
    reference = read_model(app)
    check_in_order_result(reference)
    clear_read_model(app, reference)
    return World(app, handled, recorder, records, reference)


@pytest.mark.engine
@pytest.mark.parametrize("with_handler", [False, True], ids=["optimistic", "with handler"])
def test_named_delivery_plans_give_the_in_order_result(cqrs_app: Cqrs, with_handler: bool) -> None:
    w = world(cqrs_app)
    for name, plan in PLANS.items():
        assert w.run(plan(w.records), with_handler=with_handler) == w.reference, name
        if with_handler:
            assert dict(w.recorder.seen) == expected_versions(), name


@pytest.mark.engine
def test_any_delivery_gives_the_in_order_result(cqrs_app: Cqrs) -> None:
    """Each example delivers to an emptied read model (the command log is the fixed input)."""
    w = world(cqrs_app)

    @settings(
        max_examples=25,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking is slow here
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(batches=deliveries(w.records), with_handler=st.booleans())
    def check(batches: list[list[dict]], with_handler: bool) -> None:
        assert w.run(batches, with_handler=with_handler) == w.reference
        if with_handler:
            assert dict(w.recorder.seen) == expected_versions()

    check()


# -- the local follower: shard order, retry point, gone shards, classified errors ---------

ARN = "arn:aws:dynamodb:ap-northeast-1:123456789012:table/t-order-command/stream/2026-01-01"


class FakeStreams:
    """Stands in for :class:`~cqrs.store.streams.StreamsGateway`: one stream, fixed shards."""

    def __init__(
        self,
        shards: dict[str, str | None],
        sequences: dict[str, list[str]],
        gone: frozenset[str] = frozenset(),
    ) -> None:
        self.listed = [
            {"ShardId": shard, **({"ParentShardId": parent} if parent else {})}
            for shard, parent in shards.items()
        ]
        self.sequences = sequences
        self.gone = gone

    def stream_arn(self, table: str) -> str | None:
        return ARN

    def shards(self, arn: str) -> list[dict[str, str]]:
        return self.listed

    def iterator(self, arn: str, shard: str, after: str | None) -> str | None:
        return None if shard in self.gone else f"{shard}|{after or ''}"

    def records(self, arn: str, iterator: str, limit: int) -> Iterator[list[dict[str, Any]]]:
        shard, _, after = iterator.partition("|")
        sequences = self.sequences[shard]
        rest = sequences[sequences.index(after) + 1 :] if after else sequences
        for start in range(0, len(rest), limit):
            yield [
                {"eventName": "INSERT", "dynamodb": {"SequenceNumber": seq}}
                for seq in rest[start : start + limit]
            ]


class Handler:
    """Records every batch it gets; fails the records in ``fail`` once each."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail or set()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        batch = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.batches.append(batch)
        failed = [seq for seq in batch if seq in self.fail]
        self.fail -= set(failed)
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}


def follower(streams: FakeStreams, handler: Handler, batch_size: int = 100) -> StreamFollower:
    return StreamFollower(streams, ["t-order-command"], handler, batch_size=batch_size)  # type: ignore[arg-type]


def test_the_follower_reads_parent_shards_before_their_children() -> None:
    streams = FakeStreams(
        {"child": "parent", "grandchild": "child", "parent": None, "orphan": "trimmed"},
        {"child": ["3"], "grandchild": ["4"], "parent": ["1"], "orphan": ["2"]},
    )
    handler = Handler()

    report = follower(streams, handler).poll()

    assert handler.batches == [["1"], ["2"], ["3"], ["4"]]
    assert (report.records, report.batches, report.failed) == (4, 4, 0)


def test_a_failed_record_is_redelivered_from_itself_on_the_next_poll() -> None:
    streams = FakeStreams({"s": None}, {"s": ["1", "2", "3", "4", "5"]})
    handler = Handler(fail={"4"})
    checkpoints = MemoryCheckpoints()
    f = StreamFollower(streams, ["t"], handler, checkpoints=checkpoints, batch_size=2)  # type: ignore[arg-type]

    first = f.poll()

    assert handler.batches == [["1", "2"], ["3", "4"]]  # the shard stops at the failing batch
    assert (first.records, first.failed) == (4, 1)
    assert checkpoints.get(ARN, "s") == "3"  # just before the first failure
    handler.batches.clear()
    assert f.poll().failed == 0
    assert handler.batches == [["4", "5"]]
    assert checkpoints.get(ARN, "s") == "5"
    assert f.poll().records == 0


def test_a_shard_that_is_gone_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    streams = FakeStreams({"old": None, "new": None}, {"new": ["7"]}, gone=frozenset({"old"}))
    handler = Handler()

    with caplog.at_level(logging.WARNING, "cqrs.sync.follower"):
        report = follower(streams, handler).poll()

    assert handler.batches == [["7"]] and report.records == 1
    assert f"shard old of {ARN} is gone" in caplog.text


@pytest.mark.parametrize("code", ["LimitExceededException", "ThrottlingException"])
def test_a_throttled_get_records_is_a_retryable_throttled_error(cqrs_app: Cqrs, code: str) -> None:
    cqrs_app.entity("order").commands.publish_async(
        CommandInput(
            pk="ORDER#acme", sk="ORDER#1", code="1", name="1", tenant_code="acme", type="ORDER"
        ),
        InvokeContext(tenant_code="acme"),
    )
    follow = cqrs_app.follower(checkpoints=MemoryCheckpoints())
    events = cqrs_app.clients.streams.meta.events

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "GetRecords")

    events.register("before-call.dynamodb-streams.GetRecords", throttle)
    try:
        with pytest.raises(ThrottledError) as caught:
            follow.poll()
    finally:
        events.unregister("before-call.dynamodb-streams.GetRecords", throttle)

    assert caught.value.retryable and isinstance(caught.value.cause, ClientError)
    assert follow.poll().records == 1  # nothing was checkpointed: the retry reads it all
    row = cqrs_app.entity("order").data.get("ORDER#acme", "ORDER#1", context=SYSTEM)
    assert row is not None and row.version == 1
