"""Tenant isolation across every public API that takes a tenant: one module, one proof.

Tenant A (``acme``) acts with its own :class:`~cqrs.InvokeContext` and aims at
tenant B's (``globex``) keys through commands, data and history reads, sequences
and tasks. Every test

1. stores B's data through the real write path;
2. calls the API as A against B's keys and expects :class:`~cqrs.TenantMismatchError`
   naming both tenants, raised before *any* DynamoDB request (so nothing of B's was
   read) and leaving a full scan of every table unchanged (so nothing was written);
   where A asks inside its own partition for B's codes, the answer is empty and the
   tables are unchanged;
3. repeats the call as B (the positive control): B sees its data, so no test passes
   because there was nothing to find.

Calls that take no tenant (``app.rebuild``, data migrations, ``cqrs show``, stream
consumers) are operator tools that act on every tenant by design: not covered here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from cqrs import (
    CommandInput,
    CommandPartialInput,
    Cqrs,
    CqrsError,
    EntityServices,
    InterfaceError,
    InvokeContext,
    RotateBy,
    SequenceService,
    TaskService,
    TenantMismatchError,
)
from cqrs.testing import RequestCounter

pytestmark = pytest.mark.engine

A, B = "acme", "globex"
AS_A = InvokeContext(tenant_code=A, user_id="mallory", source_ip="198.51.100.6")
AS_B = InvokeContext(tenant_code=B, user_id="gina", source_ip="203.0.113.7")
SK = "ORDER#1"
T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)

#: table name → {key attribute values → the whole item, canonical JSON}
Snapshot = dict[str, dict[tuple[str, ...], str]]
#: ``call(tenant whose keys are targeted, acting context)``
Call = Callable[[str, InvokeContext], object]


def order_pk(tenant: str) -> str:
    return f"ORDER#{tenant}"


def order_input(tenant: str, code: str, *, pk: str | None = None, **fields: Any) -> CommandInput:
    return CommandInput(
        pk=pk or order_pk(tenant),
        sk=f"ORDER#{code}",
        code=code,
        name=fields.pop("name", f"order {code}"),
        tenant_code=tenant,
        type="ORDER",
        **fields,
    )


def order_patch(tenant: str, **fields: Any) -> CommandPartialInput:
    return CommandPartialInput(pk=order_pk(tenant), sk=SK, **fields)


# -- snapshots and assertions ----------------------------------------------------------


def _scalar(value: Mapping[str, Any]) -> str:
    """The text of a DynamoDB key value such as ``{"S": "ORDER#acme"}``."""
    return str(next(iter(value.values())))


def snapshot(app: Cqrs) -> Snapshot:
    """A consistent full scan of every table the app defines."""
    client = app.clients.dynamodb
    tables: Snapshot = {}
    for table in app.schema.definitions():
        key_names = [k["AttributeName"] for k in table.spec["KeySchema"]]
        items: dict[tuple[str, ...], str] = {}
        request: dict[str, Any] = {"TableName": table.name, "ConsistentRead": True}
        while True:
            page = client.scan(**request)
            for item in page["Items"]:
                key = tuple(_scalar(item[name]) for name in key_names)
                items[key] = json.dumps(item, sort_keys=True)
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        tables[table.name] = items
    return tables


def touched_partitions(before: Snapshot, after: Snapshot) -> set[str]:
    """The partition key of every item added, removed or changed between two snapshots."""
    touched: set[str] = set()
    for table in before.keys() | after.keys():
        old, new = before.get(table, {}), after.get(table, {})
        touched.update(key[0] for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    return touched


@contextmanager
def unchanged(app: Cqrs) -> Iterator[None]:
    """Assert that the block writes nothing to any table."""
    before = snapshot(app)
    yield
    assert touched_partitions(before, snapshot(app)) == set()


def assert_refused(
    app: Cqrs, call: Callable[[], object], error: type[CqrsError] = TenantMismatchError
) -> None:
    """``call`` raises ``error`` before any DynamoDB request, and every table is unchanged."""
    with (
        unchanged(app),
        RequestCounter(app.clients.dynamodb) as requests,
        pytest.raises(error) as info,
    ):
        call()
    assert dict(requests.by_operation) == {}, "refused, but only after talking to DynamoDB"
    if isinstance(info.value, TenantMismatchError):
        assert (info.value.key_tenant, info.value.context_tenant) == (B, A)


def assert_cross_tenant_refused(app: Cqrs, call: Call) -> None:
    """A on B's keys is refused with no effect; B on its own keys gets a result."""
    assert_refused(app, lambda: call(B, AS_A))
    assert call(B, AS_B), "positive control: B must see (or write) its own data"


