"""The Lambda handler's cold start builds only what its first batch uses.

A fresh interpreter imports ``cqrs.aws`` and hands it a real first batch (stream
records of a command table on the moto server), as Lambda does after a cold
start; the checks are on ``sys.modules``, never on time (``python -m
bench.coldstart`` times it against a plain boto3 handler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import injector
import pytest

from cqrs import CommandInput, CommandStatusEvent, Cqrs, InvokeContext
from cqrs.testing import stream_records, table_items

REPO = Path(__file__).resolve().parents[1]
FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"

#: Never loaded by a first batch of creates when no notification channel is configured.
NOT_ON_THE_COLD_PATH = (
    "pydantic",  # Settings is a dataclass; typed records are built only for handlers
    "pydantic_settings",  # Settings reads the environment itself
    "dotenv",
    "injector",  # built for handler classes, the event bus or tasks only
    "cqrs.events",  # types, bus and notifier: nobody listens, nothing is configured
    "cqrs.write",  # CommandService, built on first use of entity(...).commands
    "cqrs.read",  # DataService, HistoryService
    "cqrs.core.context",
    "cqrs.core.inputs",
    "cqrs.schema.provision",  # migrate
    "cqrs.store.streams",  # the follower's
    "cqrs.sync.follower",
    "cqrs.sync.rebuild",
    "cqrs.sync.failures",  # built on the first failure
    "cqrs.sync.rejected",
    "cqrs.system",  # tasks, sequences, data migrations
)

_FIRST_BATCH = """\
import json, sys
with open(sys.argv[1]) as f:
    event = json.load(f)
import cqrs.aws
response = cqrs.aws.handler(event)
assert response == {"batchItemFailures": []}, response
candidates = json.loads(sys.argv[2])
print(json.dumps(sorted({c for c in candidates for m in list(sys.modules)
                         if m == c or m.startswith(c + ".")})))
"""


def publish(app: Cqrs, code: str) -> None:
    app.entity("order").commands.publish_async(
        CommandInput(
            pk="ORDER#acme", sk=f"ORDER#{code}", code=code, name=code, tenant_code="acme",
            type="ORDER", version=0, attributes={"n": 1},
        ),
        InvokeContext(tenant_code="acme"),
    )  # fmt: skip


def first_batch_loads(app: Cqrs, endpoint: str, tmp_path: Path, **env: str) -> list[str]:
    """Run ``app``'s pending stream records through ``cqrs.aws.handler`` in a fresh
    interpreter (the app built from the environment); which forbidden modules it loaded."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"Records": stream_records(app)}))
    environment = {
        **os.environ,
        "CQRS_ENDPOINT_URL": endpoint,
        "CQRS_TABLE_PREFIX": app.settings.table_prefix,
        "CQRS_TABLES_DIR": str(FIXTURE_TABLES),
        **env,
    }
    environment.pop("CQRS_APP", None)
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_BATCH, str(event), json.dumps(NOT_ON_THE_COLD_PATH)],
        capture_output=True, text=True, cwd=REPO, env=environment, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.slow  # a fresh interpreter
def test_first_batch_builds_only_the_projection_path(
    server_app: Cqrs, moto_server: str, tmp_path: Path
) -> None:
    for code in ("A-1", "A-2", "A-3"):
        publish(server_app, code)
    assert first_batch_loads(server_app, moto_server, tmp_path) == []
    rows = table_items(server_app, server_app.schema.entity_tables("order").data)
    assert sorted(r["code"] for r in rows) == ["A-1", "A-2", "A-3"]  # the batch was applied


@pytest.mark.slow  # a fresh interpreter
def test_a_configured_topic_still_gets_the_notifier(
    server_app: Cqrs, moto_server: str, tmp_path: Path
) -> None:
    publish(server_app, "B-1")
    topic = "arn:aws:sns:ap-northeast-1:123456789012:cold-start-no-such-topic"
    loaded = first_batch_loads(server_app, moto_server, tmp_path, CQRS_SNS_TOPIC_ARN=topic)
    assert "cqrs.events" in loaded  # failures to publish are logged, not raised


def test_statuses_reach_a_subscriber_of_the_app_bus(cqrs_app: Cqrs) -> None:
    seen: list[CommandStatusEvent] = []

    @cqrs_app.events.subscribe(CommandStatusEvent)
    def on_status(event: CommandStatusEvent) -> None:
        seen.append(event)

    publish(cqrs_app, "C-1")
    cqrs_app.sync()
    assert [(e.sk, e.status) for e in seen] == [("ORDER#C-1@1", "applied")]


def test_nothing_listening_builds_no_notifier(cqrs_app: Cqrs) -> None:
    publish(cqrs_app, "D-1")
    cqrs_app.sync()
    assert "notifier" not in vars(cqrs_app) and "events" not in vars(cqrs_app)
    rows = table_items(cqrs_app, cqrs_app.schema.entity_tables("order").data)
    assert [r["code"] for r in rows] == ["D-1"]


def test_extra_modules_are_installed_when_the_app_is_built(cqrs_app: Cqrs) -> None:
    def broken(binder: injector.Binder) -> None:
        raise RuntimeError("module failed")

    with pytest.raises(RuntimeError, match="module failed"):
        Cqrs(cqrs_app.settings, clients=cqrs_app.clients, modules=[broken])


def test_entity_services_are_built_on_first_use(cqrs_app: Cqrs) -> None:
    order = cqrs_app.entity("order")
    assert not {"commands", "data", "history"} & set(vars(order))
    assert order.commands is order.commands and order.data is order.data
    assert cqrs_app.entity("order") is order
