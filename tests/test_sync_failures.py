"""Poison commands: bounded attempts, the stuck alarm, the stuck list, redrive.

Driven by moto's real stream records through the local follower (one ``poll`` is
one Lambda invocation: a failed record stops its shard until the next poll).
"""

from __future__ import annotations

from typing import Any

import pytest

from cqrs import SYSTEM, Command, CommandInput, Cqrs, InvokeContext
from cqrs.cli import main
from cqrs.core.errors import ConfigurationError, ThrottledError, UnknownEntityError
from cqrs.core.keys import add_version, remove_version
from cqrs.events.notifications import EntityStuckEvent
from cqrs.store.codec import to_wire_item as serialize
from cqrs.sync.failures import SyncFailure, SyncFailures, counts_as_attempt
from cqrs.sync.follower import StreamFollower
from cqrs.sync.projection import EntityOutcome, MissingCommandError
from cqrs.sync.rebuild import expected_read_model
from cqrs.testing import RequestCounter, stream_records, table_items
from cqrs.testing.faults import Fault, FaultInjector

MAX_ATTEMPTS = 3


class Poison:
    """A custom projection that fails chosen (sk, version)s until healed."""

    def __init__(self, *bad: tuple[str, int]) -> None:
        self.bad = set(bad)
        self.healed = False
        self.seen: list[tuple[str, int]] = []

    def up(self, command: Command[Any]) -> None:
        key = (remove_version(command.sk), command.version)
        self.seen.append(key)
        if not self.healed and key in self.bad:
            raise RuntimeError(f"cannot project {key}")

    def down(self, command: Command[Any]) -> None:
        self.seen.append((remove_version(command.sk), -command.version))


@pytest.fixture
def app(cqrs_app: Cqrs) -> Cqrs:
    """The test app with ``sync_max_attempts=3`` (same tables and clients)."""
    settings = cqrs_app.settings.model_copy(update={"sync_max_attempts": MAX_ATTEMPTS})
    return Cqrs(settings, clients=cqrs_app.clients)


def publish(app: Cqrs, code: str, n: int, *, tenant: str = "acme") -> None:
    app.entity("order").commands.publish_async(
        CommandInput(
            pk=f"ORDER#{tenant}", sk=f"ORDER#{code}", code=code, name=f"order {code}",
            tenant_code=tenant, type="ORDER", version=-1, attributes={"n": n},
        ),
        InvokeContext(tenant_code=tenant, user_id="u1"),
    )  # fmt: skip


def data_version(app: Cqrs, code: str, tenant: str = "acme") -> int | None:
    row = app.entity("order").data.get(f"ORDER#{tenant}", f"ORDER#{code}", context=SYSTEM)
    return row.version if row is not None else None


def alarms(app: Cqrs) -> list[EntityStuckEvent]:
    seen: list[EntityStuckEvent] = []
    app.events.subscribe(EntityStuckEvent)(seen.append)
    return seen


def poisoned_shop(app: Cqrs, poison: Poison) -> tuple[StreamFollower, list[EntityStuckEvent]]:
    """ORDER#1 v1, ORDER#2 v1, ORDER#1 v2 (poison), ORDER#1 v3, ORDER#2 v2, in that order."""
    app.register("order", handlers=[poison])
    publish(app, "1", 1)
    publish(app, "2", 1)
    publish(app, "1", 2)
    publish(app, "1", 3)
    publish(app, "2", 2)
    return app.follower(batch_size=2), alarms(app)


@pytest.mark.engine
def test_a_poison_command_gets_bounded_attempts_then_the_shard_moves_on(app: Cqrs) -> None:
    poison = Poison(("ORDER#1", 2))
    follower, raised = poisoned_shop(app, poison)

    for attempt in range(1, MAX_ATTEMPTS):
        report = follower.poll()
        assert report.failed == 2, attempt  # ORDER#1@2 and @3 are left for the retry
        assert data_version(app, "2") == 1  # ORDER#2 v2 is behind the failed record
        (failure,) = app.sync_failures.failing("order")
        assert (failure.attempts, failure.stuck) == (attempt, False)
    assert raised == []

    last = follower.poll()

    assert last.failed == 0  # acknowledged: the stream moves on ...
    assert data_version(app, "2") == 2  # ... and the records behind it are applied
    assert data_version(app, "1") == 1  # the entity waits, visibly:
    (failure,) = app.sync_failures.failing("order")
    assert (failure.pk, failure.sk, failure.failed_version) == ("ORDER#acme", "ORDER#1", 2)
    assert (failure.attempts, failure.stuck, failure.waiting_through) == (MAX_ATTEMPTS, True, 3)
    assert failure.data_version == 1 and failure.tenant_code == "acme"
    assert failure.error == "RuntimeError: cannot project ('ORDER#1', 2)"
    (alarm,) = raised
    assert (alarm.action, alarm.entity, alarm.sk, alarm.failed_version) == (
        "entity-stuck", "order", "ORDER#1@2", 2
    )  # fmt: skip
    assert (alarm.attempts, alarm.waiting_through) == (MAX_ATTEMPTS, 3)
    assert alarm.table == app.entity("order").tables.command
    assert follower.poll().records == 0