def assert_own_partition_blind(app: Cqrs, call: Call) -> None:
    """A on its own keys, where B has data under the same codes, finds nothing (no writes)."""
    assert call(B, AS_B), "positive control: B has data under these codes"
    with unchanged(app):
        assert not call(A, AS_A)


# -- seeding tenant B ------------------------------------------------------------------


def seed_orders(app: Cqrs) -> EntityServices[Any]:
    """B's order 1 at version 2 (data row, two history versions) and order 2."""
    order = app.entity("order")
    order.commands.publish_sync(order_input(B, "1"), AS_B)
    order.commands.publish_sync(order_input(B, "2"), AS_B)
    latest = order.commands.publish_partial_update_sync(order_patch(B, name="renamed"), AS_B)
    assert latest is not None and latest.version == 2
    return order


@dataclass(frozen=True)
class TaskWorld:
    tasks: TaskService
    parent_sk: str  # B's parent task, fanned out into two finished sub-tasks


def seed_tasks(app: Cqrs) -> TaskWorld:
    """B's parent task run to the end through the stream, plus one task still pending."""
    app.tasks.register("job", lambda task: {"done": task.input})
    parent = app.tasks.create(B, "job", subtasks=[{"n": 0}, {"n": 1}], context=AS_B)
    app.sync()
    assert len(app.tasks.subtasks(B, parent.sk, context=AS_B)) == 2
    app.tasks.create(B, "job", {"n": 2}, context=AS_B)  # unfinished: sweep has work to see
    return TaskWorld(app.tasks, parent.sk)


def seed_sequences(seq: SequenceService) -> None:
    """B's plain ORD counter at 2 and its monthly INV counter for shop1 at 1."""
    for _ in range(2):
        seq.next(B, "ORD", now=T0, context=AS_B)
    seq.next(B, "INV", rotate_by=RotateBy.MONTHLY, codes=("shop1",), now=T0, context=AS_B)


# -- commands (writes) -----------------------------------------------------------------

#: ``write(order, context)`` aimed at B's keys; returns the stored command.
Write = Callable[[EntityServices[Any], InvokeContext], object]

WRITES: dict[str, Write] = {
    "publish_async create": lambda o, ctx: o.commands.publish_async(order_input(B, "3"), ctx),
    "publish_sync create": lambda o, ctx: o.commands.publish_sync(order_input(B, "3"), ctx),
    "publish_async on version 2": lambda o, ctx: o.commands.publish_async(
        order_input(B, "1", version=2, name="x"), ctx
    ),
    "publish_sync on latest": lambda o, ctx: o.commands.publish_sync(
        order_input(B, "1", version=-1, name="x"), ctx
    ),
    "partial_update_async": lambda o, ctx: o.commands.publish_partial_update_async(
        order_patch(B, name="x"), ctx
    ),
    "partial_update_sync on version 2": lambda o, ctx: o.commands.publish_partial_update_sync(
        order_patch(B, version=2, attributes={"total": 99}), ctx
    ),
    "delete (soft)": lambda o, ctx: o.commands.publish_partial_update_sync(
        order_patch(B, is_deleted=True), ctx
    ),
    "duplicate latest": lambda o, ctx: o.commands.duplicate(order_pk(B), SK, ctx),
    "duplicate version 1": lambda o, ctx: o.commands.duplicate(order_pk(B), f"{SK}@1", ctx),
}


@pytest.mark.parametrize("write", list(WRITES.values()), ids=list(WRITES))
def test_commands_refuse_another_tenants_keys(cqrs_app: Cqrs, write: Write) -> None:
    order = seed_orders(cqrs_app)
    assert_refused(cqrs_app, lambda: write(order, AS_A))
    stored = write(order, AS_B)  # positive control: the owner's identical call is accepted
    assert getattr(stored, "pk", None) == order_pk(B)


