"""Command status notifications: the event, the in-process bus and SNS (on moto)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import injector
import pytest

from cqrs import Cqrs
from cqrs.core.errors import CommandNotAppliedError, OperationalError
from cqrs.events import Event
from cqrs.events.bus import EventBus
from cqrs.events.notifications import TOPIC_ENV, CommandStatusEvent, Notifier
from cqrs.testing import REGION, counting, external_engine

needs_moto = pytest.mark.skipif(
    external_engine() is not None, reason="SNS needs the in-process moto mock"
)


@pytest.fixture(autouse=True)
def _no_topic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOPIC_ENV, raising=False)


@pytest.fixture
def topic(cqrs_app: Cqrs) -> Iterator[tuple[str, Any]]:
    """An SNS topic with an SQS queue subscribed to it: (topic ARN, read_messages)."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="cqrs-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def read_messages() -> list[dict[str, Any]]:
        """The SNS envelopes delivered to the queue so far."""
        envelopes: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return envelopes
            for m in messages:
                envelopes.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    yield topic_arn, read_messages


def test_command_status_event_defaults_and_notification_shape() -> None:
    event = CommandStatusEvent(
        pk="ORDER#acme", sk="ORDER#1@3", table="dev-order-command", status="failed", error="bad"
    )

    assert event.action == "command-status"
    assert event.tenant_code == "acme" and event.version == 3
    assert event.id == "dev-order-command#ORDER#acme#ORDER#1@3"
    assert event.to_notification() == {
        "action": "command-status",
        "pk": "ORDER#acme",
        "sk": "ORDER#1@3",
        "table": "dev-order-command",
        "id": "dev-order-command#ORDER#acme#ORDER#1@3",
        "tenantCode": "acme",
        "content": {"status": "sync_data:FAILED", "error": "bad"},  # MBC's status string
    }
    assert (event.status, event.mbc_status) == ("failed", "sync_data:FAILED")
    parsed = CommandStatusEvent.model_validate(event.to_notification() | {"status": "failed"})
    assert parsed.tenant_code == "acme"
    explicit = CommandStatusEvent(
        pk="P#x", sk="S@1", table="t", status="applied", tenant_code="other", id="n1"
    )
    assert (explicit.tenant_code, explicit.id) == ("other", "n1")
    requested = CommandStatusEvent(pk="P#x", sk="S@1", table="t", status="applied", request_id="r")
    assert requested.id == "r" and "requestId" not in requested.to_notification()  # MBC's id


def test_nothing_is_built_when_nobody_listens() -> None:
    notifier = Notifier(EventBus())
    consumed: list[int] = []

    def events() -> Iterator[CommandStatusEvent]:
        consumed.append(1)
        yield CommandStatusEvent(pk="P#t", sk="S@1", table="t", status="applied")

    assert not notifier.enabled
    assert notifier.command_status("P#t", "S@1", "t", "applied") is None
    assert notifier.command_statuses(events()) == 0
    assert consumed == []


def test_app_notifier_publishes_on_the_app_bus(cqrs_app: Cqrs) -> None:
    seen: list[CommandStatusEvent] = []
    cqrs_app.events.on(CommandStatusEvent)(seen.append)
    notifier = cqrs_app.notifier

    assert notifier is cqrs_app.notifier and notifier.bus is cqrs_app.events
    assert notifier.topic_arn is None and notifier.enabled
    event = notifier.command_status(
        "ORDER#acme", "ORDER#1@2", "order-command", "failed", error=ValueError("no stock")
    )

    assert seen == [event]
    assert seen[0].error == "ValueError: no stock" and seen[0].status == "failed"


def test_injector_built_status_handler(cqrs_app: Cqrs) -> None:
    got: list[tuple[Cqrs, str]] = []

    @cqrs_app.events.on(CommandStatusEvent)
    class StatusPush:
        @injector.inject
        def __init__(self, app: Cqrs) -> None:
            self.app = app

        def handle(self, event: CommandStatusEvent) -> None:
            got.append((self.app, event.status))

    cqrs_app.notifier.command_statuses(
        CommandStatusEvent(pk="ORDER#acme", sk=f"ORDER#1@{v}", table="t", status="applied")
        for v in (1, 2)
    )
    assert got == [(cqrs_app, "applied"), (cqrs_app, "applied")]


def test_catch_all_subscribers_enable_notifications() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(Event)(seen.append)
    assert Notifier(bus).command_status("P#t", "S@1", "t", "applied") is not None
    assert len(seen) == 1


def test_handler_errors_are_logged_unless_asked_to_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()

    @bus.on(CommandStatusEvent)
    def broken(event: CommandStatusEvent) -> None:
        raise RuntimeError("handler down")

    with caplog.at_level(logging.ERROR, "cqrs.events.notifications"):
        assert Notifier(bus).command_status("P#t", "S@1", "t", "applied") is not None
    assert "command-status handler failed" in caplog.text
    with pytest.raises(RuntimeError, match="handler down"):
        Notifier(bus, raise_errors=True).command_status("P#t", "S@1", "t", "applied")


@needs_moto
def test_sns_notification_shape(cqrs_app: Cqrs, topic: tuple[str, Any]) -> None:
    topic_arn, read_messages = topic
    notifier = Notifier(cqrs_app.events, cqrs_app.settings, topic_arn=topic_arn, raise_errors=True)

    notifier.command_status("ORDER#acme", "ORDER#1@1", "dev-order-command", "applied", source="api")

    (envelope,) = read_messages()
    assert envelope["TopicArn"] == topic_arn
    assert envelope["MessageAttributes"]["action"] == {
        "Type": "String",
        "Value": "command-status",
    }
    assert json.loads(envelope["Message"]) == {
        "action": "command-status",
        "pk": "ORDER#acme",
        "sk": "ORDER#1@1",
        "table": "dev-order-command",
        "id": "dev-order-command#ORDER#acme#ORDER#1@1",
        "tenantCode": "acme",
        "content": {"status": "finish:FINISHED", "source": "api"},
    }