def test_a_later_version_of_a_stuck_entity_retries_once_and_waits_behind_it(app: Cqrs) -> None:
    poison = Poison(("ORDER#1", 2))
    follower, raised = poisoned_shop(app, poison)
    for _ in range(MAX_ATTEMPTS):
        follower.poll()
    publish(app, "1", 4)

    report = follower.poll()

    assert (report.records, report.failed) == (1, 0)  # one more try, then acknowledged
    (failure,) = app.sync_failures.failing("order")
    assert (failure.attempts, failure.waiting_through) == (MAX_ATTEMPTS + 1, 4)
    assert len(raised) == 1  # the alarm is raised once per stuck version
    assert data_version(app, "1") == 1
    assert poison.seen.count(("ORDER#1", 3)) == 0  # nothing ran past the failed version


@pytest.mark.engine
def test_redrive_applies_the_stuck_entity_through_its_latest_version(app: Cqrs) -> None:
    poison = Poison(("ORDER#1", 2))
    follower, _ = poisoned_shop(app, poison)
    for _ in range(MAX_ATTEMPTS):
        follower.poll()
    publish(app, "1", 4)
    follower.poll()
    poison.healed = True  # the handler's bug is fixed and deployed
    poison.seen.clear()

    (result,) = app.sync_failures.redrive("order")

    assert result.ok and result.applied_through == 4
    assert (result.failure.sk, result.failure.failed_version) == ("ORDER#1", 2)
    assert poison.seen == [("ORDER#1", 2), ("ORDER#1", 3), ("ORDER#1", 4)]
    tables = app.entity("order").tables
    want_data, want_history = expected_read_model(
        [c for c in table_items(app, tables.command) if "@" in c["sk"]]
    )
    assert {(i["pk"], i["sk"]): i for i in table_items(app, tables.data)} == want_data
    assert {(i["pk"], i["sk"]): i for i in table_items(app, tables.history)} == want_history
    assert app.sync_failures.failing() == []
    assert app.sync_failures.get("order", "ORDER#acme", "ORDER#1") is None
    assert app.sync_failures.redrive("order") == []


def test_a_redrive_that_fails_again_keeps_the_entity_stuck(app: Cqrs) -> None:
    poison = Poison(("ORDER#1", 2))
    follower, raised = poisoned_shop(app, poison)
    for _ in range(MAX_ATTEMPTS):
        follower.poll()

    (result,) = app.sync_failures.redrive("order", pk="ORDER#acme", sk="ORDER#1")

    assert not result.ok and isinstance(result.error, RuntimeError)
    assert result.applied_through == 1
    (failure,) = app.sync_failures.failing("order")
    assert (failure.attempts, failure.stuck) == (MAX_ATTEMPTS + 1, True)
    assert len(raised) == 1
    assert app.sync_failures.redrive("order", pk="ORDER#acme", sk="ORDER#2") == []


def test_a_missing_version_makes_the_entity_stuck_like_a_poison_handler(app: Cqrs) -> None:
    """Only v3 reaches the handler, and v2 is gone from the log (a TTL expired it after the
    stream dropped its record): no retry can bring it back."""
    for n in (1, 2, 3):
        publish(app, "1", n)
    v1, _, v3 = stream_records(app)
    tables = app.entity("order").tables
    app.clients.dynamodb.delete_item(
        TableName=tables.command, Key=serialize({"pk": "ORDER#acme", "sk": "ORDER#1@2"})
    )
    app.handle_event({"Records": [v1]})

    responses = [app.handle_event({"Records": [v3]}) for _ in range(MAX_ATTEMPTS)]

    v3_failed = [{"itemIdentifier": v3["dynamodb"]["SequenceNumber"]}]
    assert [r["batchItemFailures"] for r in responses] == [v3_failed] * (MAX_ATTEMPTS - 1) + [[]]
    (failure,) = app.sync_failures.failing("order")
    assert failure.stuck and failure.failed_version == 2 and failure.waiting_through == 3
    assert failure.error.startswith("MissingCommandError")


def test_dynamodb_failures_are_retried_without_counting_towards_stuck(app: Cqrs) -> None:
    """Throttling is not the command's fault: the stream keeps retrying, nothing is stuck."""
    publish(app, "1", 1)
    follower = app.follower()
    polls = MAX_ATTEMPTS + 2
    schedule = [Fault("UpdateItem", n, "before", "throttle") for n in range(1, polls + 1)]

    with FaultInjector(app.clients.dynamodb, schedule) as faults:
        reports = [follower.poll() for _ in range(polls)]

    assert len(faults.injected) == polls
    assert [r.failed for r in reports] == [1] * polls
    assert table_items(app, app.sync_failures.table) == []
    assert follower.poll().failed == 0 and data_version(app, "1") == 1