@pytest.mark.parametrize("sync", [False, True], ids=["publish_async", "publish_sync"])
def test_commands_cannot_claim_another_tenants_code(cqrs_app: Cqrs, sync: bool) -> None:
    """``tenantCode`` is the ``code-index`` partition ``find_by_code`` reads: A may not
    write B's there, not even under its own pk."""
    order = seed_orders(cqrs_app)
    publish = order.commands.publish_sync if sync else order.commands.publish_async
    assert_refused(cqrs_app, lambda: publish(order_input(B, "1", pk=order_pk(A)), AS_A))
    found = order.data.find_by_code(B, "1", context=AS_B)
    assert found is not None and found.pk == order_pk(B)

    before = snapshot(cqrs_app)  # control: the same key with A's own tenant code is accepted
    assert publish(order_input(A, "1"), AS_A) is not None
    assert touched_partitions(before, snapshot(cqrs_app)) == {order_pk(A)}


# -- entity reads: commands, data, history ---------------------------------------------

#: ``read(order, tenant, context)`` of the keys of ``tenant``.
Read = Callable[[EntityServices[Any], str, InvokeContext], object]


def _wait(order: EntityServices[Any], tenant: str, ctx: InvokeContext) -> bool:
    order.commands.wait_until_applied(order_pk(tenant), SK, 2, timeout=5, context=ctx)
    return True


COMMAND_READS: dict[str, Read] = {
    "commands.get latest": lambda o, t, ctx: o.commands.get(order_pk(t), SK, context=ctx),
    "commands.get version": lambda o, t, ctx: o.commands.get(order_pk(t), SK, 1, context=ctx),
    "commands.get sk@version": lambda o, t, ctx: o.commands.get(
        order_pk(t), f"{SK}@2", context=ctx
    ),
    "commands.latest_version": lambda o, t, ctx: o.commands.latest_version(
        order_pk(t), SK, context=ctx
    ),
    "commands.is_applied": lambda o, t, ctx: o.commands.is_applied(order_pk(t), SK, 1, context=ctx),
}
DATA_READS: dict[str, Read] = {
    "data.get": lambda o, t, ctx: o.data.get(order_pk(t), SK, context=ctx),
    "data.get consistent, deleted too": lambda o, t, ctx: o.data.get(
        order_pk(t), SK, consistent=True, include_deleted=True, context=ctx
    ),
    "data.get_item": lambda o, t, ctx: o.data.get_item(order_pk(t), SK, context=ctx),
    "data.get_fresh": lambda o, t, ctx: o.data.get_fresh(order_pk(t), SK, context=ctx),
    "data.list_by_pk": lambda o, t, ctx: o.data.list_by_pk(order_pk(t), context=ctx).items,
    "data.list_by_pk prefix, page, descending": lambda o, t, ctx: (
        o.data.list_by_pk(
            order_pk(t),
            sk_prefix="ORDER#",
            limit=1,
            descending=True,
            include_deleted=True,
            context=ctx,
        ).items
    ),
    "data.find_by_code": lambda o, t, ctx: o.data.find_by_code(t, "1", context=ctx),
    "data.find_by_code deleted too": lambda o, t, ctx: o.data.find_by_code(
        t, "2", include_deleted=True, context=ctx
    ),
}
HISTORY_READS: dict[str, Read] = {
    "history.get": lambda o, t, ctx: o.history.get(order_pk(t), SK, 1, context=ctx),
    "history.get latest": lambda o, t, ctx: o.history.get(order_pk(t), SK, 2, context=ctx),
    "history.list": lambda o, t, ctx: o.history.list(order_pk(t), SK, context=ctx),
    "history.list sk@version": lambda o, t, ctx: o.history.list(
        order_pk(t), f"{SK}@1", context=ctx
    ),
}
ENTITY_READS = COMMAND_READS | DATA_READS | HISTORY_READS


def check_read_refused(app: Cqrs, read: Read) -> None:
    order = seed_orders(app)
    assert_cross_tenant_refused(app, lambda tenant, ctx: read(order, tenant, ctx))


@pytest.mark.parametrize(
    "read",
    [*COMMAND_READS.values(), _wait],
    ids=[*COMMAND_READS, "commands.wait_until_applied"],
)
def test_command_reads_refuse_another_tenant(cqrs_app: Cqrs, read: Read) -> None:
    check_read_refused(cqrs_app, read)


