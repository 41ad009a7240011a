"""Concurrency on a real HTTP endpoint (moto server, or DynamoDB Local in CI): bounded
threads; optimistic locking loses no update and different entities never contend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cqrs import SYSTEM, CommandInput, CommandPartialInput, InvokeContext, VersionConflictError

pytestmark = pytest.mark.engine

CTX = InvokeContext(tenant_code="acme", user_id="worker")
THREADS = 6


def create(app, code: str) -> None:
    app.entity("order").commands.publish_async(
        CommandInput(
            pk="ORDER#acme",
            sk=f"ORDER#{code}",
            code=code,
            name=code,
            tenant_code="acme",
            type="ORDER",
            attributes={"count": 0},
        ),
        CTX,
    )


def increment(app, code: str, times: int) -> int:
    """Read-modify-write with optimistic locking, retrying on conflict; returns conflicts seen."""
    commands = app.entity("order").commands
    conflicts = 0
    for _ in range(times):
        for _attempt in range(200):  # bounded
            base = commands.get("ORDER#acme", f"ORDER#{code}", context=SYSTEM)
            assert base is not None
            try:
                commands.publish_partial_update_async(
                    CommandPartialInput(
                        pk="ORDER#acme",
                        sk=f"ORDER#{code}",
                        version=base.version,
                        attributes={"count": base.attributes["count"] + 1},
                    ),
                    CTX,
                )
                break
            except VersionConflictError:
                conflicts += 1
        else:
            raise AssertionError("an increment never got through")
    return conflicts


def test_no_lost_update_under_contention(server_app, drain):
    create(server_app, "hot")
    per_thread = 5
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        conflicts = list(
            pool.map(lambda _: increment(server_app, "hot", per_thread), range(THREADS))
        )
    total = THREADS * per_thread
    commands = server_app.entity("order").commands
    assert (
        commands.latest_version("ORDER#acme", "ORDER#hot", context=SYSTEM) == total + 1
    )  # one per increment
    drain(server_app)
    row = server_app.entity("order").data.get(
        "ORDER#acme", "ORDER#hot", consistent=True, context=SYSTEM
    )
    assert row.attributes["count"] == total  # every increment counted exactly once
    assert sum(conflicts) > 0  # the threads really did contend


def test_threads_on_different_entities_all_succeed(server_app, drain):
    codes = [f"e{i}" for i in range(THREADS * 4)]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(lambda c: create(server_app, c), codes))
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        assert sum(pool.map(lambda c: increment(server_app, c, 2), codes)) == 0
    drain(server_app)
    page = server_app.entity("order").data.list_by_pk("ORDER#acme", context=SYSTEM)
    assert sorted(r.code for r in page.items) == sorted(codes)
    assert {r.attributes["count"] for r in page.items} == {2}
