"""Conformance cases: what cqrs relies on from a DynamoDB engine, for any engine to run.

In the spirit of ``eventsourcing``'s recorder test cases: :class:`EngineConformance` is
a base class of pytest tests that exercise an engine through :class:`cqrs.store.Store`
and the app: conditional writes that fail as values (with the item as it was), updates
with ``if_not_exists`` and ``ADD``, transactions cancelled with reasons by name, batch
writes and reads past the request limits, query pages with a cursor, the ``code-index``
GSI, stream records in order per item with their new images, stream reads that resume
after a checkpoint, and an idempotent ``migrate``. Subclass it and say which engine::

    import pytest
    from cqrs.testing.conformance import EngineConformance
    from cqrs.testing.engine import Engine

    class TestMyEngine(EngineConformance):
        conflict_returns_item = None  # the engine may not send ALL_OLD back

        @pytest.fixture
        def engine(self) -> Engine:
            return Engine("http://127.0.0.1:8000")

The class name must start with ``Test`` for pytest to collect it; the base class is not
collected. Each test gets a fresh table prefix; the tables come from a ``cqrs.json``
listing one entity, :data:`ENTITY` (override the ``tables_dir`` fixture to use yours,
which must list it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from ..store import (
    Conflict,
    Page,
    TxUpdate,
    Update,
    Written,
    begins_with,
    equals,
    from_wire_item,
    item_absent,
    present,
)
from .engine import Engine, fresh_prefix
from .plugin import stream_records

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..store import Item, Store

#: The entity the conformance tables are made for.
ENTITY = "widget"
PK = "WIDGET#acme"


def widget(code: str, **attributes: Any) -> Item:
    """A data-table item of :data:`ENTITY` in tenant ``acme``."""
    return {
        "pk": PK,
        "sk": f"WIDGET#{code}",
        "tenantCode": "acme",
        "code": code,
        **attributes,
    }


class EngineConformance:
    """Tests of what cqrs relies on from an engine; override the ``engine`` fixture."""

    #: ``True``: a failed condition returns the item as it was (``ALL_OLD``), as DynamoDB
    #: does; ``None``: the item or nothing (DynamoDB Local sends nothing back).
    conflict_returns_item: ClassVar[bool | None] = True
    #: Whether empty strings are stored (DynamoDB since 2020; not the DynamoDB Local of CI).
    stores_empty_strings: ClassVar[bool] = True

    @pytest.fixture
    def engine(self) -> Engine:
        """The engine under test: override it in the subclass."""
        raise NotImplementedError("override the engine fixture to return an Engine")

    @pytest.fixture
    def tables_dir(self, tmp_path: Path) -> Path:
        """A ``tables/`` folder listing :data:`ENTITY` (the templates come from the package)."""
        (tmp_path / "cqrs.json").write_text(json.dumps({"tables": [ENTITY]}))
        return tmp_path

    @pytest.fixture
    def app(self, engine: Engine, tables_dir: Path) -> Iterator[Cqrs]:
        """A migrated app on a fresh prefix of ``engine``, the engine active around the test."""
        with engine.active(), engine.lease(tables_dir) as app:
            yield app

    @pytest.fixture
    def store(self, app: Cqrs) -> Store:
        """The app's storage gateway."""
        return app.clients.store

    @pytest.fixture
    def data(self, app: Cqrs) -> str:
        """The data table of :data:`ENTITY` (keyed ``pk``/``sk``, with ``code-index``)."""
        return app.schema.entity_tables(ENTITY).data

    @pytest.fixture
    def command(self, app: Cqrs) -> str:
        """The command table of :data:`ENTITY` (streamed with new and old images)."""
        return app.schema.entity_tables(ENTITY).command

    def check_conflict(self, conflict: Conflict | Written | None, was: Item | None) -> None:
        """``conflict`` is a :class:`Conflict` carrying ``was`` (or, if allowed, nothing)."""
        assert isinstance(conflict, Conflict), conflict
        if was is None or self.conflict_returns_item is None:
            assert conflict.current in (None, was)
        else:
            assert conflict.current == was

    # -- single items ---------------------------------------------------------------------

    def test_a_failed_put_condition_is_a_conflict_with_the_item(
        self, store: Store, data: str
    ) -> None:
        item = widget("A", n=1, tags=["x"])
        assert store.put(data, item, condition=item_absent()) is None

        conflict = store.put(data, widget("A", n=2), condition=item_absent())

        self.check_conflict(conflict, item)
        assert store.get(data, {"pk": PK, "sk": "WIDGET#A"}, consistent=True) == item

    def test_failed_update_and_delete_conditions_change_nothing(
        self, store: Store, data: str
    ) -> None:
        item = widget("B", version=3)
        store.put(data, item)
        key = {"pk": PK, "sk": "WIDGET#B"}

        updated = store.update(data, key, Update().set(version=4), condition=equals("version", 2))
        self.check_conflict(updated, item)
        self.check_conflict(store.delete(data, key, condition=equals("version", 2)), item)
        missing = {"pk": PK, "sk": "WIDGET#none"}
        self.check_conflict(store.delete(data, missing, condition=present("pk")), None)

        assert store.get(data, key, consistent=True) == item
        assert store.get(data, missing, consistent=True) is None

    def test_update_sets_if_absent_and_adds(self, store: Store, data: str) -> None:
        key = {"pk": PK, "sk": "WIDGET#C"}
        first = Update().set_if_absent(createdAt="first").add(count=1).set(note="one")
        second = Update().set_if_absent(createdAt="second").add(count=2).set(note="two")

        assert store.update(data, key, first, returns="ALL_NEW") == Written(
            {**key, "createdAt": "first", "count": 1, "note": "one"}
        )
        written = store.update(data, key, second, returns="UPDATED_NEW")

        assert isinstance(written, Written) and written.attributes["count"] == 3
        assert store.get(data, key, consistent=True) == {
            **key,
            "createdAt": "first",
            "count": 3,
            "note": "two",
        }

    def test_values_round_trip(self, store: Store, data: str) -> None:
        item = widget(
            "D",
            big=10**37 + 1,  # 38 significant digits
            ratio=Decimal("0.125"),
            negative=-7,
            flag=False,
            text="日本語 ✓",
            blob=b"\x00\x01",
            nested={"list": [1, "two", None, {"deep": True}], "map": {}},
            names={"a", "b"},
        )
        if self.stores_empty_strings:
            item["empty"] = ""
        store.put(data, item)

        got = store.get(data, {"pk": PK, "sk": "WIDGET#D"}, consistent=True)

        assert got == {**item, "ratio": 0.125}

    # -- many items ---------------------------------------------------------------------------

    def test_a_cancelled_transaction_names_its_reasons_and_applies_nothing(
        self, store: Store, data: str
    ) -> None:
        store.put(data, widget("E", version=1))
        ok = TxUpdate(data, {"pk": PK, "sk": "WIDGET#F"}, Update().set(version=1), item_absent())
        fails = TxUpdate(
            data, {"pk": PK, "sk": "WIDGET#E"}, Update().set(version=2), equals("version", 5)
        )

        cancelled = store.transact_write([ok, fails])

        assert cancelled is not None
        assert [r.code for r in cancelled.reasons] == ["None", "ConditionalCheckFailed"]
        assert not cancelled.failed(0) and cancelled.failed(1)
        if self.conflict_returns_item:
            assert cancelled.reasons[1].item == widget("E", version=1)
        assert store.get(data, {"pk": PK, "sk": "WIDGET#F"}, consistent=True) is None
        assert store.transact_write([ok]) is None
        assert store.get(data, {"pk": PK, "sk": "WIDGET#F"}, consistent=True) is not None

    def test_batch_write_and_get_past_the_request_limits(self, store: Store, data: str) -> None:
        items = [widget(f"G{i:03}", i=i) for i in range(130)]

        assert store.batch_write(data, puts=items) == 6  # 25 per request

        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
        missing = [{"pk": PK, "sk": "WIDGET#missing"}]
        got = store.batch_get(data, [*keys, *missing])
        assert sorted(got, key=lambda i: str(i["sk"])) == items
        assert store.batch_write(data, deletes=keys[:100]) == 4
        assert [i["sk"] for i in store.scan(data, consistent=True, page_size=7)] == [
            i["sk"] for i in items[100:]
        ]

    def test_query_pages_follow_the_cursor(self, store: Store, data: str) -> None:
        items = [widget(f"H{i}", even=i % 2 == 0) for i in range(7)]
        store.batch_write(data, puts=[*items, widget("Z")])
        key = equals("pk", PK) & begins_with("sk", "WIDGET#H")

        for descending in (False, True):
            seen: list[Item] = []
            page = Page([], None)
            while True:
                page = store.query_page(
                    data, key, limit=3, start=page.last_key, descending=descending, consistent=True
                )
                assert len(page.items) <= 3
                seen += page.items
                if page.last_key is None:
                    break
            assert seen == (items[::-1] if descending else items)
        evens = store.query_page(data, key, limit=2, filter=equals("even", True), consistent=True)
        assert [i["code"] for i in evens.items] == ["H0", "H2"] and evens.last_key is not None

    def test_the_code_index_finds_items_by_tenant_and_code(self, store: Store, data: str) -> None:
        store.batch_write(data, puts=[widget("K1"), widget("K2"), {**widget("K3"), "pk": "X"}])
        store.put(data, {**widget("K4"), "tenantCode": "other"})
        store.put(data, {"pk": PK, "sk": "WIDGET#uncoded", "tenantCode": "acme"})

        found = list(store.query(data, equals("tenantCode", "acme"), index="code-index"))
        one = store.query(
            data, equals("tenantCode", "acme") & equals("code", "K2"), index="code-index"
        )

        assert [i["code"] for i in found] == ["K1", "K2", "K3"]  # sorted by code, sparse
        assert list(one) == [widget("K2")]

    # -- streams and tables ----------------------------------------------------------------------

    def test_stream_records_come_in_order_per_item_with_new_images(
        self, app: Cqrs, store: Store, command: str
    ) -> None:
        keys = [{"pk": PK, "sk": f"WIDGET#S{i}@1"} for i in range(3)]
        for key in keys:  # commands are created with a conditional put, as the framework does
            store.put(command, {**key, "step": 1}, condition=item_absent())
        for step in (2, 3):
            for key in keys:
                store.update(command, key, Update().set(step=step))
        store.delete(command, keys[0])

        records = stream_records(app)

        assert len(records) == 10 and all(r["eventSourceARN"] for r in records)
        for key in keys:
            mine = [r for r in records if from_wire_item(r["dynamodb"]["Keys"]) == key]
            names = [r["eventName"] for r in mine]
            images = [from_wire_item(r["dynamodb"].get("NewImage", {})) for r in mine]
            assert images[:3] == [{**key, "step": n} for n in (1, 2, 3)]
            assert from_wire_item(mine[1]["dynamodb"]["OldImage"]) == {**key, "step": 1}
            if key is keys[0]:
                assert names == ["INSERT", "MODIFY", "MODIFY", "REMOVE"]
                assert from_wire_item(mine[3]["dynamodb"]["OldImage"]) == {**key, "step": 3}
            else:
                assert names == ["INSERT", "MODIFY", "MODIFY"]

    def test_stream_reads_resume_after_the_checkpoint(
        self, app: Cqrs, store: Store, command: str
    ) -> None:
        from ..store.streams import StreamsGateway
        from ..sync.follower import MemoryCheckpoints, StreamFollower

        seen: list[str] = []
        refuse: set[str] = set()

        def handler(event: dict[str, Any]) -> dict[str, Any]:
            failures = []
            for record in event["Records"]:
                sk = str(from_wire_item(record["dynamodb"]["Keys"])["sk"])
                seen.append(sk)
                if sk in refuse:
                    failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
                    refuse.discard(sk)
            return {"batchItemFailures": failures}

        gateway = StreamsGateway(app.clients.dynamodb, app.clients.streams)
        follower = StreamFollower(
            gateway, [command], handler, checkpoints=MemoryCheckpoints(), batch_size=2
        )

        def write(*codes: str) -> None:
            for code in codes:
                store.put(command, {"pk": PK, "sk": f"WIDGET#{code}@1"}, condition=item_absent())

        write("R1", "R2", "R3")
        assert follower.poll().records == 3 and follower.poll().records == 0
        write("R4", "R5", "R6")
        refuse.add("WIDGET#R5@1")  # fails once: the checkpoint stops just before it
        follower.drain()

        assert seen == [f"WIDGET#R{n}@1" for n in (1, 2, 3, 4, 5, 5, 6)]

    def test_migrate_is_idempotent(self, app: Cqrs, engine: Engine, tables_dir: Path) -> None:
        assert app.migrate() == []  # the fresh-prefix tables are what migrate makes

        other = engine.app(tables_dir, fresh_prefix(), migrate=False)
        first = other.migrate()
        created = {c.table for c in first if c.action == "create-table"}
        assert created == {d.name for d in other.schema.definitions()}
        assert other.migrate() == []
        assert other.migrate(dry_run=True) == []