@pytest.mark.parametrize("read", list(DATA_READS.values()), ids=list(DATA_READS))
def test_data_reads_refuse_another_tenant(cqrs_app: Cqrs, read: Read) -> None:
    check_read_refused(cqrs_app, read)


@pytest.mark.parametrize("read", list(HISTORY_READS.values()), ids=list(HISTORY_READS))
def test_history_reads_refuse_another_tenant(cqrs_app: Cqrs, read: Read) -> None:
    check_read_refused(cqrs_app, read)


@pytest.mark.parametrize("read", list(ENTITY_READS.values()), ids=list(ENTITY_READS))
def test_entity_reads_of_own_partition_never_see_another_tenant(cqrs_app: Cqrs, read: Read) -> None:
    order = seed_orders(cqrs_app)
    assert_own_partition_blind(cqrs_app, lambda tenant, ctx: read(order, tenant, ctx))


def test_get_fresh_after_another_tenants_command_is_refused(cqrs_app: Cqrs) -> None:
    """Read-your-writes reads the command table while sync lags: A may not use it on B."""
    order = cqrs_app.entity("order")
    theirs = order.commands.publish_async(order_input(B, "1"), AS_B)  # not synchronized
    assert theirs is not None
    assert_refused(
        cqrs_app, lambda: order.data.get_fresh(order_pk(B), SK, after=theirs, context=AS_A)
    )
    assert_refused(  # B's command as the `after` of A's own key: refused as well
        cqrs_app,
        lambda: order.data.get_fresh(order_pk(A), SK, after=theirs, context=AS_A),
        InterfaceError,
    )
    with unchanged(cqrs_app):
        assert order.data.get_fresh(order_pk(A), SK, context=AS_A) is None
    fresh = order.data.get_fresh(order_pk(B), SK, after=theirs, context=AS_B)
    assert fresh is not None and (fresh.pk, fresh.version) == (order_pk(B), 1)


# -- pagination cursors ----------------------------------------------------------------

#: ``page(app, tenant, cursor, context)`` → (keys on the page, next cursor).
Lister = Callable[[Cqrs, str, str | None, InvokeContext], tuple[list[str], str | None]]


def _data_page(
    app: Cqrs, tenant: str, cursor: str | None, ctx: InvokeContext
) -> tuple[list[str], str | None]:
    page = app.entity("order").data.list_by_pk(
        order_pk(tenant), limit=1, cursor=cursor, context=ctx
    )
    return [r.sk for r in page.items], page.cursor


def _task_page(
    app: Cqrs, tenant: str, cursor: str | None, ctx: InvokeContext
) -> tuple[list[str], str | None]:
    page = app.tasks.list(tenant, "job", limit=1, cursor=cursor, context=ctx)
    return [t.sk for t in page.items], page.cursor


PAGES: dict[str, Lister] = {"data.list_by_pk": _data_page, "tasks.list": _task_page}


@pytest.mark.parametrize("page", list(PAGES.values()), ids=list(PAGES))
def test_cursor_of_another_tenant_is_refused(cqrs_app: Cqrs, page: Lister) -> None:
    for tenant, ctx in ((B, AS_B), (A, AS_A)):  # both tenants have two orders and two tasks
        for code in ("1", "2"):
            cqrs_app.entity("order").commands.publish_sync(order_input(tenant, code), ctx)
            cqrs_app.tasks.create(tenant, "job", {"n": code}, context=ctx)
    first, their_cursor = page(cqrs_app, B, None, AS_B)
    assert first and their_cursor is not None
    assert_refused(cqrs_app, lambda: page(cqrs_app, B, their_cursor, AS_A))
    assert_refused(cqrs_app, lambda: page(cqrs_app, A, their_cursor, AS_A), InterfaceError)
    rest, _ = page(cqrs_app, B, their_cursor, AS_B)  # positive control: B pages on
    assert rest and not set(rest) & set(first)


# -- sequences -------------------------------------------------------------------------


class SequenceCall(NamedTuple):
    call: Callable[[SequenceService, str, InvokeContext], int]
    fresh: int  # what the call returns on a counter never used before