def test_a_row_left_by_an_entity_that_recovered_is_dropped_by_the_list(app: Cqrs) -> None:
    poison = Poison(("ORDER#1", 2))
    follower, raised = poisoned_shop(app, poison)
    follower.poll()  # attempt 1 fails
    poison.healed = True
    assert follower.poll().failed == 0  # attempt 2 succeeds on its own
    assert len(table_items(app, app.sync_failures.table)) == 1  # success costs no request to clear

    assert app.sync_failures.failing() == []
    assert table_items(app, app.sync_failures.table) == []
    assert raised == []


def test_the_list_is_per_tenant_and_per_entity(app: Cqrs) -> None:
    app.register("order", handlers=[Poison(("ORDER#1", 1))])
    publish(app, "1", 1, tenant="acme")
    publish(app, "1", 1, tenant="beta")
    follower = app.follower()
    for _ in range(MAX_ATTEMPTS):
        follower.poll()

    assert {f.tenant_code for f in app.sync_failures.failing()} == {"acme", "beta"}
    (acme,) = app.sync_failures.failing("order", tenant_code="acme")
    assert (acme.pk, acme.data_version, acme.failed_version) == ("ORDER#acme", 0, 1)
    assert app.sync_failures.failing("cat") == []
    with pytest.raises(UnknownEntityError):
        app.sync_failures.failing("nope")


def test_success_costs_no_request_and_a_failed_attempt_two(app: Cqrs) -> None:
    poison = Poison(("ORDER#1", 2))
    app.register("order", handlers=[poison])
    publish(app, "1", 1)
    publish(app, "1", 2)
    follower = app.follower()

    with RequestCounter(app.clients.dynamodb) as counter:
        follower.poll()

    # only the failure row touches GetItem / PutItem: a read and a conditional write
    assert (counter.by_operation["GetItem"], counter.by_operation["PutItem"]) == (1, 1)
    poison.bad.clear()
    with RequestCounter(app.clients.dynamodb) as counter:
        follower.poll()
    assert (counter.by_operation["GetItem"], counter.by_operation["PutItem"]) == (0, 0)


def test_concurrent_recorders_count_every_attempt(app: Cqrs) -> None:
    """Two workers record the same entity at once: the optimistic lock loses no attempt."""
    failures = app.sync_failures
    key = ("ORDER#acme", "ORDER#1")
    real_put = failures._put
    raced = []

    def put_after_a_rival(failure: SyncFailure, old: SyncFailure | None) -> bool:
        if not raced:  # a rival records its attempt between our read and our write
            raced.append(True)
            failures.record("order", key, 2, 2, "rival")
        return real_put(failure, old)

    failures._put = put_after_a_rival  # type: ignore[method-assign]
    failure, newly_stuck = failures.record("order", key, 2, 3, RuntimeError("ours"))

    assert (failure.attempts, failure.waiting_through, newly_stuck) == (2, 3, False)
    assert failure.error == "RuntimeError: ours"


def test_a_new_failed_version_starts_counting_again(app: Cqrs) -> None:
    failures = app.sync_failures
    key = ("ORDER#acme", "ORDER#1")
    for _ in range(MAX_ATTEMPTS):
        failure, newly_stuck = failures.record("order", key, 2, 2, "bad v2")
    assert failure.stuck and newly_stuck

    failure, newly_stuck = failures.record("order", key, 3, 3, "bad v3")

    assert (failure.failed_version, failure.attempts, failure.stuck, newly_stuck) == (
        3, 1, False, False
    )  # fmt: skip
    assert failure.first_failed_at == failure.last_failed_at


def test_what_counts_as_an_attempt() -> None:
    key = ("ORDER#acme", "ORDER#1")
    handler = EntityOutcome(key, error=ThrottledError("handler's own"), in_handler=True)
    assert counts_as_attempt(handler)
    assert counts_as_attempt(EntityOutcome(key, error=MissingCommandError("gone")))
    assert counts_as_attempt(EntityOutcome(key, error=ValueError("bad item")))
    assert not counts_as_attempt(EntityOutcome(key, error=ThrottledError("slow down")))
    assert not counts_as_attempt(EntityOutcome(key))


def test_max_attempts_is_validated(app: Cqrs) -> None:
    with pytest.raises(ConfigurationError):
        SyncFailures(
            app.clients.dynamodb, "t", app.schema, lambda e: app.entity(e).projector,
            max_attempts=0,
        )  # fmt: skip


