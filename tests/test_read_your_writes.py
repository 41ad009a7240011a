"""Read-your-writes and waiting for a command to be applied."""

from __future__ import annotations

import threading

import pytest

from cqrs import SYSTEM, CommandInput, CommandPartialInput, InterfaceError, InvokeContext
from cqrs.core.errors import SyncTimeoutError
from cqrs.testing import RequestCounter

pytestmark = pytest.mark.engine

CTX = InvokeContext(tenant_code="acme", user_id="alice")
PK, SK = "ORDER#acme", "ORDER#1"


def create(app, **attributes):
    return app.entity("order").commands.publish_async(
        CommandInput(
            pk=PK,
            sk=SK,
            code="1",
            name="one",
            tenant_code="acme",
            type="ORDER",
            attributes=attributes,
        ),
        CTX,
    )


def update(app, **attributes):
    return app.entity("order").commands.publish_partial_update_async(
        CommandPartialInput(pk=PK, sk=SK, attributes=attributes), CTX
    )


def test_fresh_read_sees_an_unsynced_create_and_equals_the_synced_row(cqrs_app, drain):
    data = cqrs_app.entity("order").data
    cmd = create(cqrs_app, qty=1)
    assert data.get(PK, SK, context=SYSTEM) is None  # the plain read model is behind
    fresh = data.get_fresh(PK, SK, context=SYSTEM)
    assert fresh is not None and fresh.version == 1 and fresh.attributes == {"qty": 1}
    assert data.get_fresh(PK, SK, after=cmd, context=SYSTEM) == fresh
    drain(cqrs_app)
    assert data.get(PK, SK, consistent=True, context=SYSTEM) == fresh  # exactly what sync produced


def test_fresh_read_merges_the_latest_command_over_a_lagging_row(cqrs_app, drain):
    data = cqrs_app.entity("order").data
    create(cqrs_app, qty=1, note="keep")
    drain(cqrs_app)
    update(cqrs_app, qty=2)
    latest = update(cqrs_app, qty=3)
    fresh = data.get_fresh(PK, SK, context=SYSTEM)
    assert (fresh.version, fresh.attributes) == (3, {"qty": 3, "note": "keep"})
    assert fresh.created_at == data.get(PK, SK, context=SYSTEM).created_at  # first createdAt kept
    drain(cqrs_app)
    synced = data.get(PK, SK, consistent=True, context=SYSTEM)
    assert synced == fresh == data.get_fresh(PK, SK, after=latest, context=SYSTEM)


def test_fresh_read_costs_one_read_with_the_command_and_two_without(cqrs_app):
    data = cqrs_app.entity("order").data
    cmd = create(cqrs_app, qty=1)
    with RequestCounter(cqrs_app.clients.dynamodb) as n:
        data.get_fresh(PK, SK, after=cmd, context=SYSTEM)
    assert dict(n.by_operation) == {"GetItem": 1}
    with RequestCounter(cqrs_app.clients.dynamodb) as n:
        data.get_fresh(PK, SK, context=SYSTEM)
    assert dict(n.by_operation) == {"GetItem": 1, "BatchGetItem": 1}


def test_fresh_read_hides_a_soft_delete_and_refuses_a_foreign_command(cqrs_app):
    data = cqrs_app.entity("order").data
    cmd = create(cqrs_app, qty=1)
    cqrs_app.entity("order").commands.publish_partial_update_async(
        CommandPartialInput(pk=PK, sk=SK, is_deleted=True), CTX
    )
    assert data.get_fresh(PK, SK, context=SYSTEM) is None
    assert data.get_fresh(PK, SK, include_deleted=True, context=SYSTEM).is_deleted is True
    with pytest.raises(InterfaceError, match="ORDER#2"):
        data.get_fresh(PK, "ORDER#2", after=cmd, context=SYSTEM)


def test_wait_until_applied_returns_once_a_follower_syncs(cqrs_app):
    commands = cqrs_app.entity("order").commands
    cmd = create(cqrs_app, qty=1)
    stop = threading.Event()
    follower = threading.Thread(target=cqrs_app.follower().follow, args=(stop, 0.02))
    follower.start()
    try:
        commands.wait_until_applied(PK, SK, cmd.version, timeout=30, context=SYSTEM)
    finally:
        stop.set()
        follower.join(timeout=30)
    assert commands.is_applied(PK, SK, 1, context=SYSTEM)


def test_wait_until_applied_times_out_clearly_when_nothing_syncs(cqrs_app):
    cmd = create(cqrs_app, qty=1)
    with pytest.raises(SyncTimeoutError, match="synchronizer running"):
        cqrs_app.entity("order").commands.wait_until_applied(
            PK, SK, cmd.version, timeout=0.2, context=SYSTEM
        )
