"""Commands marked ``syncMode: "SYNC"`` (MBC's ``publishSync``, our ``publish_sync``).

Their writer projected them, so the synchronizer acknowledges and skips their stream
records, as MBC's ``DefaultEventFactory`` does; a ``publish_sync`` whose projection
failed hands its command back to the stream (a MODIFY removing the marker), which
applies it. Records come from moto's DynamoDB Streams (``stream_records``).
"""

from __future__ import annotations

from typing import Any

import pytest

from cqrs import SYSTEM, Command, CommandInput, CommandPartialInput, Cqrs, InvokeContext
from cqrs.core.errors import CommandNotAppliedError
from cqrs.testing import RequestCounter, clear_table, stream_records, table_items
from tests.test_mbc_compat import KEY, mbc_command, mbc_put

pytestmark = pytest.mark.engine  # also on DynamoDB Local in CI

CTX = InvokeContext(tenant_code="acme", user_id="alice")


def order(version: int, name: str = "x", code: str = "x") -> CommandInput:
    return CommandInput(
        pk="ORDER#acme", sk=f"ORDER#{code}", code=code, name=name, tenant_code="acme",
        type="ORDER", version=version, attributes={"name": name},
    )  # fmt: skip


def command_item(app: Cqrs, version: int, code: str = "x") -> dict[str, Any]:
    items = table_items(app, app.entity("order").tables.command, pk="ORDER#acme")
    (item,) = [i for i in items if i["sk"] == f"ORDER#{code}@{version}"]
    return item


def sync_now(app: Cqrs) -> Any:
    """Every pending stream record through the synchronizer, in one batch."""
    report = app.synchronizer.handle_event({"Records": stream_records(app)})
    app.sync()  # move the follower's checkpoints past them
    return report


def test_publish_sync_marks_its_command_and_sync_skips_it(cqrs_app: Cqrs) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_sync(order(0, "v1"), CTX)
    commands.publish_sync(order(1, "v2"), CTX)
    assert command_item(cqrs_app, 1)["syncMode"] == "SYNC"
    history_before = table_items(cqrs_app, cqrs_app.entity("order").tables.history)

    records = stream_records(cqrs_app)
    with RequestCounter(cqrs_app.clients.dynamodb) as counter:
        report = cqrs_app.synchronizer.handle_event({"Records": records})
    assert (report.received, report.ignored, report.applied, report.failed) == (2, 2, 0, [])
    assert counter.total == 0  # nothing read or written for them
    assert table_items(cqrs_app, cqrs_app.entity("order").tables.history) == history_before
    row = cqrs_app.entity("order").data.get_item(*KEY, consistent=True, context=SYSTEM)
    assert row is not None and row["version"] == 2 and "syncMode" not in row
    assert all("syncMode" not in h for h in history_before)


def test_a_raw_mbc_sync_command_is_skipped(cqrs_app: Cqrs) -> None:
    # MBC's publishSync: the command marked SYNC, the data row written by MBC itself.
    command = mbc_command(1, "2024-05-01T10:00:00.000Z", syncMode="SYNC", status="finish:FINISHED")
    mbc_put(cqrs_app, command)
    mbc_row = {**command, "sk": "ORDER#x", "cpk": "ORDER#acme", "csk": "ORDER#x@1", "name": "M"}
    for name in ("syncMode", "status", "source"):
        mbc_row.pop(name)
    cqrs_app.clients.store.put(cqrs_app.entity("order").tables.data, mbc_row)

    report = sync_now(cqrs_app)
    assert (report.ignored, report.applied, len(report.rejected)) == (1, 0, 0)
    row = cqrs_app.entity("order").data.get_item(*KEY, consistent=True, context=SYSTEM)
    assert row == mbc_row  # untouched: MBC projected it
    assert table_items(cqrs_app, cqrs_app.entity("order").tables.history) == []


