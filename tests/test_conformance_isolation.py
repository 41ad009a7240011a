"""What each test gets from the session's in-process engine: a fresh prefix, empty tables
and empty streams of its own, with exactly the tables ``migrate`` makes, also when its
tables are recycled from an earlier test (:mod:`cqrs.testing.pool`)."""

from __future__ import annotations

from pathlib import Path

from moto import mock_aws

from cqrs import Cqrs
from cqrs.store import TableAdmin, item_absent
from cqrs.testing import stream_records, table_items
from cqrs.testing.engine import Engine, shared_engine


def fill(app: Cqrs) -> set[str]:
    """One item in every table (a stream record in every streamed one); the stream ARNs."""
    store = app.clients.store
    for definition in app.schema.definitions():
        store.put(definition.name, {"pk": "P", "sk": "S@1"}, condition=item_absent())
    assert len(stream_records(app)) == len(app.streamed_tables())
    return set(app.follower().stream_arns())


def assert_fresh(app: Cqrs, before: Cqrs, arns_before: set[str]) -> None:
    """``app`` has its own prefix, stream ARNs, empty tables and streams, migrate's tables."""
    assert app.settings.table_prefix != before.settings.table_prefix
    assert app.migrate() == []
    for definition in app.schema.definitions():
        assert table_items(app, definition.name) == []
    assert stream_records(app) == []
    assert arns_before.isdisjoint(app.follower().stream_arns())


def test_a_recycled_lease_is_a_fresh_prefix_with_empty_tables_and_streams(
    cqrs_tables_dir: Path,
) -> None:
    engine = shared_engine(None)
    with engine.active():
        with engine.lease(cqrs_tables_dir) as first:
            arns = fill(first)
        reused = engine.pool.reused
        with engine.lease(cqrs_tables_dir) as second:
            assert engine.pool.reused == reused + 1  # the first one's tables, renamed
            assert_fresh(second, first, arns)
            admin = TableAdmin(first.clients.dynamodb)
            assert [admin.describe(d.name) for d in first.schema.definitions()] == [None] * 10


def test_tables_a_test_altered_are_never_handed_out_again(cqrs_tables_dir: Path) -> None:
    engine = shared_engine(None)
    with engine.active():
        with engine.lease(cqrs_tables_dir) as first:
            arns = fill(first)
            table = first.schema.system_table("tasks")
            first.clients.dynamodb.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"}
            )
        for _ in range(3):  # whichever set a lease gets, never that one
            with engine.lease(cqrs_tables_dir) as later:
                assert_fresh(later, first, arns)
                assert table_items(first, table) == [{"pk": "P", "sk": "S@1"}]


def test_after_a_reset_of_moto_leases_create_their_tables_again(cqrs_tables_dir: Path) -> None:
    engine = shared_engine(None)
    with engine.active(), engine.lease(cqrs_tables_dir) as first:
        arns = fill(first)
    with mock_aws():  # a test's own mock: resets moto's backends when it starts and stops
        pass
    with engine.active(), engine.lease(cqrs_tables_dir) as second:
        assert_fresh(second, first, arns)


def test_an_engine_on_a_url_never_recycles(moto_server: str, cqrs_tables_dir: Path) -> None:
    engine = Engine(moto_server, creates_active=True)
    with engine.active():
        with engine.lease(cqrs_tables_dir) as first:
            arns = fill(first)
        with engine.lease(cqrs_tables_dir) as second:
            assert_fresh(second, first, arns)
            assert len(table_items(first, first.schema.system_table("tasks"))) == 1
    assert engine.pool.reused == 0