@needs_moto
def test_topic_from_env_and_lazy_client(
    cqrs_app: Cqrs, topic: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, read_messages = topic
    monkeypatch.setenv(TOPIC_ENV, topic_arn)

    notifier = cqrs_app.notifier  # first use: reads the environment
    assert notifier.topic_arn == topic_arn and notifier._sns is None
    notifier.command_status("ORDER#acme", "ORDER#1@1", "t", "applied")

    assert notifier.sns.meta.region_name == cqrs_app.settings.region
    assert [json.loads(e["Message"])["sk"] for e in read_messages()] == ["ORDER#1@1"]


@needs_moto
def test_batches_use_publish_batch(cqrs_app: Cqrs, topic: tuple[str, Any]) -> None:
    topic_arn, read_messages = topic
    sns = boto3.client("sns", region_name=REGION)
    notifier = Notifier(topic_arn=topic_arn, sns=sns, raise_errors=True)

    with counting(sns) as requests:
        sent = notifier.command_statuses(
            CommandStatusEvent(pk="ORDER#acme", sk=f"ORDER#1@{v}", table="t", status="applied")
            for v in range(1, 13)
        )

    assert sent == 12
    assert requests.by_operation == {"PublishBatch": 2}
    sks = sorted(json.loads(e["Message"])["sk"] for e in read_messages())
    assert sks == sorted(f"ORDER#1@{v}" for v in range(1, 13))


@needs_moto
def test_no_sns_request_without_a_topic(cqrs_app: Cqrs) -> None:
    sns = boto3.client("sns", region_name=REGION)
    bus = EventBus()
    seen: list[CommandStatusEvent] = []
    bus.on(CommandStatusEvent)(seen.append)

    with counting(sns) as requests:
        Notifier(bus, sns=sns).command_status("ORDER#acme", "ORDER#1@1", "t", "applied")
        Notifier(EventBus(), sns=sns).command_status("ORDER#acme", "ORDER#1@2", "t", "applied")

    assert requests.total == 0 and len(seen) == 1


@needs_moto
def test_sns_failures(cqrs_app: Cqrs, caplog: pytest.LogCaptureFixture) -> None:
    missing = f"arn:aws:sns:{REGION}:123456789012:missing"
    sns = boto3.client("sns", region_name=REGION)

    with pytest.raises(OperationalError, match=r"SNS publish to .*missing failed"):
        Notifier(topic_arn=missing, sns=sns, raise_errors=True).command_status(
            "P#t", "S@1", "t", "applied"
        )
    with caplog.at_level(logging.ERROR, "cqrs.events.notifications"):
        Notifier(topic_arn=missing, sns=sns).command_status("P#t", "S@1", "t", "applied")
    assert "SNS publish to" in caplog.text


# -- wired into projection: the synchronizer and publish_sync -------------------


def _order(code: str, version: int = 0) -> Any:
    from cqrs import CommandInput

    return CommandInput(
        pk="ORDER#acme", sk=f"ORDER#{code}", code=code, name=code, tenant_code="acme",
        type="ORDER", version=version, attributes={"v": version},
    )  # fmt: skip


def test_synchronizer_publishes_applied_statuses_once(cqrs_app: Any, drain: Any) -> None:
    from cqrs import InvokeContext
    from cqrs.testing import stream_records

    seen: list[tuple[str, str, str, str | None]] = []
    cqrs_app.events.on(CommandStatusEvent)(
        lambda e: seen.append((e.sk, e.status, e.table, e.request_id))
    )
    ctx = InvokeContext(tenant_code="acme", request_id="req-1")
    orders = cqrs_app.entity("order")
    orders.commands.publish_async(_order("1"), ctx)
    orders.commands.publish_async(_order("1", 1), InvokeContext(tenant_code="acme"))
    drain(cqrs_app)
    table = orders.tables.command
    # The command's request id travels to the status (MBC's notification id).
    assert seen == [
        ("ORDER#1@1", "applied", table, "req-1"),
        ("ORDER#1@2", "applied", table, None),
    ]
    cqrs_app.handle_event({"Records": stream_records(cqrs_app)})  # redelivery: nothing new
    assert len(seen) == 2


def test_failed_version_and_publish_sync_statuses(cqrs_app: Any) -> None:
    from cqrs import InvokeContext

    class Fails:
        def up(self, command: Any) -> None:
            if command.version == 2:
                raise ValueError("boom")

        def down(self, command: Any) -> None:
            pass

    seen: list[tuple[str, str, str | None]] = []
    cqrs_app.events.on(CommandStatusEvent)(lambda e: seen.append((e.sk, e.status, e.error)))
    orders = cqrs_app.register("order", handlers=[Fails()])
    ctx = InvokeContext(tenant_code="acme")
    orders.commands.publish_sync(_order("1"), ctx)
    with pytest.raises(CommandNotAppliedError, match="boom") as info:
        orders.commands.publish_sync(_order("1", 1), ctx)
    assert isinstance(info.value.cause, ValueError) and info.value.command.version == 2
    assert seen == [
        ("ORDER#1@1", "applied", None),
        ("ORDER#1@2", "failed", "ValueError: boom"),
    ]
