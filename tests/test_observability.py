"""Observability of sync: one summary per batch (a JSON log line and CloudWatch metrics in
Embedded Metric Format from the Lambda handler), entity log lines carrying the request
id, key and version, and OpenTelemetry spans when the process uses OpenTelemetry.

Batches are real moto stream records; only the unit checks of the EMF document and of
the oldest-record age use hand-made values.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cqrs import Command, CommandInput, Cqrs, InvokeContext
from cqrs.aws import handler, set_app
from cqrs.sync.telemetry import BatchSummary, emf_document, oldest_creation
from cqrs.testing import stream_records
from cqrs.testing.delivery import corrupt

REPO = Path(__file__).resolve().parents[1]
FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"
CTX = InvokeContext(tenant_code="acme", user_id="alice")
LAMBDA = SimpleNamespace(aws_request_id="req-0001")
METRICS = {"Records", "Applied", "Failed", "Stuck", "Rejected", "Duration", "OldestRecordAge"}


def publish(app: Cqrs, code: str, version: int = 0, **attributes: Any) -> None:
    app.entity("order").commands.publish_async(
        CommandInput(
            pk="ORDER#acme",
            sk=f"ORDER#{code}",
            code=code,
            name=code,
            tenant_code="acme",
            type="ORDER",
            version=version,
            attributes=attributes,
        ),
        CTX,
    )


class FailOn:
    """A custom projection that always fails on one code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def up(self, command: Command[Any]) -> None:
        if command.code == self.code:
            raise RuntimeError(f"cannot project {command.code}")

    def down(self, command: Command[Any]) -> None:
        pass


@pytest.fixture
def served(cqrs_app: Cqrs) -> Iterator[Cqrs]:
    set_app(cqrs_app)
    yield cqrs_app
    set_app(None)


def batch_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cqrs.sync.batch"]


def emf_lines(out: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d]


# -- the handler's summary line and metrics ----------------------------------------------


def test_handler_logs_one_json_line_and_prints_metrics_per_batch(
    served: Cqrs, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="cqrs.sync.batch")
    publish(served, "1")
    publish(served, "1", version=1, n=2)
    publish(served, "2")

    assert handler({"Records": stream_records(served)}, LAMBDA) == {"batchItemFailures": []}

    (line,) = batch_lines(caplog)
    assert line.levelno == logging.INFO
    payload = json.loads(line.getMessage())  # the message is the JSON, whatever the formatter
    assert payload == line.cqrs  # type: ignore[attr-defined]  # and in extra= for structured ones
    command_table = served.entity("order").tables.command
    assert payload["requestId"] == "req-0001"
    assert payload["tables"] == [command_table]
    assert {k: payload[k] for k in ("records", "applied", "failed", "stuck", "rejected")} == {
        "records": 3, "applied": 3, "failed": 0, "stuck": 0, "rejected": 0,
    }  # fmt: skip
    assert payload["oldestRecordAgeMs"] >= 0 and payload["durationMs"] >= 0

    (doc,) = emf_lines(capsys.readouterr().out)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "cqrs"
    assert directive["Dimensions"] == [["Table"]]
    assert {m["Name"] for m in directive["Metrics"]} == METRICS
    assert isinstance(doc["_aws"]["Timestamp"], int)
    assert (doc["Table"], doc["Entity"], doc["requestId"]) == (command_table, "order", "req-0001")
    assert (doc["Records"], doc["Applied"], doc["Failed"], doc["Stuck"]) == (3, 3, 0, 0)
    assert doc["OldestRecordAge"] >= 0


def test_a_failed_entity_is_logged_with_request_id_key_and_version(
    served: Cqrs, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="cqrs")
    served.register("order", handlers=[FailOn("BAD")])
    publish(served, "OK")
    publish(served, "BAD")
    records = stream_records(served)

    response = handler({"Records": records}, LAMBDA)

    assert len(response["batchItemFailures"]) == 1
    (summary,) = batch_lines(caplog)
    assert summary.levelno == logging.WARNING
    assert json.loads(summary.getMessage())["failed"] == 1
    (entity,) = [r for r in caplog.records if r.name == "cqrs.sync.synchronizer"]
    assert entity.levelno == logging.WARNING
    text = entity.getMessage()
    assert "ORDER#acme / ORDER#BAD" in text and "version 1" in text and "req-0001" in text
    assert entity.cqrs == {  # type: ignore[attr-defined]
        "requestId": "req-0001",
        "table": served.entity("order").tables.command,
        "pk": "ORDER#acme",
        "sk": "ORDER#BAD",
        "version": 1,
        "verdict": "retry",
    }
    (doc,) = emf_lines(capsys.readouterr().out)
    assert (doc["Applied"], doc["Failed"], doc["Stuck"]) == (1, 1, 0)