SEQUENCE_CALLS: dict[str, SequenceCall] = {
    "next": SequenceCall(
        lambda s, t, ctx: s.next(t, "ORD", fmt="ORD-{no:4}", now=T0, context=ctx).number, 1
    ),
    "next monthly with codes": SequenceCall(
        lambda s, t, ctx: (
            s.next(
                t, "INV", rotate_by=RotateBy.MONTHLY, codes=("shop1",), now=T0, context=ctx
            ).number
        ),
        1,
    ),
    "reserve": SequenceCall(
        lambda s, t, ctx: s.reserve(t, "ORD", count=3, now=T0, context=ctx).last, 3
    ),
    "current": SequenceCall(lambda s, t, ctx: s.current(t, "ORD", now=T0, context=ctx), 0),
    "current monthly with codes": SequenceCall(
        lambda s, t, ctx: s.current(
            t, "INV", rotate_by="monthly", codes=["shop1"], now=T0, context=ctx
        ),
        0,
    ),
}


@pytest.mark.parametrize("case", list(SEQUENCE_CALLS.values()), ids=list(SEQUENCE_CALLS))
def test_sequences_refuse_another_tenant(cqrs_app: Cqrs, case: SequenceCall) -> None:
    seq = cqrs_app.sequences
    seed_sequences(seq)
    assert_cross_tenant_refused(cqrs_app, lambda tenant, ctx: case.call(seq, tenant, ctx))


@pytest.mark.parametrize("case", list(SEQUENCE_CALLS.values()), ids=list(SEQUENCE_CALLS))
def test_sequence_counters_are_per_tenant(cqrs_app: Cqrs, case: SequenceCall) -> None:
    """A's counter with B's type and codes starts afresh and touches only A's partition."""
    seq = cqrs_app.sequences
    seed_sequences(seq)
    before = snapshot(cqrs_app)
    assert case.call(seq, A, AS_A) == case.fresh
    issued = case.fresh > 0  # next and reserve write A's counter; current only reads
    assert touched_partitions(before, snapshot(cqrs_app)) == ({f"SEQ#{A}"} if issued else set())
    assert seq.current(B, "ORD", now=T0, context=AS_B) == 2  # B's counter did not move


# -- tasks -----------------------------------------------------------------------------

#: ``call(world, tenant, context)`` on the task keys of ``tenant``.
TaskCall = Callable[[TaskWorld, str, InvokeContext], object]

TASK_WRITES: dict[str, TaskCall] = {
    "create": lambda w, t, ctx: w.tasks.create(t, "job", {"n": 9}, context=ctx),
    "create with sub-tasks": lambda w, t, ctx: w.tasks.create(
        t, "job", subtasks=[{"n": 8}, {"n": 9}], name="fan", context=ctx, max_attempts=1
    ),
}
TASK_READS: dict[str, TaskCall] = {
    "get": lambda w, t, ctx: w.tasks.get(t, w.parent_sk, context=ctx),
    "get by pk, consistent": lambda w, t, ctx: w.tasks.get(
        f"TASK#{t}", w.parent_sk, consistent=True, context=ctx
    ),
    "get sub-task": lambda w, t, ctx: w.tasks.get(t, f"{w.parent_sk}#0", context=ctx),
    "list": lambda w, t, ctx: w.tasks.list(t, context=ctx).items,
    "list by type with sub-tasks": lambda w, t, ctx: (
        w.tasks.list(t, "job", include_subtasks=True, limit=10, context=ctx).items
    ),
    "subtasks": lambda w, t, ctx: w.tasks.subtasks(t, w.parent_sk, context=ctx),
    "subtasks by pk": lambda w, t, ctx: w.tasks.subtasks(f"TASK#{t}", w.parent_sk, context=ctx),
    "sweep": lambda w, t, ctx: w.tasks.sweep(t, context=ctx).examined,
}


@pytest.mark.parametrize(
    "call", [*TASK_WRITES.values(), *TASK_READS.values()], ids=[*TASK_WRITES, *TASK_READS]
)
def test_tasks_refuse_another_tenant(cqrs_app: Cqrs, call: TaskCall) -> None:
    world = seed_tasks(cqrs_app)
    assert_cross_tenant_refused(cqrs_app, lambda tenant, ctx: call(world, tenant, ctx))


@pytest.mark.parametrize("call", list(TASK_READS.values()), ids=list(TASK_READS))
def test_task_reads_of_own_partition_never_see_another_tenant(
    cqrs_app: Cqrs, call: TaskCall
) -> None:
    world = seed_tasks(cqrs_app)
    assert_own_partition_blind(cqrs_app, lambda tenant, ctx: call(world, tenant, ctx))