def test_alarm_goes_to_sns(app: Cqrs, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import boto3

    region = app.settings.region
    sns, sqs = boto3.client("sns", region_name=region), boto3.client("sqs", region_name=region)
    topic_arn = sns.create_topic(Name="alarms")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alarms")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    app.notifier.topic_arn = topic_arn
    follower, _ = poisoned_shop(app, Poison(("ORDER#1", 2)))
    for _ in range(MAX_ATTEMPTS):
        follower.poll()

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])]  # fmt: skip
    stuck = [json.loads(b["Message"]) for b in bodies
             if b["MessageAttributes"]["action"]["Value"] == "entity-stuck"]  # fmt: skip
    assert stuck == [{
        "action": "entity-stuck", "pk": "ORDER#acme", "sk": "ORDER#1@2",
        "table": app.entity("order").tables.command,
        "id": f"{app.entity('order').tables.command}#ORDER#acme#ORDER#1@2",
        "tenantCode": "acme",
        "content": {"entity": "order", "failedVersion": 2, "waitingThrough": 3,
                    "attempts": MAX_ATTEMPTS,
                    "error": "RuntimeError: cannot project ('ORDER#1', 2)"},
    }]  # fmt: skip


def test_cli_lists_stuck_entities_and_redrive_needs_the_app(
    app: Cqrs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQRS_SYNC_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    poison = Poison(("ORDER#1", 2))
    follower, _ = poisoned_shop(app, poison)
    for _ in range(MAX_ATTEMPTS):
        follower.poll()
    s = app.settings
    common = ["--tables-dir", str(s.tables_dir), "--prefix", s.table_prefix]
    if s.endpoint_url:
        common += ["--endpoint-url", s.endpoint_url]

    assert main(["stuck", "order", *common]) == 1
    out = capsys.readouterr().out
    assert "STUCK    order ORDER#acme / ORDER#1: version 2 failed 3x" in out
    assert "(data at 1, 1 version(s) waiting)" in out
    assert "stuck: 1 stuck, 0 retrying, 0 rejected record(s)" in out

    assert main(["show", "order", "ORDER#acme", "ORDER#1", *common]) == 0
    out = capsys.readouterr().out
    assert "sync STUCK at version 2 after 3 attempt(s)" in out
    assert "cqrs redrive order" in out

    assert main(["redrive", "order", *common]) == 2
    assert "pass --app" in capsys.readouterr().err

    poison.healed = True
    monkeypatch.setattr(
        "cqrs.cli.commands._app", lambda args: app
    )  # the service's app, handlers and all
    assert main(["redrive", "order", "--app", "shop:app", *common]) == 0
    assert "redriven ORDER#acme / ORDER#1: applied through version 3" in capsys.readouterr().out
    assert main(["stuck", *common]) == 0
    capsys.readouterr()
    assert main(["show", "order", "ORDER#acme", "ORDER#1", *common]) == 0
    shown = capsys.readouterr().out
    assert "version 3" in shown and "sync STUCK" not in shown and "sync retrying" not in shown


def test_without_the_table_failures_are_retried_as_before(cqrs_app: Cqrs, tmp_path: Any) -> None:
    """Apps whose tables/ lack the sync-failures template keep plain stream retries."""
    import shutil

    tables = tmp_path / "tables"
    shutil.copytree(cqrs_app.settings.tables_dir, tables)
    source = cqrs_app.schema.templates  # the templates the app was built from
    assert "system:sync-failures" in source
    templates = tables / "templates"
    if not templates.is_dir():
        from cqrs.schema.definitions import _BUNDLED_TEMPLATES, _SOURCE_TEMPLATES

        bundled = _BUNDLED_TEMPLATES if _BUNDLED_TEMPLATES.is_dir() else _SOURCE_TEMPLATES
        shutil.copytree(bundled, templates)
    (templates / "system" / "sync-failures.json").unlink()
    settings = cqrs_app.settings.model_copy(update={"tables_dir": tables, "sync_max_attempts": 1})
    app = Cqrs(settings, clients=cqrs_app.clients)
    app.register("order", handlers=[Poison(("ORDER#1", 1))])
    publish(app, "1", 1)
    follower = app.follower()

    assert [follower.poll().failed for _ in range(3)] == [1, 1, 1]
    assert app.synchronizer.failures is None


def test_stuck_failure_key_helpers() -> None:
    failure = SyncFailure(
        entity="order", pk="ORDER#acme", sk="ORDER#1", failed_version=2, waiting_through=5,
        attempts=3, error="e", first_failed_at="a", last_failed_at="b", stuck=True,
    )  # fmt: skip
    assert failure.id == "ORDER#acme#ORDER#1" and failure.failed_sk == add_version("ORDER#1", 2)
    assert SyncFailure.from_item(failure.to_item()) == failure
