"""The read side: DataService (current state) and HistoryService (past versions).

State is written through the real write path and, where it matters, projected
through real moto DynamoDB Streams records with ``drain``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

import cqrs
from cqrs import (
    SYSTEM,
    CommandInput,
    CommandPartialInput,
    InterfaceError,
    InvokeContext,
    MissingContextError,
    TenantMismatchError,
)

TENANT = "acme"
PK = f"ORDER#{TENANT}"
CTX = InvokeContext(tenant_code=TENANT, user_id="alice")
OTHER = InvokeContext(tenant_code="other", user_id="mallory")


def order_input(code: str, version: int = 0, tenant: str = TENANT, **kw: Any) -> CommandInput:
    fields: dict[str, Any] = {
        "pk": f"ORDER#{tenant}",
        "sk": f"ORDER#{code}",
        "code": code,
        "name": f"order {code}",
        "tenant_code": tenant,
        "type": "ORDER",
        "version": version,
        "attributes": {"n": code},
    }
    fields.update(kw)
    return CommandInput(**fields)


def create_orders(app: cqrs.Cqrs, *codes: str, tenant: str = TENANT) -> None:
    ctx = InvokeContext(tenant_code=tenant)
    for code in codes:
        app.entity("order").commands.publish_sync(order_input(code, tenant=tenant), ctx)


def delete_order(app: cqrs.Cqrs, code: str) -> None:
    patch = CommandPartialInput(pk=PK, sk=f"ORDER#{code}", is_deleted=True)
    app.entity("order").commands.publish_partial_update_sync(patch, CTX)


def codes(page: cqrs.Page[Any]) -> list[str]:
    return [item.code for item in page.items]


def all_pages(data: Any, pk: str = PK, **kw: Any) -> list[list[str]]:
    """Every page of ``list_by_pk``, following cursors to the end."""
    pages, cursor = [], None
    while True:
        page = data.list_by_pk(pk, cursor=cursor, context=SYSTEM, **kw)
        pages.append(codes(page))
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "cursor never ended"


def error_name(call: Callable[[], object]) -> str | None:
    """The class name of the exception ``call`` raises, or ``None``."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return None