def test_versions_after_a_sync_command_are_not_marked(cqrs_app: Cqrs, drain: Any) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_sync(order(0, "v1"), CTX)
    commands.publish_async(order(1, "v2"), CTX)
    commands.publish_partial_update_async(
        CommandPartialInput(pk="ORDER#acme", sk="ORDER#x", version=2, name="v3"), CTX
    )
    commands.duplicate("ORDER#acme", "ORDER#x@1", CTX)
    assert [("syncMode" in command_item(cqrs_app, v)) for v in (1, 2, 3, 4)] == [
        True, False, False, False,
    ]  # fmt: skip
    report = sync_now(cqrs_app)
    assert (report.ignored, report.applied) == (1, 3)
    data = cqrs_app.entity("order").data.get(*KEY, context=SYSTEM)
    assert data is not None and data.version == 4 and data.name == "v1"


class FailsOnce:
    """A custom projection that fails the first time it sees a version."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def up(self, command: Command[Any]) -> None:
        self.seen.append(command.version)
        if self.seen.count(command.version) == 1:
            raise RuntimeError(f"not now: {command.version}")

    def down(self, command: Command[Any]) -> None:
        pass


def test_a_failed_publish_sync_hands_its_command_to_the_stream(cqrs_app: Cqrs) -> None:
    handler = FailsOnce()
    commands = cqrs_app.register("order", handlers=[handler]).commands
    with pytest.raises(CommandNotAppliedError, match="the stream will apply it") as caught:
        commands.publish_sync(order(0, "v1"), CTX)
    assert caught.value.command is not None and caught.value.command.version == 1
    assert "syncMode" not in command_item(cqrs_app, 1)  # handed back
    assert cqrs_app.entity("order").data.get(*KEY, context=SYSTEM) is None

    report = sync_now(cqrs_app)  # the INSERT (SYNC) is skipped, the MODIFY applied
    assert (report.received, report.ignored, report.applied, report.failed) == (2, 1, 1, [])
    data = cqrs_app.entity("order").data.get(*KEY, context=SYSTEM)
    assert data is not None and data.version == 1 and data.name == "v1"
    assert handler.seen == [1, 1]


def test_rebuild_reproduces_the_read_model_of_sync_commands(cqrs_app: Cqrs) -> None:
    entity = cqrs_app.entity("order")
    entity.commands.publish_sync(order(0, "v1"), CTX)
    entity.commands.publish_sync(order(1, "v2"), CTX)
    entity.commands.publish_sync(order(0, "other", code="y"), CTX)
    data = table_items(cqrs_app, entity.tables.data)
    history = table_items(cqrs_app, entity.tables.history)
    assert cqrs_app.rebuild("order").changed is False  # the log implies exactly this

    clear_table(cqrs_app, entity.tables.data)
    clear_table(cqrs_app, entity.tables.history)
    report = cqrs_app.rebuild("order")
    assert (report.data_written, report.history_written) == (2, 3)
    assert table_items(cqrs_app, entity.tables.data) == data
    assert table_items(cqrs_app, entity.tables.history) == history


def test_a_publish_sync_whose_reply_was_lost_is_applied_by_the_stream(cqrs_app: Cqrs) -> None:
    from cqrs.core.errors import OperationalError
    from cqrs.testing.faults import Fault, FaultInjector

    commands = cqrs_app.entity("order").commands
    lost = Fault("PutItem", 1, "after", "timeout")  # stored, but the caller never hears
    with FaultInjector(cqrs_app.clients.dynamodb, [lost]), pytest.raises(OperationalError):
        commands.publish_sync(order(0, "v1"), CTX)
    assert "syncMode" not in command_item(cqrs_app, 1)  # handed to the stream
    report = sync_now(cqrs_app)
    assert (report.ignored, report.applied) == (1, 1)
    data = cqrs_app.entity("order").data.get(*KEY, context=SYSTEM)
    assert data is not None and data.version == 1


def test_a_failed_hand_back_is_tried_again(cqrs_app: Cqrs) -> None:
    from cqrs.testing.faults import Fault, FaultInjector

    commands = cqrs_app.register("order", handlers=[FailsOnce()]).commands
    faults = [Fault("UpdateItem", 1, "before", "throttle")]  # the first hand-back
    with FaultInjector(cqrs_app.clients.dynamodb, faults), pytest.raises(CommandNotAppliedError):
        commands.publish_sync(order(0, "v1"), CTX)  # handlers fail before the data write
    assert "syncMode" not in command_item(cqrs_app, 1)
    assert sync_now(cqrs_app).applied == 1
