"""The write path: stored shapes, version rules, partial updates, audit, tenants, typing.

Stored items are checked raw, with boto3 on the physical tables, so the tests
prove what MBC-compatible readers would see.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

import cqrs
from cqrs import (
    SYSTEM,
    CommandInput,
    CommandPartialInput,
    InterfaceError,
    InvalidAttributesError,
    InvokeContext,
    ItemTooLargeError,
    NotFoundError,
    TenantMismatchError,
    VersionConflictError,
)
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize
from cqrs.testing import RequestCounter

TENANT = "acme"
PK = f"ORDER#{TENANT}"
ALICE = InvokeContext(tenant_code=TENANT, user_id="alice", source_ip="10.0.0.1", request_id="r1")
BOB = InvokeContext(tenant_code=TENANT, user_id="bob", source_ip="10.0.0.2", request_id="r2")

COMMAND_FIELDS = {
    "pk", "sk", "id", "code", "name", "version", "tenantCode", "type", "isDeleted", "seq",
    "ttl", "attributes", "source", "requestId", "createdAt", "createdBy", "createdIp",
    "updatedAt", "updatedBy", "updatedIp",
}  # fmt: skip
DATA_FIELDS = (COMMAND_FIELDS - {"source"}) | {"cpk", "csk"}


def sk(code: str) -> str:
    return f"ORDER#{code}"


def order_input(code: str = "1", version: int = 0, **kw: Any) -> CommandInput:
    fields: dict[str, Any] = {
        "pk": PK,
        "sk": sk(code),
        "code": code,
        "name": f"order {code}",
        "tenant_code": TENANT,
        "type": "ORDER",
        "version": version,
        "attributes": {"total": 10},
    }
    fields.update(kw)
    return CommandInput(**fields)


def order_patch(code: str = "1", /, **kw: Any) -> CommandPartialInput:
    return CommandPartialInput(pk=PK, sk=sk(code), **kw)


def raw(app: cqrs.Cqrs, kind: str, sort_key: str, pk: str = PK) -> dict[str, Any] | None:
    """One item of the order ``kind`` table (command/data/history), via plain boto3."""
    table = getattr(app.entity("order").tables, kind)
    resp = app.clients.dynamodb.get_item(
        TableName=table, Key=serialize({"pk": pk, "sk": sort_key}), ConsistentRead=True
    )
    return deserialize(resp["Item"]) if "Item" in resp else None


def stored_sks(app: cqrs.Cqrs, kind: str = "command") -> list[str]:
    """Sort keys of every item in the order ``kind`` table."""
    table = getattr(app.entity("order").tables, kind)
    resp = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)
    return sorted(deserialize(i)["sk"] for i in resp["Items"])


def publish_versions(app: cqrs.Cqrs, n: int, code: str = "1") -> None:
    """Versions 1..n of one order, each with a different name (async: data not synced)."""
    commands = app.entity("order").commands
    for v in range(n):
        commands.publish_async(order_input(code, version=v, name=f"n{v + 1}"), ALICE)


def error_name(call: Callable[[], object]) -> str | None:
    """The class name of the exception ``call`` raises, or ``None``."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return None


def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the write path's clock tick one second per call; returns the times handed out."""
    ticks = (f"2024-05-01T00:00:{s:02d}.000+00:00" for s in itertools.count())
    handed: list[str] = []

    def now() -> str:
        handed.append(next(ticks))
        return handed[-1]

    monkeypatch.setattr("cqrs.write.prepare.now_iso", now)
    return handed


# -- stored shapes ---------------------------------------------------------------------


