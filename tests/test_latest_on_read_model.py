"""``version=-1`` based on the data row: faults and races still resolve to the latest.

When the read model is caught up, a publish based on the latest reads the data row
(one consistent ``GetItem``) and writes the version after it; only when that version
exists already (the read model is behind, or another writer won) does it read a
window of command versions. What must hold, as with the window-only path: a retry
after a lost reply finds its own write as the latest and writes nothing; two writers
based on the same row never both write the same version; the loser of a race on the
version the log names raises :class:`~cqrs.VersionConflictError`.
"""

from __future__ import annotations

from typing import Any

import pytest

import cqrs
from cqrs import SYSTEM, CommandInput, InvokeContext, VersionConflictError
from cqrs.core.errors import ThrottledError
from cqrs.testing.faults import Fault, FaultInjector

TENANT = "acme"
PK = f"ORDER#{TENANT}"
SK = "ORDER#1"


def order(version: int, name: str) -> CommandInput:
    return CommandInput(pk=PK, sk=SK, code="1", name=name, tenant_code=TENANT, type="ORDER",
                        version=version)  # fmt: skip


def ctx(request_id: str) -> InvokeContext:
    return InvokeContext(tenant_code=TENANT, user_id="alice", request_id=request_id)


def test_lost_reply_on_the_caught_up_path_retries_as_a_noop(
    cqrs_app: cqrs.Cqrs, drain: Any
) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order(0, "v1"), ctx("r1"))
    drain(cqrs_app)
    lost = Fault("PutItem", 1, "after", "throttle")
    with (
        FaultInjector(cqrs_app.clients.dynamodb, [lost]) as faults,
        pytest.raises(ThrottledError),
    ):
        commands.publish_async(order(-1, "v2"), ctx("r2"))
    assert faults.injected == [lost]
    stored = commands.get(PK, f"{SK}@2", context=SYSTEM)
    assert stored is not None and stored.request_id == "r2"  # it landed
    # The retry: the row is still at 1, @2 exists (its own), the log says it is the latest.
    assert commands.publish_async(order(-1, "v2"), ctx("r2")) is None
    assert commands.latest_version(PK, SK, context=SYSTEM) == 2


def test_two_writers_on_the_same_row_write_one_version_each(
    cqrs_app: cqrs.Cqrs, drain: Any
) -> None:
    """B reads the row after A's write landed but before the stream applied it: B's
    version after the row conflicts, and B goes after A's."""
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order(0, "v1"), ctx("r1"))
    drain(cqrs_app)
    a = commands.publish_async(order(-1, "by A"), ctx("a"))
    b = commands.publish_async(order(-1, "by B"), ctx("b"))
    assert a is not None and b is not None
    assert [(a.version, a.name), (b.version, b.name)] == [(2, "by A"), (3, "by B")]
    drain(cqrs_app)
    row = cqrs_app.entity("order").data.get(PK, SK, consistent=True, context=SYSTEM)
    assert row is not None and (row.version, row.name) == (3, "by B")


def test_losing_the_race_on_the_logged_version_is_a_conflict(
    cqrs_app: cqrs.Cqrs, drain: Any
) -> None:
    """Between B's window read and B's write, C writes the version the window named:
    B's second write conflicts and raises, writing nothing."""
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order(0, "v1"), ctx("r1"))
    drain(cqrs_app)
    commands.publish_async(order(-1, "by A"), ctx("a"))  # data row still at 1
    client = cqrs_app.clients.dynamodb

    def c_writes_first(model: Any, **_: Any) -> None:
        if model.name == "BatchGetItem":  # B has read the window (@2): C wins @3 now
            client.meta.events.unregister("after-call.dynamodb.BatchGetItem", c_writes_first)
            commands.publish_async(order(2, "by C"), ctx("c"))

    client.meta.events.register("after-call.dynamodb.BatchGetItem", c_writes_first)
    try:
        with pytest.raises(VersionConflictError) as info:
            commands.publish_async(order(-1, "by B"), ctx("b"))
    finally:
        client.meta.events.unregister("after-call.dynamodb.BatchGetItem", c_writes_first)
    assert (info.value.expected, info.value.actual) == (2, 3)
    assert commands.latest_version(PK, SK, context=SYSTEM) == 3
    latest = commands.get(PK, SK, context=SYSTEM)
    assert latest is not None and latest.name == "by C"