def cursor_of(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


# -- get ---------------------------------------------------------------------------


def test_get_returns_the_current_state(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    order = cqrs_app.entity("order")
    order.commands.publish_async(order_input("1"), CTX)
    order.commands.publish_async(order_input("1", version=1, name="renamed"), CTX)
    assert order.data.get(PK, "ORDER#1", consistent=True, context=SYSTEM) is None  # not synced yet
    drain(cqrs_app)

    record = order.data.get(PK, "ORDER#1", context=SYSTEM)
    assert isinstance(record, cqrs.DataRecord)
    assert (record.pk, record.sk, record.id) == (PK, "ORDER#1", "ORDER#acme#ORDER#1")
    assert (record.name, record.version, record.tenant_code) == ("renamed", 2, TENANT)
    assert (record.cpk, record.csk) == (PK, "ORDER#1@2")
    assert record.attributes == {"n": "1"}
    assert record.created_by == "alice" and record.created_at is not None


def test_get_missing_is_none(cqrs_app: cqrs.Cqrs) -> None:
    assert cqrs_app.entity("order").data.get(PK, "ORDER#404", context=SYSTEM) is None


def test_soft_deleted_is_hidden_unless_asked(cqrs_app: cqrs.Cqrs) -> None:
    data = cqrs_app.entity("order").data
    create_orders(cqrs_app, "1", "2", "3")
    delete_order(cqrs_app, "2")

    assert data.get(PK, "ORDER#2", context=SYSTEM) is None
    deleted = data.get(PK, "ORDER#2", include_deleted=True, context=SYSTEM)
    assert deleted is not None and deleted.is_deleted is True and deleted.version == 2
    assert codes(data.list_by_pk(PK, context=SYSTEM)) == ["1", "3"]
    assert codes(data.list_by_pk(PK, include_deleted=True, context=SYSTEM)) == ["1", "2", "3"]
    assert data.find_by_code(TENANT, "2", context=SYSTEM) is None
    found = data.find_by_code(TENANT, "2", include_deleted=True, context=SYSTEM)
    assert found is not None and found.is_deleted is True


def test_restored_entity_is_visible_again(cqrs_app: cqrs.Cqrs) -> None:
    data = cqrs_app.entity("order").data
    create_orders(cqrs_app, "1")
    delete_order(cqrs_app, "1")
    patch = CommandPartialInput(pk=PK, sk="ORDER#1", is_deleted=False)
    cqrs_app.entity("order").commands.publish_partial_update_sync(patch, CTX)
    record = data.get(PK, "ORDER#1", context=SYSTEM)
    assert record is not None and record.version == 3 and record.is_deleted is False
    assert codes(data.list_by_pk(PK, context=SYSTEM)) == ["1"]


# -- list_by_pk ----------------------------------------------------------------------


def test_list_by_pk_paginates_with_an_opaque_cursor(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, *"1234567")
    data = cqrs_app.entity("order").data

    pages = all_pages(data, limit=3)
    assert pages == [["1", "2", "3"], ["4", "5", "6"], ["7"]]
    flat = [c for page in pages for c in page]
    assert len(flat) == len(set(flat)) == 7

    assert all_pages(data, limit=3, descending=True) == [["7", "6", "5"], ["4", "3", "2"], ["1"]]
    assert codes(data.list_by_pk(PK, context=SYSTEM)) == list("1234567")  # no limit: everything


def test_list_by_pk_fills_pages_past_deleted_items(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, *"1234567")
    for code in "235":
        delete_order(cqrs_app, code)
    data = cqrs_app.entity("order").data
    pages = all_pages(data, limit=2)
    # full pages despite the filter; a page that ends exactly at the last item may
    # hand back a cursor to one final empty page (DynamoDB's LastEvaluatedKey rule)
    assert pages[:2] == [["1", "4"], ["6", "7"]] and pages[2:] in ([], [[]])
    assert all_pages(data, limit=3, include_deleted=True) == [list("123"), list("456"), ["7"]]


def test_list_by_pk_sk_prefix_and_tenant_scope(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, "A1", "A2", "B1")
    create_orders(cqrs_app, "A3", tenant="other")
    data = cqrs_app.entity("order").data
    assert codes(data.list_by_pk(PK, sk_prefix="ORDER#A", context=SYSTEM)) == ["A1", "A2"]
    assert codes(data.list_by_pk(PK, sk_prefix="ORDER#A", descending=True, context=SYSTEM)) == [
        "A2",
        "A1",
    ]
    assert codes(data.list_by_pk("ORDER#other", context=SYSTEM)) == ["A3"]
    assert codes(data.list_by_pk("ORDER#nobody", context=SYSTEM)) == []


TAMPERED_CURSORS = {
    "garbage": "not a cursor",
    "not base64": "%%%",
    "not json": base64.urlsafe_b64encode(b"not json").decode(),
    "not utf-8": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "json list": cursor_of([1, 2]),
    "empty key": cursor_of({}),
    "untyped key": cursor_of({"pk": "ORDER#acme", "sk": "ORDER#1"}),
    "half a key": cursor_of({"pk": {"S": "ORDER#acme"}}),
    "extra attribute": cursor_of({"pk": {"S": PK}, "sk": {"S": "ORDER#1"}, "x": {"S": "y"}}),
    "another pk": cursor_of({"pk": {"S": "ORDER#other"}, "sk": {"S": "ORDER#1"}}),
    "outside sk_prefix": cursor_of({"pk": {"S": PK}, "sk": {"S": "ITEM#1"}}),
}


def test_tampered_cursor_is_an_interface_error(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, "1", "2")
    data = cqrs_app.entity("order").data
    outcomes = {
        case: error_name(
            lambda: data.list_by_pk(PK, sk_prefix="ORDER#", limit=1, cursor=c, context=SYSTEM)  # noqa: B023
        )
        for case, c in TAMPERED_CURSORS.items()
    }
    assert outcomes == dict.fromkeys(TAMPERED_CURSORS, "InterfaceError")


def test_truncated_real_cursor_is_an_interface_error(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, "1", "2")
    cursor = cqrs_app.entity("order").data.list_by_pk(PK, limit=1, context=SYSTEM).cursor
    assert cursor is not None
    with pytest.raises(InterfaceError):
        cqrs_app.entity("order").data.list_by_pk(PK, limit=1, cursor=cursor[:-3], context=SYSTEM)


@pytest.mark.parametrize("limit", [0, -1])
def test_list_by_pk_rejects_bad_limit(cqrs_app: cqrs.Cqrs, limit: int) -> None:
    with pytest.raises(InterfaceError):
        cqrs_app.entity("order").data.list_by_pk(PK, limit=limit, context=SYSTEM)


# -- find_by_code --------------------------------------------------------------------


def test_find_by_code_uses_the_code_index(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, "1", "2")
    create_orders(cqrs_app, "1", tenant="other")
    data = cqrs_app.entity("order").data
    found = data.find_by_code(TENANT, "2", context=SYSTEM)
    assert found is not None and (found.pk, found.sk, found.name) == (PK, "ORDER#2", "order 2")
    theirs = data.find_by_code("other", "1", context=SYSTEM)
    assert theirs is not None and theirs.pk == "ORDER#other"
    assert data.find_by_code(TENANT, "404", context=SYSTEM) is None


# -- history -------------------------------------------------------------------------


def test_history_lists_every_version_oldest_first(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    order = cqrs_app.entity("order")
    for v in range(12):  # > 10 versions: text order would put @10 before @9
        order.commands.publish_async(order_input("1", version=v, name=f"n{v + 1}"), CTX)
    create_orders(cqrs_app, "10", "1X")  # neighbours whose sort keys share the prefix
    drain(cqrs_app)

    history = order.history.list(PK, "ORDER#1", context=SYSTEM)
    assert [h.version for h in history] == list(range(1, 13))
    assert [h.name for h in history] == [f"n{v}" for v in range(1, 13)]
    assert all(isinstance(h, cqrs.HistoryRecord) for h in history)
    assert history[9].sk == "ORDER#1@10" and history[9].csk == "ORDER#1@10"
    assert (
        order.history.list(PK, "ORDER#1@5", context=SYSTEM) == history
    )  # a versioned sk means its entity


def test_history_get_one_version(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    create_orders(cqrs_app, "1")
    order.commands.publish_sync(order_input("1", version=1, name="second"), CTX)
    first = order.history.get(PK, "ORDER#1", 1, context=SYSTEM)
    second = order.history.get(PK, "ORDER#1", 2, context=SYSTEM)
    assert first is not None and (first.version, first.name) == (1, "order 1")
    assert second is not None and (second.version, second.name) == (2, "second")
    assert order.history.get(PK, "ORDER#1", 3, context=SYSTEM) is None
    assert order.history.list(PK, "ORDER#404", context=SYSTEM) == []


# -- tenant isolation ----------------------------------------------------------------

READS = {
    "data.get": lambda e, ctx: e.data.get(PK, "ORDER#1", context=ctx),
    "data.list_by_pk": lambda e, ctx: e.data.list_by_pk(PK, context=ctx),
    "data.find_by_code": lambda e, ctx: e.data.find_by_code(TENANT, "1", context=ctx),
    "history.get": lambda e, ctx: e.history.get(PK, "ORDER#1", 1, context=ctx),
    "history.list": lambda e, ctx: e.history.list(PK, "ORDER#1", context=ctx),
}


@pytest.mark.parametrize("read", list(READS.values()), ids=list(READS))
def test_reads_refuse_another_tenant(cqrs_app: cqrs.Cqrs, read: Any) -> None:
    create_orders(cqrs_app, "1")
    order = cqrs_app.entity("order")
    with pytest.raises(TenantMismatchError) as info:
        read(order, OTHER)
    assert (info.value.key_tenant, info.value.context_tenant) == (TENANT, "other")
    assert read(order, CTX)  # the owning tenant sees it
    assert read(order, SYSTEM)  # trusted code says so explicitly
    with pytest.raises(MissingContextError):
        read(order, None)  # no context is not a silent bypass


def test_cursor_cannot_cross_tenants(cqrs_app: cqrs.Cqrs) -> None:
    create_orders(cqrs_app, "1", "2", "3", tenant="other")
    create_orders(cqrs_app, "1", "2")
    data = cqrs_app.entity("order").data
    their_cursor = data.list_by_pk("ORDER#other", limit=1, context=SYSTEM).cursor
    assert their_cursor is not None
    with pytest.raises(InterfaceError):
        data.list_by_pk(PK, limit=1, cursor=their_cursor, context=CTX)