def test_a_stuck_entity_counts_in_the_summary_and_the_metrics(
    served: Cqrs, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    served.register("order", handlers=[FailOn("BAD")])
    publish(served, "BAD")
    records = stream_records(served)
    for _ in range(served.settings.sync_max_attempts - 1):
        assert handler({"Records": records}, LAMBDA)["batchItemFailures"]
    capsys.readouterr()
    caplog.clear()
    caplog.set_level(logging.INFO, logger="cqrs")

    assert handler({"Records": records}, LAMBDA) == {"batchItemFailures": []}

    payload = json.loads(batch_lines(caplog)[0].getMessage())
    assert (payload["failed"], payload["stuck"]) == (0, 1)
    stuck = [r for r in caplog.records if r.name == "cqrs.sync.synchronizer"]
    assert [(r.levelno, r.cqrs["verdict"]) for r in stuck] == [(logging.ERROR, "stuck")]  # type: ignore[attr-defined]
    (doc,) = emf_lines(capsys.readouterr().out)
    assert (doc["Failed"], doc["Stuck"]) == (0, 1)


def test_a_rejected_record_counts_and_is_logged_with_the_request_id(
    served: Cqrs, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="cqrs")
    publish(served, "1")
    (record,) = stream_records(served)

    handler({"Records": [record, corrupt(record, "no-pk")]}, LAMBDA)

    payload = json.loads(batch_lines(caplog)[0].getMessage())
    assert (payload["applied"], payload["rejected"], payload["failed"]) == (1, 1, 0)
    (line,) = [r for r in caplog.records if "rejected stream record" in r.getMessage()]
    assert "[request req-0001]" in line.getMessage()
    assert line.cqrs["requestId"] == "req-0001"  # type: ignore[attr-defined]
    (doc,) = emf_lines(capsys.readouterr().out)
    assert (doc["Applied"], doc["Rejected"]) == (1, 1)


def test_metrics_namespace_is_configurable_and_can_be_turned_off(
    served: Cqrs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(served, "1")
    records = stream_records(served)

    monkeypatch.setenv("CQRS_METRICS_NAMESPACE", "shop/sync")
    handler({"Records": records}, None)
    (doc,) = emf_lines(capsys.readouterr().out)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "shop/sync"
    assert "requestId" not in doc  # no Lambda context, no request id

    monkeypatch.setenv("CQRS_METRICS_NAMESPACE", "")
    handler({"Records": records}, None)
    assert emf_lines(capsys.readouterr().out) == []


def test_an_empty_batch_says_nothing(
    served: Cqrs, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="cqrs")
    assert handler({"Records": []}, LAMBDA) == {"batchItemFailures": []}
    assert batch_lines(caplog) == [] and capsys.readouterr().out == ""


def test_applied_entities_are_logged_at_debug(
    served: Cqrs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cqrs.sync.synchronizer")
    publish(served, "1")
    publish(served, "1", version=1, n=2)

    handler({"Records": stream_records(served)}, LAMBDA)

    (line,) = [r for r in caplog.records if r.name == "cqrs.sync.synchronizer"]
    assert line.levelno == logging.DEBUG
    assert "applied through version 2" in line.getMessage()
    assert line.cqrs["version"] == 2 and line.cqrs["requestId"] == "req-0001"  # type: ignore[attr-defined]


# -- the summary value --------------------------------------------------------------------


def test_the_process_report_carries_lag_duration_and_tables(cqrs_app: Cqrs) -> None:
    publish(cqrs_app, "1")
    report = cqrs_app.process_event({"Records": stream_records(cqrs_app)})

    summary = BatchSummary.of(report, "r-1")
    assert summary.tables == (cqrs_app.entity("order").tables.command,)
    assert summary.oldest_record_age_ms is not None and summary.oldest_record_age_ms >= 0
    assert summary.ok and summary.applied == 1 and summary.request_id == "r-1"
    assert summary.line().startswith(f"1 record(s) of {summary.tables[0]}: 1 applied; oldest ")


def test_oldest_creation_reads_the_records_approximate_creation_time() -> None:
    records: list[object] = [
        {"dynamodb": {"ApproximateCreationDateTime": 1_700_000_050}},
        {"dynamodb": {"ApproximateCreationDateTime": 1_700_000_000.5}},
        {"dynamodb": {}},
        "not a record",
    ]
    assert oldest_creation(records) == 1_700_000_000.5
    assert oldest_creation([{"dynamodb": {}}]) is None


def test_emf_document_shape() -> None:
    summary = BatchSummary(
        records=10, applied=7, consumed=0, ignored=1, failed=1, stuck=1, rejected=0,
        oldest_record_age_ms=2300, duration_ms=41.5, tables=("dev-order-command",),
        request_id="req-9",
    )  # fmt: skip

    doc = emf_document(summary, "cqrs", properties={"Entity": "order"}, timestamp_ms=1_700_000)

    assert doc == {
        "_aws": {
            "Timestamp": 1_700_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "cqrs",
                    "Dimensions": [["Table"]],
                    "Metrics": [
                        {"Name": "Records", "Unit": "Count"},
                        {"Name": "Applied", "Unit": "Count"},
                        {"Name": "Failed", "Unit": "Count"},
                        {"Name": "Stuck", "Unit": "Count"},
                        {"Name": "Rejected", "Unit": "Count"},
                        {"Name": "Duration", "Unit": "Milliseconds"},
                        {"Name": "OldestRecordAge", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "Table": "dev-order-command",
        "Records": 10, "Applied": 7, "Failed": 1, "Stuck": 1, "Rejected": 0,
        "Duration": 41.5, "OldestRecordAge": 2300,
        "requestId": "req-9",
        "Entity": "order",
    }  # fmt: skip
    assert not summary.ok


# -- OpenTelemetry ------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[Any]:
    """Finished spans of this test (the SDK's in-memory exporter on the global provider)."""
    trace = pytest.importorskip("opentelemetry.trace")
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()  # the exporter stops collecting


def test_spans_wrap_the_batch_and_each_tables_projection(cqrs_app: Cqrs, spans: Any) -> None:
    cqrs_app.register("order", handlers=[FailOn("BAD")])
    publish(cqrs_app, "OK")
    publish(cqrs_app, "BAD")

    cqrs_app.process_event({"Records": stream_records(cqrs_app)})

    finished = {s.name: s for s in spans.get_finished_spans()}
    batch, project = finished["cqrs.batch"], finished["cqrs.project"]
    assert project.parent is not None and project.parent.span_id == batch.context.span_id
    assert dict(batch.attributes) | {"tables": "-"} == {
        "records": 2, "applied": 1, "failed": 1, "stuck": 0, "rejected": 0, "tables": "-",
    }  # fmt: skip
    table = cqrs_app.entity("order").tables.command
    assert dict(project.attributes) == {"table": table, "commands": 2, "entities": 2}
    (event,) = project.events
    assert event.name == "cqrs.entity.failed"
    assert (event.attributes["sk"], event.attributes["version"]) == ("ORDER#BAD", 1)
    assert event.attributes["verdict"] == "retry"


NO_OTEL = """
import contextlib, io, json, sys
if sys.argv[1] == "hidden":
    sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
from cqrs import CommandInput, Cqrs, InvokeContext
import cqrs.aws
app = Cqrs.from_env()
app.migrate()
cqrs.aws.set_app(app)
app.entity("order").commands.publish_async(
    CommandInput(pk="ORDER#acme", sk="ORDER#O-1", code="O-1", name="o", tenant_code="acme",
                 type="ORDER"),
    InvokeContext(tenant_code="acme"),
)
records = app.follower().read_records()
out = io.StringIO()
with contextlib.redirect_stdout(out):
    response = cqrs.aws.handler({"Records": records}, None)
loaded = sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v)
emf = [json.loads(line) for line in out.getvalue().splitlines()]
print(json.dumps({"response": response, "loaded": loaded, "applied": emf[0]["Applied"]}))
"""


@pytest.mark.slow  # fresh interpreters
@pytest.mark.parametrize("otel", ["hidden", "installed"])
def test_sync_needs_no_opentelemetry_and_never_imports_it(otel: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CQRS_"))}
    env |= {"CQRS_ENDPOINT_URL": "embedded", "CQRS_TABLES_DIR": str(FIXTURE_TABLES)}
    result = subprocess.run(
        [sys.executable, "-c", NO_OTEL, otel],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"response": {"batchItemFailures": []}, "loaded": [], "applied": 1}