def test_create_stores_camel_case_command_at_version_1(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    cmd = order.commands.publish_async(
        order_input("1", seq=3, ttl=2_000_000_000, is_deleted=False, source="test"), ALICE
    )
    assert cmd is not None and cmd.version == 1 and cmd.sk == "ORDER#1@1"

    item = raw(cqrs_app, "command", "ORDER#1@1")
    assert item is not None
    assert set(item) == COMMAND_FIELDS
    assert item == item | {
        "pk": PK,
        "sk": "ORDER#1@1",
        "id": "ORDER#acme#ORDER#1",
        "code": "1",
        "name": "order 1",
        "version": 1,
        "tenantCode": TENANT,
        "type": "ORDER",
        "isDeleted": False,
        "seq": 3,
        "ttl": 2_000_000_000,
        "attributes": {"total": 10},
        "source": "test",
        "requestId": "r1",
        "createdBy": "alice",
        "createdIp": "10.0.0.1",
        "updatedBy": "alice",
        "updatedIp": "10.0.0.1",
    }
    for field in ("createdAt", "updatedAt"):
        stamp = datetime.fromisoformat(item[field])
        assert stamp.utcoffset() is not None, f"{field} {item[field]!r} has no offset"
    assert item["createdAt"] == item["updatedAt"]
    # async: the read model is untouched until the synchronizer runs
    assert stored_sks(cqrs_app, "data") == [] and stored_sks(cqrs_app, "history") == []


def test_wire_types_are_plain_dynamodb_types(cqrs_app: cqrs.Cqrs) -> None:
    cqrs_app.entity("order").commands.publish_async(
        order_input("1", attributes={"price": 1.5, "tags": ["a"], "n": 2}), ALICE
    )
    wire = cqrs_app.clients.dynamodb.get_item(
        TableName=cqrs_app.entity("order").tables.command,
        Key=serialize({"pk": PK, "sk": "ORDER#1@1"}),
    )["Item"]
    assert wire["version"] == {"N": "1"}
    assert wire["createdAt"].keys() == {"S"}
    assert wire["attributes"] == {
        "M": {"price": {"N": "1.5"}, "tags": {"L": [{"S": "a"}]}, "n": {"N": "2"}}
    }
    assert "isDeleted" not in wire and "seq" not in wire  # None is not stored


def test_publish_sync_writes_data_and_history_in_the_same_call(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    order.commands.publish_sync(order_input("1", seq=1, ttl=2_000_000_000, source="s"), ALICE)

    data = raw(cqrs_app, "data", "ORDER#1")
    history = raw(cqrs_app, "history", "ORDER#1@1")
    command = raw(cqrs_app, "command", "ORDER#1@1")
    assert data is not None and history is not None and command is not None
    assert set(data) == DATA_FIELDS - {"isDeleted"}
    assert data["cpk"] == PK and data["csk"] == "ORDER#1@1"
    assert {k: data[k] for k in COMMAND_FIELDS & set(data) - {"sk"}} == {
        k: command[k] for k in COMMAND_FIELDS & set(data) - {"sk"}
    }
    assert history == data | {"sk": "ORDER#1@1"}

    record = order.data.get(PK, sk("1"), context=SYSTEM)
    assert record is not None and record.version == 1 and record.attributes == {"total": 10}


def test_publish_sync_update_moves_data_and_adds_history(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_sync(order_input("1"), ALICE)
    commands.publish_sync(order_input("1", version=1, name="renamed"), BOB)
    data = raw(cqrs_app, "data", "ORDER#1")
    assert data is not None
    assert (data["version"], data["name"], data["csk"]) == (2, "renamed", "ORDER#1@2")
    assert stored_sks(cqrs_app, "history") == ["ORDER#1@1", "ORDER#1@2"]
    assert raw(cqrs_app, "history", "ORDER#1@1")["name"] == "order 1"  # type: ignore[index]


def test_publish_sync_catches_up_with_unsynced_versions(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    publish_versions(cqrs_app, 2)  # async, never synced
    commands.publish_sync(order_input("1", version=2, name="v3"), BOB)
    data = raw(cqrs_app, "data", "ORDER#1")
    assert data is not None and (data["version"], data["name"]) == (3, "v3")
    assert stored_sks(cqrs_app, "history") == ["ORDER#1@1", "ORDER#1@2", "ORDER#1@3"]


# -- version rules -----------------------------------------------------------------


def test_explicit_base_version_writes_next_version(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1"), ALICE)
    cmd = commands.publish_async(order_input("1", version=1, name="v2"), ALICE)
    assert cmd is not None and (cmd.version, cmd.sk, cmd.name) == (2, "ORDER#1@2", "v2")
    cmd = commands.publish_async(order_input("1", version=2, name="v3"), ALICE)
    assert cmd is not None and cmd.version == 3
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2", "ORDER#1@3"]
    assert raw(cqrs_app, "command", "ORDER#1@1")["name"] == "order 1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("base", "expected_actual"),
    [
        (0, 2),  # create again
        (1, 2),  # stale base
        (5, 2),  # base that does not exist yet
    ],
)
def test_stale_or_unknown_base_conflicts_and_writes_nothing(
    cqrs_app: cqrs.Cqrs, base: int, expected_actual: int
) -> None:
    publish_versions(cqrs_app, 2)
    with pytest.raises(VersionConflictError) as info:
        cqrs_app.entity("order").commands.publish_async(
            order_input("1", version=base, name="late"), ALICE
        )
    err = info.value
    assert (err.pk, err.sk, err.expected, err.actual) == (PK, "ORDER#1", base, expected_actual)
    assert isinstance(err, cqrs.IntegrityError)
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2"]


def test_base_version_on_missing_entity_conflicts(cqrs_app: cqrs.Cqrs) -> None:
    with pytest.raises(VersionConflictError) as info:
        cqrs_app.entity("order").commands.publish_async(order_input("1", version=3), ALICE)
    assert (info.value.expected, info.value.actual) == (3, None)
    assert stored_sks(cqrs_app) == []


def test_latest_creates_then_appends(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    first = commands.publish_async(order_input("1", version=-1), ALICE)
    second = commands.publish_async(order_input("1", version=-1, name="v2"), ALICE)
    assert first is not None and second is not None
    assert (first.version, second.version) == (1, 2)
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2"]


@pytest.mark.parametrize("version", [-2, -10])
def test_version_below_latest_is_an_interface_error(cqrs_app: cqrs.Cqrs, version: int) -> None:
    commands = cqrs_app.entity("order").commands
    with pytest.raises(InterfaceError):
        commands.publish_async(order_input("1", version=version), ALICE)
    commands.publish_async(order_input("1"), ALICE)
    with pytest.raises(InterfaceError):
        commands.publish_partial_update_async(order_patch("1", version=version, name="x"), ALICE)
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


def test_two_writers_same_base_one_wins_sequentially(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1"), ALICE)
    winner = commands.publish_async(order_input("1", version=1, name="alice's"), ALICE)
    with pytest.raises(VersionConflictError) as info:
        commands.publish_async(order_input("1", version=1, name="bob's"), BOB)
    assert winner is not None and winner.version == 2
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert raw(cqrs_app, "command", "ORDER#1@2")["name"] == "alice's"  # type: ignore[index]
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2"]


@pytest.mark.engine
@pytest.mark.parametrize("base", [0, 1])
def test_concurrent_writers_same_base_exactly_one_wins(server_app: cqrs.Cqrs, base: int) -> None:
    writers = 8
    commands = server_app.entity("order").commands
    publish_versions(server_app, base)

    def attempt(i: int) -> int | VersionConflictError:
        try:
            cmd = commands.publish_async(order_input("1", version=base, name=f"w{i}"), ALICE)
        except VersionConflictError as exc:
            return exc
        assert cmd is not None
        return i

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(attempt, range(writers)))

    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, VersionConflictError)]
    assert len(winners) == 1 and len(losers) == writers - 1
    assert all(e.expected == base and e.actual == base + 1 for e in losers)
    assert stored_sks(server_app) == [f"ORDER#1@{v}" for v in range(1, base + 2)]
    stored = raw(server_app, "command", f"ORDER#1@{base + 1}")
    assert stored is not None and stored["name"] == f"w{winners[0]}"


# -- finding the latest version ------------------------------------------------------


@pytest.mark.parametrize(
    ("versions", "synced", "batch_gets"),
    [
        (1, 0, 1),
        (10, 0, 2),  # a full window: the next one proves there is no @11
        (13, 0, 2),  # no data row at all: windows @1-10, @11-20
        (25, 0, 3),
        (25, 25, 1),  # data up to date: one window from @25
        (15, 12, 1),  # data lagging: @12-21
        (24, 12, 2),  # data lagging across a window: @12-21, @22-31
    ],
)
def test_latest_reads_windows_from_the_data_version(
    cqrs_app: cqrs.Cqrs, drain: Any, versions: int, synced: int, batch_gets: int
) -> None:
    commands = cqrs_app.entity("order").commands
    publish_versions(cqrs_app, synced)
    if synced:
        drain(cqrs_app)
    publish_versions_from(cqrs_app, synced, versions)
    data = raw(cqrs_app, "data", "ORDER#1")
    assert (data or {}).get("version", 0) == synced  # the read model lags behind

    with RequestCounter(cqrs_app.clients.dynamodb) as counter:
        latest = commands.get(PK, sk("1"), context=SYSTEM)
    assert latest is not None and (latest.version, latest.name) == (versions, f"n{versions}")
    assert counter.by_operation == {"GetItem": 1, "BatchGetItem": batch_gets}

    cmd = commands.publish_async(order_input("1", version=-1, name="next"), ALICE)
    assert cmd is not None and cmd.version == versions + 1
    assert commands.latest_version(PK, sk("1"), context=SYSTEM) == versions + 1


def publish_versions_from(app: cqrs.Cqrs, start: int, end: int, code: str = "1") -> None:
    commands = app.entity("order").commands
    for v in range(start, end):
        commands.publish_async(order_input(code, version=v, name=f"n{v + 1}"), ALICE)


def test_latest_of_missing_entity(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    assert commands.get(PK, sk("1"), context=SYSTEM) is None
    assert commands.latest_version(PK, sk("1"), context=SYSTEM) == 0


def test_get_specific_version(cqrs_app: cqrs.Cqrs) -> None:
    publish_versions(cqrs_app, 3)
    commands = cqrs_app.entity("order").commands
    assert commands.get(PK, sk("1"), version=2, context=SYSTEM).name == "n2"  # type: ignore[union-attr]
    assert commands.get(PK, "ORDER#1@1", context=SYSTEM).name == "n1"  # type: ignore[union-attr]
    assert commands.get(PK, sk("1"), version=7, context=SYSTEM) is None


# -- not dirty ---------------------------------------------------------------------


@pytest.mark.parametrize("version", [-1, 1])
def test_unchanged_full_command_writes_nothing(cqrs_app: cqrs.Cqrs, version: int) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1", attributes={"a": {"b": [1, 2]}, "f": 0.5}), ALICE)
    again = order_input("1", version=version, attributes={"f": 0.5, "a": {"b": [1, 2]}})
    assert commands.publish_async(again, BOB) is None
    assert commands.publish_sync(again, BOB) is None
    # source and audit fields are not compared (MBC's list)
    assert commands.publish_async(again.model_copy(update={"source": "other"}), BOB) is None
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]
    assert stored_sks(cqrs_app, "data") == []  # the not-dirty publish_sync projected nothing


DIRTY_CHANGES = {
    "name": {"name": "other"},
    "isDeleted": {"is_deleted": True},
    "seq": {"seq": 1},
    "ttl": {"ttl": 5},
    "attributes value": {"attributes": {"total": 11}},
    "attributes key": {"attributes": {"total": 10, "extra": None}},
}

#: Changes to compared fields that would break the key rules: refused, not written.
KEY_BREAKING_CHANGES = {
    "code": {"code": "2"},
    "type": {"type": "ORDER2"},
    "id": {"id": "custom-id"},
}


def test_any_compared_field_makes_it_dirty(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    versions = {}
    for n, (case, change) in enumerate(DIRTY_CHANGES.items()):
        commands.publish_async(order_input(str(n)), ALICE)
        cmd = commands.publish_async(
            order_input(str(n), version=1).model_copy(update=change), ALICE
        )
        versions[case] = cmd and cmd.version
    assert versions == dict.fromkeys(DIRTY_CHANGES, 2)


def test_changes_that_break_the_key_rules_are_refused(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1"), ALICE)
    outcomes = {
        case: error_name(
            lambda: commands.publish_async(order_input("1", version=1).model_copy(update=c), ALICE)  # noqa: B023
        )
        for case, c in KEY_BREAKING_CHANGES.items()
    }
    assert outcomes == dict.fromkeys(KEY_BREAKING_CHANGES, "InvalidKeyError")
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


def test_unchanged_partial_update_writes_nothing(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1", attributes={"customer": {"name": "A"}}), ALICE)
    same = order_patch("1", name="order 1", attributes={"customer": {"name": "A"}})
    assert commands.publish_partial_update_async(same, BOB) is None
    assert commands.publish_partial_update_async(order_patch("1"), BOB) is None
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


# -- partial updates ---------------------------------------------------------------


def test_partial_update_deep_merges_and_stores_full_state(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    base = {"customer": {"name": "A", "tier": "gold"}, "lines": [1, 2], "total": 10}
    commands.publish_async(order_input("1", seq=4, attributes=base), ALICE)
    patch = {"customer": {"tier": "silver", "vip": True}, "lines": [3], "note": "x"}
    cmd = commands.publish_partial_update_async(order_patch("1", attributes=patch), BOB)
    assert cmd is not None and cmd.version == 2

    stored = raw(cqrs_app, "command", "ORDER#1@2")
    assert stored is not None
    assert stored["attributes"] == {
        "customer": {"name": "A", "tier": "silver", "vip": True},
        "lines": [3],
        "total": 10,
        "note": "x",
    }
    # every stored command carries the full state, not the patch
    assert (stored["code"], stored["name"], stored["seq"], stored["type"]) == (
        "1", "order 1", 4, "ORDER",
    )  # fmt: skip
    assert set(stored) == COMMAND_FIELDS - {"isDeleted", "ttl", "source"}
    # the base is untouched
    assert raw(cqrs_app, "command", "ORDER#1@1")["attributes"] == base  # type: ignore[index]


def test_partial_update_replaces_top_level_fields(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1"), ALICE)
    cmd = commands.publish_partial_update_async(order_patch("1", name="renamed", seq=9), ALICE)
    assert cmd is not None and (cmd.name, cmd.seq, cmd.attributes) == ("renamed", 9, {"total": 10})


def test_partial_none_keeps_required_fields_and_clears_optional_ones(
    cqrs_app: cqrs.Cqrs, drain: Any
) -> None:
    order = cqrs_app.entity("order")
    order.commands.publish_async(order_input("1", seq=5), ALICE)
    unchanged = order_patch("1", code=None, name=None, type=None)
    assert order.commands.publish_partial_update_async(unchanged, ALICE) is None
    cmd = order.commands.publish_partial_update_async(order_patch("1", name=None, seq=None), ALICE)
    assert cmd is not None and (cmd.version, cmd.name, cmd.seq) == (2, "order 1", None)
    stored = raw(cqrs_app, "command", "ORDER#1@2")
    assert stored is not None and stored["name"] == "order 1" and "seq" not in stored
    drain(cqrs_app)
    data = order.data.get(PK, sk("1"), context=SYSTEM)
    assert data is not None and (data.version, data.name, data.seq) == (2, "order 1", None)


@pytest.mark.parametrize("version", [0, -1])
def test_partial_update_0_and_minus_1_mean_latest(cqrs_app: cqrs.Cqrs, version: int) -> None:
    publish_versions(cqrs_app, 12)
    cmd = cqrs_app.entity("order").commands.publish_partial_update_async(
        order_patch("1", version=version, seq=1), ALICE
    )
    assert cmd is not None and (cmd.version, cmd.name) == (13, "n12")


def test_partial_update_on_explicit_base(cqrs_app: cqrs.Cqrs) -> None:
    publish_versions(cqrs_app, 2)
    commands = cqrs_app.entity("order").commands
    cmd = commands.publish_partial_update_async(order_patch("1", version=2, seq=1), ALICE)
    assert cmd is not None and cmd.version == 3
    with pytest.raises(VersionConflictError) as info:
        commands.publish_partial_update_async(order_patch("1", version=2, seq=2), ALICE)
    assert (info.value.expected, info.value.actual) == (2, 3)
    with pytest.raises(VersionConflictError) as info:
        commands.publish_partial_update_async(order_patch("1", version=9, seq=2), ALICE)
    assert (info.value.expected, info.value.actual) == (9, 3)
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2", "ORDER#1@3"]


@pytest.mark.parametrize("version", [-1, 0, 3])
def test_partial_update_of_missing_entity_is_not_found(cqrs_app: cqrs.Cqrs, version: int) -> None:
    with pytest.raises(NotFoundError):
        cqrs_app.entity("order").commands.publish_partial_update_async(
            order_patch("1", version=version, name="x"), ALICE
        )
    assert stored_sks(cqrs_app) == []


def test_partial_update_sync_projects(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    order.commands.publish_sync(order_input("1"), ALICE)
    order.commands.publish_partial_update_sync(order_patch("1", attributes={"total": 12}), BOB)
    data = order.data.get(PK, sk("1"), context=SYSTEM)
    assert data is not None and (data.version, data.attributes) == (2, {"total": 12})


# -- audit fields ------------------------------------------------------------------


def test_audit_fields_keep_creation_and_move_update(
    cqrs_app: cqrs.Cqrs, drain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = fake_clock(monkeypatch)
    order = cqrs_app.entity("order")
    order.commands.publish_async(order_input("1"), ALICE)
    order.commands.publish_async(order_input("1", version=1, name="v2"), BOB)
    carol = InvokeContext(tenant_code=TENANT, user_id="carol")
    order.commands.publish_partial_update_async(order_patch("1", seq=1), carol)

    v1, v2, v3 = (raw(cqrs_app, "command", f"ORDER#1@{v}") for v in (1, 2, 3))
    assert v1 is not None and v2 is not None and v3 is not None
    created = {"createdAt": times[0], "createdBy": "alice", "createdIp": "10.0.0.1"}
    assert v2 == v2 | created and v3 == v3 | created
    assert (v2["updatedAt"], v2["updatedBy"], v2["updatedIp"], v2["requestId"]) == (
        times[1], "bob", "10.0.0.2", "r2",
    )  # fmt: skip
    assert (v3["updatedAt"], v3["updatedBy"]) == (times[2], "carol")
    assert "updatedIp" not in v3 and "requestId" not in v3  # carol's context has neither

    drain(cqrs_app)
    data = order.data.get(PK, sk("1"), context=SYSTEM)
    assert data is not None
    assert (data.created_by, data.created_ip, data.updated_by) == ("alice", "10.0.0.1", "carol")
    assert data.created_at == datetime.fromisoformat(times[0])
    assert data.updated_at == datetime.fromisoformat(times[2])


# -- tenants -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"pk": "ORDER#other"},  # the key's tenant
        {"tenant_code": "other"},  # the declared tenant code
        {"pk": "ORDER#other", "tenant_code": "other"},
    ],
)
def test_full_command_for_another_tenant_is_refused(
    cqrs_app: cqrs.Cqrs, change: dict[str, str]
) -> None:
    commands = cqrs_app.entity("order").commands
    for publish in (commands.publish_async, commands.publish_sync):
        with pytest.raises(TenantMismatchError) as info:
            publish(order_input("1", **change), ALICE)
        assert (info.value.key_tenant, info.value.context_tenant) == ("other", TENANT)
    assert stored_sks(cqrs_app) == []


def test_partial_update_and_duplicate_for_another_tenant_are_refused(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order_input("1"), ALICE)
    intruder = InvokeContext(tenant_code="other", user_id="mallory")
    with pytest.raises(TenantMismatchError):
        commands.publish_partial_update_async(order_patch("1", name="x"), intruder)
    with pytest.raises(TenantMismatchError):
        commands.duplicate(PK, sk("1"), intruder)
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


# -- deletes and duplicates --------------------------------------------------------


def test_delete_is_a_partial_update_keeping_the_data_row(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    order.commands.publish_sync(order_input("1"), ALICE)
    cmd = order.commands.publish_partial_update_sync(order_patch("1", is_deleted=True), BOB)
    assert cmd is not None and cmd.version == 2 and cmd.is_deleted is True
    row = raw(cqrs_app, "data", "ORDER#1")
    assert row is not None and row["isDeleted"] is True and row["version"] == 2
    assert order.data.get(PK, sk("1"), context=SYSTEM) is None
    deleted = order.data.get(PK, sk("1"), include_deleted=True, context=SYSTEM)
    assert deleted is not None and deleted.is_deleted is True and deleted.name == "order 1"


def test_duplicate_latest_republishes_as_new_version(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    publish_versions(cqrs_app, 2)
    copy = commands.duplicate(PK, sk("1"), BOB)
    assert (copy.version, copy.sk, copy.name, copy.updated_by) == (3, "ORDER#1@3", "n2", "bob")
    assert copy.created_by == "alice"
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2", "ORDER#1@3"]


def test_duplicate_a_past_version(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    publish_versions(cqrs_app, 11)
    copy = commands.duplicate(PK, "ORDER#1@1", BOB)
    assert (copy.version, copy.name) == (12, "n1")
    stored = raw(cqrs_app, "command", "ORDER#1@12")
    assert stored is not None and stored["name"] == "n1" and stored["updatedBy"] == "bob"


def test_duplicate_missing_is_not_found(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    with pytest.raises(NotFoundError):
        commands.duplicate(PK, sk("1"), ALICE)
    commands.publish_async(order_input("1"), ALICE)
    with pytest.raises(NotFoundError):
        commands.duplicate(PK, "ORDER#1@5", ALICE)
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


# -- typed attributes --------------------------------------------------------------


class Address(BaseModel):
    city: str
    zip: str | None = None


class OrderAttributes(BaseModel):
    total: int
    address: Address
    tags: list[str] = []


def typed_input(code: str = "1", **attributes: Any) -> CommandInput:
    attrs = {"total": 10, "address": {"city": "Tokyo"}} | attributes
    return order_input(code, attributes=attrs)


def test_typed_entity_validates_and_reads_back_models(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.register("order", attributes=OrderAttributes)
    cmd = order.commands.publish_sync(typed_input("1"), ALICE)
    assert cmd is not None and isinstance(cmd.attributes, OrderAttributes)

    stored = raw(cqrs_app, "command", "ORDER#1@1")
    assert stored is not None
    assert stored["attributes"] == {
        "total": 10,
        "address": {"city": "Tokyo", "zip": None},
        "tags": [],
    }

    data = order.data.get(PK, sk("1"), context=SYSTEM)
    assert data is not None and isinstance(data.attributes, OrderAttributes)
    assert data.attributes.address.city == "Tokyo"
    history = order.history.get(PK, sk("1"), 1, context=SYSTEM)
    assert history is not None and isinstance(history.attributes, OrderAttributes)


def test_typed_entity_accepts_model_instances(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.register("order", attributes=OrderAttributes)
    attrs = OrderAttributes(total=3, address=Address(city="Osaka"))
    cmd = order.commands.publish_async(order_input("1", attributes=attrs), ALICE)
    assert cmd is not None and cmd.attributes == attrs


WRONG_ATTRIBUTES = {
    "wrong type": {"total": "ten", "address": {"city": "Tokyo"}},
    "missing field": {"total": 1},
    "wrong nested type": {"total": 1, "address": {"city": 5}},
    "wrong list": {"total": 1, "address": {"city": "Tokyo"}, "tags": "not-a-list"},
    "not a mapping": ["not", "a", "mapping"],
}


def test_typed_entity_rejects_wrong_attributes_before_writing(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.register("order", attributes=OrderAttributes).commands
    outcomes = {
        case: error_name(lambda: commands.publish_sync(order_input("1", attributes=a), ALICE))  # noqa: B023
        for case, a in WRONG_ATTRIBUTES.items()
    }
    assert outcomes == dict.fromkeys(WRONG_ATTRIBUTES, "InvalidAttributesError")
    assert stored_sks(cqrs_app) == [] and stored_sks(cqrs_app, "data") == []


def test_typed_partial_update_merges_then_validates(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.register("order", attributes=OrderAttributes)
    order.commands.publish_async(typed_input("1", tags=["a"]), ALICE)
    cmd = order.commands.publish_partial_update_async(
        order_patch("1", attributes={"address": {"zip": "100"}}), ALICE
    )
    assert cmd is not None
    assert cmd.attributes == OrderAttributes(
        total=10, address=Address(city="Tokyo", zip="100"), tags=["a"]
    )
    with pytest.raises(InvalidAttributesError):
        order.commands.publish_partial_update_async(
            order_patch("1", attributes={"address": {"city": None}}), ALICE
        )
    assert stored_sks(cqrs_app) == ["ORDER#1@1", "ORDER#1@2"]


def test_register_after_use_is_refused(cqrs_app: cqrs.Cqrs) -> None:
    cqrs_app.entity("order")
    with pytest.raises(cqrs.ProgrammingError):
        cqrs_app.register("order", attributes=OrderAttributes)


def test_untyped_entity_takes_dicts(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    cmd = order.commands.publish_sync(
        order_input("1", attributes={"anything": [1, {"x": 2}]}), ALICE
    )
    assert cmd is not None and cmd.attributes == {"anything": [1, {"x": 2}]}
    data = order.data.get(PK, sk("1"), context=SYSTEM)
    assert data is not None and data.attributes == {"anything": [1, {"x": 2}]}
    with pytest.raises(InvalidAttributesError):
        order.commands.publish_async(order_input("2", attributes=["a"]), ALICE)
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


def test_unstorable_attribute_values_are_refused_before_writing(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    for bad in ({"when": datetime(2024, 1, 1)}, {"x": float("nan")}, {"s": object()}):
        with pytest.raises(InvalidAttributesError):
            commands.publish_async(order_input("1", attributes=bad), ALICE)
    assert stored_sks(cqrs_app) == []


# -- size limit --------------------------------------------------------------------


def test_item_over_400_kb_is_refused_before_writing(cqrs_app: cqrs.Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    big = "x" * (401 * 1024)
    with pytest.raises(ItemTooLargeError):
        commands.publish_sync(order_input("1", attributes={"blob": big}), ALICE)
    assert stored_sks(cqrs_app) == []

    commands.publish_async(order_input("1", attributes={"blob": "x" * (300 * 1024)}), ALICE)
    with pytest.raises(ItemTooLargeError):
        commands.publish_partial_update_async(
            order_patch("1", attributes={"more": "y" * (150 * 1024)}), ALICE
        )
    assert stored_sks(cqrs_app) == ["ORDER#1@1"]


def test_typed_entity_listing_and_lookup_return_models(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.register("order", attributes=OrderAttributes)
    order.commands.publish_sync(typed_input("1"), ALICE)
    order.commands.publish_sync(typed_input("2", total=20), ALICE)
    page = order.data.list_by_pk(PK, context=SYSTEM)
    assert [type(i.attributes) for i in page.items] == [OrderAttributes, OrderAttributes]
    assert [i.attributes.total for i in page.items] == [10, 20]
    found = order.data.find_by_code(TENANT, "2", context=SYSTEM)
    assert found is not None and isinstance(found.attributes, OrderAttributes)
    assert [type(h.attributes) for h in order.history.list(PK, sk("1"), context=SYSTEM)] == [
        OrderAttributes
    ]
    assert isinstance(order.commands.get(PK, sk("1"), context=SYSTEM).attributes, OrderAttributes)  # type: ignore[union-attr]


def test_is_applied_follows_the_read_model(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    commands = cqrs_app.entity("order").commands
    publish_versions(cqrs_app, 2)
    assert not commands.is_applied(PK, sk("1"), 1, context=SYSTEM)
    drain(cqrs_app)
    assert commands.is_applied(PK, sk("1"), 2, context=SYSTEM) and not commands.is_applied(
        PK, sk("1"), 3, context=SYSTEM
    )
