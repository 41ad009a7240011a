"""The SAM template: valid per cfn-lint and faithful to the schema it was rendered from."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cqrs import SYSTEM, Cqrs
from cqrs.aws import set_app
from cqrs.cli import main
from cqrs.core.errors import ConfigurationError, InvalidEventError, OperationalError
from cqrs.deploy import sweep
from cqrs.deploy.objects import OBJECT_ACTIONS, OBJECT_PREFIX, AttributesBucket
from cqrs.deploy.template import (
    HttpApi,
    TemplateFormat,
    dump_template,
    render_template,
    table_logical_id,
)
from cqrs.schema import Schema, TableDefinition
from cqrs.system.tasks import TaskStatus

REPO = Path(__file__).resolve().parents[1]
TABLE = "AWS::DynamoDB::Table"
MAPPING = "AWS::Lambda::EventSourceMapping"
FUNCTION = "AWS::Serverless::Function"
TOPIC = "AWS::SNS::Topic"
STREAM_HANDLER = "cqrs.aws.handler"
SWEEP_HANDLER = "cqrs.deploy.sweep.handler"

# What the stream handler does, per table kind (independent of the implementation's tables).
NEEDED = {
    "command": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
    "data": {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
    },
    "history": {"dynamodb:PutItem", "dynamodb:BatchWriteItem"},
    "tasks": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query"},
    "sync-failures": {"dynamodb:GetItem", "dynamodb:PutItem"},
}
STREAM_READS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
EVENTS = {"command": ["INSERT", "MODIFY"], "tasks": ["INSERT", "MODIFY"]}
# The task sweep: the tasks table only; Scan finds the tenants with unfinished tasks.
SWEEP_NEEDS = NEEDED["tasks"] | {"dynamodb:Scan"}


def _two_entities(tmp_path: Path) -> Schema:
    (tmp_path / "cqrs.json").write_text(json.dumps({"tables": ["order", "sample-item"]}))
    return Schema.load(tmp_path, "stg-shop-")


@pytest.fixture(params=["repo", "two-entities"])
def schema(request: pytest.FixtureRequest, tmp_path: Path) -> Schema:
    if request.param == "repo":
        return Schema.load(REPO / "tables", "dev-")
    return _two_entities(tmp_path)


@pytest.fixture
def template(schema: Schema) -> dict[str, Any]:
    return render_template(schema, app="shop.app:cqrs")


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _function(template: dict[str, Any], handler: str = STREAM_HANDLER) -> dict[str, Any]:
    """The function running ``handler`` (the stream handler unless told)."""
    (function,) = [
        f for f in _of_type(template, FUNCTION).values() if f["Properties"]["Handler"] == handler
    ]
    return function


def _function_id(template: dict[str, Any], handler: str = STREAM_HANDLER) -> str:
    (logical_id,) = [
        i for i, f in _of_type(template, FUNCTION).items() if f["Properties"]["Handler"] == handler
    ]
    return logical_id


def _refs(value: Any) -> Iterator[str]:
    """Logical IDs referenced by an intrinsic (GetAtt, Ref or Sub ``${X.Attr}``)."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            yield value["Fn::GetAtt"][0]
        elif "Ref" in value:
            yield value["Ref"]
        elif "Fn::Sub" in value:
            text = value["Fn::Sub"]
            yield text[text.index("${") + 2 : text.index("}")].split(".")[0]
        else:
            for item in value.values():
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _definitions_by_id(schema: Schema) -> dict[str, TableDefinition]:
    return {table_logical_id(d): d for d in schema.definitions()}


# -- cfn-lint ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_cfn_lint_finds_nothing(template: dict[str, Any], fmt: TemplateFormat) -> None:
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint is not installed")
    if fmt == "yaml":
        pytest.importorskip("yaml", reason="PyYAML is not installed")
    config = api.ManualArgs(regions=["ap-northeast-1", "us-east-1"], include_checks=["I"])
    matches = api.lint(dump_template(template, fmt), config=config)
    assert [str(m) for m in matches] == []


# -- tables --------------------------------------------------------------------------


def test_one_table_per_definition(schema: Schema, template: dict[str, Any]) -> None:
    tables = _of_type(template, TABLE)
    assert sorted(t["Properties"]["TableName"] for t in tables.values()) == sorted(
        d.name for d in schema.definitions()
    )
    assert set(tables) == set(_definitions_by_id(schema))


def test_tables_match_their_specs(schema: Schema, template: dict[str, Any]) -> None:
    tables = _of_type(template, TABLE)
    for logical_id, definition in _definitions_by_id(schema).items():
        props = tables[logical_id]["Properties"]
        assert props["TableName"] == definition.name
        assert props["KeySchema"] == definition.spec["KeySchema"]
        assert props["AttributeDefinitions"] == definition.spec["AttributeDefinitions"]
        indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {i["IndexName"] for i in definition.indexes}
        for index in definition.indexes:
            assert indexes[index["IndexName"]]["KeySchema"] == index["KeySchema"]
            assert indexes[index["IndexName"]]["Projection"] == index["Projection"]
        stream = props.get("StreamSpecification", {}).get("StreamViewType")
        # Consumed streams carry new images only (nothing reads old ones); others as defined.
        consumed = definition.stream_view_type and definition.kind in EVENTS
        assert stream == ("NEW_IMAGE" if consumed else definition.stream_view_type)
        ttl = {"AttributeName": definition.ttl_attribute, "Enabled": True}
        assert props.get("TimeToLiveSpecification") == (ttl if definition.ttl_attribute else None)


def test_tables_are_protected(template: dict[str, Any]) -> None:
    for table in _of_type(template, TABLE).values():
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True


def test_data_tables_have_the_code_index(schema: Schema, template: dict[str, Any]) -> None:
    tables = _of_type(template, TABLE)
    for entity in schema.entities:
        data = next(
            t for t in tables.values() if t["Properties"]["TableName"].endswith(f"{entity}-data")
        )
        assert [i["IndexName"] for i in data["Properties"]["GlobalSecondaryIndexes"]] == [
            "code-index"
        ]


def test_logical_ids_do_not_depend_on_the_prefix() -> None:
    bare = render_template(Schema.load(REPO / "tables", ""))
    prod = render_template(Schema.load(REPO / "tables", "prod-shop-"))
    assert list(bare["Resources"]) == list(prod["Resources"])


# -- stream handler ------------------------------------------------------------------


def test_function(schema: Schema, template: dict[str, Any]) -> None:
    props = _function(template)["Properties"]
    assert props["Handler"] == "cqrs.aws.handler"
    assert props["Runtime"] == "python3.12"
    assert props["CodeUri"] == "build/lambda.zip"
    variables = props["Environment"]["Variables"]
    assert variables["CQRS_TABLE_PREFIX"] == schema.prefix
    assert variables["CQRS_APP"] == "shop.app:cqrs"
    assert variables["CQRS_TABLES_DIR"] == "/var/task/tables"
    assert variables["CQRS_SYNC_MAX_ATTEMPTS"] == "5"


def test_every_function_logs_json_and_lets_the_batch_summary_through(
    template: dict[str, Any],
) -> None:
    functions = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    assert len(functions) >= 2  # the stream handler and the task sweep
    for function in functions:
        config = function["Properties"]["LoggingConfig"]
        assert (config["LogFormat"], config["ApplicationLogLevel"]) == ("JSON", "INFO")


def test_no_app_means_no_cqrs_app(schema: Schema) -> None:
    template = render_template(
        schema, function_name="Sync", runtime="python3.13", architecture="arm64"
    )
    props = template["Resources"]["Sync"]["Properties"]
    assert "CQRS_APP" not in props["Environment"]["Variables"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]


def test_one_mapping_per_stream(schema: Schema, template: dict[str, Any]) -> None:
    mappings = _of_type(template, MAPPING)
    sources = sorted(m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings.values())
    streamed = sorted(i for i, d in _definitions_by_id(schema).items() if d.stream_view_type)
    assert sources == streamed
    consumers = sorted(i for i, d in _definitions_by_id(schema).items() if d.kind in EVENTS)
    assert sources == consumers
    assert len(sources) == len(schema.entities) + 1


def test_mapping_settings(schema: Schema, template: dict[str, Any]) -> None:
    by_id = _definitions_by_id(schema)
    (queue_id,) = _of_type(template, "AWS::SQS::Queue")
    function_id = _function_id(template)
    for mapping in _of_type(template, MAPPING).values():
        props = mapping["Properties"]
        definition = by_id[props["EventSourceArn"]["Fn::GetAtt"][0]]
        assert props["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
        assert props["FunctionName"] == {"Ref": function_id}
        assert props["StartingPosition"] == "TRIM_HORIZON"
        patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
        assert sorted({e for p in patterns for e in p["eventName"]}) == EVENTS[definition.kind]
        if definition.kind == "tasks":
            assert patterns == [{"eventName": EVENTS["tasks"]}]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is True
        assert 0 <= props["MaximumRetryAttempts"] <= 10000
        assert 60 <= props["MaximumRecordAgeInSeconds"] <= 604800
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_mapping_defaults_are_tuned_for_cost(template: dict[str, Any]) -> None:
    # 100: full BatchWriteItems of history (25) and one BatchGetItem (100 keys) per batch;
    # no window (no added lag); one batch per shard at a time (see HandlerSettings).
    for mapping in _of_type(template, MAPPING).values():
        p = mapping["Properties"]
        assert p["BatchSize"] == 100
        assert p["MaximumBatchingWindowInSeconds"] == 0
        assert p["ParallelizationFactor"] == 1


def test_tunables_reach_the_template(schema: Schema) -> None:
    template = render_template(
        schema,
        memory_size=1024,
        timeout=120,
        batch_size=50,
        batching_window_seconds=5,
        parallelization_factor=4,
        stream_view_type="NEW_AND_OLD_IMAGES",
        maximum_retry_attempts=3,
        maximum_record_age_seconds=600,
        sync_max_attempts=4,
    )
    props = _function(template)["Properties"]
    assert (props["MemorySize"], props["Timeout"]) == (1024, 120)
    assert props["Environment"]["Variables"]["CQRS_SYNC_MAX_ATTEMPTS"] == "4"
    for mapping in _of_type(template, MAPPING).values():
        p = mapping["Properties"]
        assert (p["BatchSize"], p["MaximumRetryAttempts"], p["MaximumRecordAgeInSeconds"]) == (
            50,
            3,
            600,
        )
        assert (p["MaximumBatchingWindowInSeconds"], p["ParallelizationFactor"]) == (5, 4)
    by_id = _definitions_by_id(schema)
    for logical_id, table in _of_type(template, TABLE).items():
        if by_id[logical_id].stream_view_type:
            view = table["Properties"]["StreamSpecification"]["StreamViewType"]
            assert view == "NEW_AND_OLD_IMAGES"


@pytest.mark.parametrize(
    "override",
    [
        {"batch_size": 0},
        {"batch_size": 10001},
        {"batching_window_seconds": -1},
        {"batching_window_seconds": 301},
        {"parallelization_factor": 0},
        {"parallelization_factor": 11},
        {"stream_view_type": "KEYS_ONLY"},  # the handler needs new images
        {"stream_view_type": "OLD_IMAGE"},
        {"sweep_schedule": "every 5 minutes"},
        {"sweep_schedule": "rate(0 minutes)"},
        {"sweep_schedule": "rate(1 minutes)"},
        {"sweep_schedule": "cron(0 * * *)"},
        {"sweep_tenants": ["acme#x"]},
        {"sweep_tenants": [" "]},
        {"sweep_tenants": "acme"},  # a string, not a list
        {"sweep_schedule": None, "sweep_tenants": ["acme"]},
        {"maximum_retry_attempts": -1},
        {"maximum_retry_attempts": 3},  # Lambda gives up (4 attempts) before 5 make it stuck
        {"sync_max_attempts": 0},
        {"maximum_record_age_seconds": -1},
        {"timeout": 901},
        {"memory_size": 64},
        {"function_name": "cqrs-handler"},
        {"runtime": "nodejs20.x"},
        {"architecture": "sparc"},
    ],
)
def test_invalid_settings_are_refused(schema: Schema, override: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        render_template(schema, **override)


# -- IAM -----------------------------------------------------------------------------


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    policies = _function(template)["Properties"]["Policies"]
    return [s for policy in policies for s in policy["Statement"]]


def test_no_other_iam_or_wildcards(template: dict[str, Any]) -> None:
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::IAM::")]
    functions = _of_type(template, FUNCTION).values()
    assert len(functions) == 2  # the stream handler and the task sweep
    for function in functions:
        props = function["Properties"]
        assert "Role" not in props
        assert all(isinstance(p, dict) for p in props["Policies"])  # no managed policy names
        for statement in (s for p in props["Policies"] for s in p["Statement"]):
            assert statement["Effect"] == "Allow"
            assert all("*" not in a for a in statement["Action"])
            for resource in statement["Resource"]:
                assert isinstance(resource, dict), "resources are this stack's ARNs, not literals"
                text = json.dumps(resource).replace("/stream/*", "")
                assert "*" not in text.replace(f"/{OBJECT_PREFIX}*", "")


def _granted(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    granted: dict[str, set[str]] = {}
    for statement in statements:
        for logical_id in _refs(statement["Resource"]):
            granted.setdefault(logical_id, set()).update(statement["Action"])
    return granted


def test_policy_names_only_this_schemas_tables(schema: Schema, template: dict[str, Any]) -> None:
    by_id = _definitions_by_id(schema)
    (queue_id,) = _of_type(template, "AWS::SQS::Queue")
    (topic_id,) = _of_type(template, TOPIC)
    (bucket_id,) = _of_type(template, "AWS::S3::Bucket")
    granted = _granted(_statements(template))
    assert set(granted) <= {*by_id, queue_id, topic_id, bucket_id}
    assert granted.pop(queue_id) == {"sqs:SendMessage"}
    assert granted.pop(topic_id) == {"sns:Publish"}
    assert granted.pop(bucket_id) == set(OBJECT_ACTIONS)
    for logical_id, definition in by_id.items():
        stream = STREAM_READS if definition.kind in EVENTS else set()
        assert granted.get(logical_id, set()) == NEEDED.get(definition.kind, set()) | stream


def test_the_sweep_may_touch_the_tasks_table_only(schema: Schema, template: dict[str, Any]) -> None:
    (tasks_id,) = [i for i, d in _definitions_by_id(schema).items() if d.kind == "tasks"]
    policies = _function(template, SWEEP_HANDLER)["Properties"]["Policies"]
    granted = _granted([s for p in policies for s in p["Statement"]])
    assert granted == {tasks_id: SWEEP_NEEDS}


def test_index_and_stream_arns(schema: Schema, template: dict[str, Any]) -> None:
    resources = [s for st in _statements(template) for s in _strings(st["Resource"])]
    for logical_id, definition in _definitions_by_id(schema).items():
        for index in definition.indexes:
            assert f"${{{logical_id}.Arn}}/index/{index['IndexName']}" in resources
        if definition.kind in EVENTS:
            assert f"${{{logical_id}.Arn}}/stream/*" in resources
    sequences = table_logical_id(next(d for d in schema.definitions() if d.kind == "sequences"))
    assert sequences not in {r for st in _statements(template) for r in _refs(st["Resource"])}


# -- notification topic ----------------------------------------------------------------


def test_the_topic_is_the_handlers_and_it_may_only_publish(template: dict[str, Any]) -> None:
    (topic_id,) = _of_type(template, TOPIC)
    variables = _function(template)["Properties"]["Environment"]["Variables"]
    assert variables["CQRS_SNS_TOPIC_ARN"] == {"Ref": topic_id}
    to_topic = [s for s in _statements(template) if topic_id in set(_refs(s["Resource"]))]
    assert [(s["Action"], s["Resource"]) for s in to_topic] == [
        (["sns:Publish"], [{"Ref": topic_id}])
    ]
    sweep_variables = _function(template, SWEEP_HANDLER)["Properties"]["Environment"]
    assert "CQRS_SNS_TOPIC_ARN" not in sweep_variables["Variables"]
    assert template["Outputs"]["NotificationTopicArn"]["Value"] == {"Ref": topic_id}


def test_no_notifications_means_no_topic(schema: Schema) -> None:
    template = render_template(schema, notifications=False)
    assert _of_type(template, TOPIC) == {}
    assert "CQRS_SNS_TOPIC_ARN" not in _function(template)["Properties"]["Environment"]["Variables"]
    assert not [s for s in _statements(template) if any(a.startswith("sns:") for a in s["Action"])]
    assert "NotificationTopicArn" not in template["Outputs"]


# -- scheduled task sweep ----------------------------------------------------------------


def test_the_sweep_runs_on_a_schedule(schema: Schema, template: dict[str, Any]) -> None:
    props = _function(template, SWEEP_HANDLER)["Properties"]
    handler = _function(template)["Properties"]
    for same in ("Runtime", "CodeUri", "Architectures"):
        assert props[same] == handler[same]
    variables = props["Environment"]["Variables"]
    assert variables["CQRS_APP"] == "shop.app:cqrs"
    assert variables["CQRS_TABLE_PREFIX"] == schema.prefix
    (event,) = props["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(15 minutes)"
    assert json.loads(event["Properties"]["Input"]) == {}  # every tenant with unfinished tasks
    sweep_id = _function_id(template, SWEEP_HANDLER)
    assert template["Outputs"]["TaskSweepArn"]["Value"] == {"Fn::GetAtt": [sweep_id, "Arn"]}
    log_groups = _of_type(template, "AWS::Logs::LogGroup").values()
    assert {"Fn::Sub": f"/aws/lambda/${{{sweep_id}}}"} in [
        g["Properties"]["LogGroupName"] for g in log_groups
    ]


def test_sweep_tenants_and_schedule(schema: Schema) -> None:
    template = render_template(
        schema, sweep_schedule="cron(0/5 * * * ? *)", sweep_tenants=["acme", "globex", "acme"]
    )
    (event,) = _function(template, SWEEP_HANDLER)["Properties"]["Events"].values()
    assert event["Properties"]["Schedule"] == "cron(0/5 * * * ? *)"
    assert json.loads(event["Properties"]["Input"]) == {"tenants": ["acme", "globex"]}


@pytest.mark.parametrize("schedule", [None, ""])
def test_no_sweep_schedule_means_no_sweep(schema: Schema, schedule: str | None) -> None:
    template = render_template(schema, sweep_schedule=schedule)
    assert [f["Properties"]["Handler"] for f in _of_type(template, FUNCTION).values()] == [
        STREAM_HANDLER
    ]
    assert "TaskSweepArn" not in template["Outputs"]
    assert len(_of_type(template, "AWS::Logs::LogGroup")) == 1


@pytest.fixture
def served(cqrs_app: Cqrs) -> Iterator[Cqrs]:
    """``cqrs_app`` as the app of the Lambda handlers (``cqrs.aws.get_app``)."""
    set_app(cqrs_app)
    yield cqrs_app
    set_app(None)


def test_the_sweep_handler_finds_the_tenants_with_unfinished_tasks(served: Cqrs) -> None:
    created = {t: served.tasks.create(t, "job", {}, context=SYSTEM) for t in ("acme", "globex")}
    assert sweep.unfinished_tenants(served) == ["acme", "globex"]
    assert sweep.handler({"staleAfterSeconds": 300}) == {
        "tenants": 2, "examined": 2, "writes": 0, "failed": {}  # too recent to re-trigger
    }  # fmt: skip
    assert sweep.handler({"staleAfterSeconds": 0}) == {
        "tenants": 2, "examined": 2, "writes": 2, "failed": {}
    }  # fmt: skip
    for tenant, task in created.items():
        status = served.tasks.get(tenant, task.sk, consistent=True, context=SYSTEM).status
        assert status is TaskStatus.QUEUED


def test_the_sweep_handler_sweeps_the_tenants_it_is_given(served: Cqrs) -> None:
    for tenant in ("acme", "globex"):
        served.tasks.create(tenant, "job", {}, context=SYSTEM)
    result = sweep.handler({"tenants": ["acme", "initech"], "staleAfterSeconds": 0})
    assert result == {"tenants": 2, "examined": 1, "writes": 1, "failed": {}}
    # no tenants named: both have an unfinished task (acme's is QUEUED now), too recent
    assert sweep.handler(None) == {"tenants": 2, "examined": 2, "writes": 0, "failed": {}}


def test_a_failing_tenant_does_not_stop_the_others(served: Cqrs) -> None:
    served.tasks.create("globex", "job", {}, context=SYSTEM)
    with pytest.raises(OperationalError, match="1 of 2 tenant"):
        sweep.handler({"tenants": ["bad#tenant", "globex"], "staleAfterSeconds": 0})
    assert sweep.handler({"staleAfterSeconds": 0})["examined"] == 1  # globex was swept: QUEUED


@pytest.mark.parametrize(
    "event",
    [{"tenants": "acme"}, {"tenants": [1]}, {"staleAfterSeconds": -1}, {"staleAfterSeconds": "5"}],
)
def test_a_bad_sweep_event_is_refused(served: Cqrs, event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventError):
        sweep.handler(event)


# -- errors --------------------------------------------------------------------------


def test_entities_with_the_same_logical_id_are_refused(tmp_path: Path) -> None:
    (tmp_path / "cqrs.json").write_text(json.dumps({"tables": ["sample-item", "sample_item"]}))
    with pytest.raises(ConfigurationError, match="SampleItemCommandTable"):
        render_template(Schema.load(tmp_path))


def test_a_command_table_without_a_stream_is_refused(tmp_path: Path) -> None:
    shutil.copytree(REPO / "tables", tmp_path / "tables")
    command = tmp_path / "tables" / "templates" / "entity" / "command.json"
    spec = json.loads(command.read_text())
    del spec["StreamSpecification"]
    command.write_text(json.dumps(spec))
    with pytest.raises(ConfigurationError, match="must have a stream"):
        render_template(Schema.load(tmp_path / "tables"))


# -- dump ----------------------------------------------------------------------------


def test_dump_json_round_trips(template: dict[str, Any]) -> None:
    assert json.loads(dump_template(template)) == template


def test_dump_yaml_round_trips(template: dict[str, Any]) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    assert yaml.safe_load(dump_template(template, "yaml")) == template


# -- CLI -----------------------------------------------------------------------------


def cqrs(*argv: str) -> int:
    """Exit code of the ``cqrs`` command line ``argv``."""
    return main(list(argv))


def test_cli_template_to_stdout_uses_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CQRS_TABLE_PREFIX", "env-")
    monkeypatch.setenv("CQRS_TABLES_DIR", str(REPO / "tables"))
    monkeypatch.setenv("CQRS_APP", "shop.app:cqrs")
    assert cqrs("template") == 0
    template = json.loads(capsys.readouterr().out)
    names = {t["Properties"]["TableName"] for t in _of_type(template, TABLE).values()}
    assert "env-order-command" in names
    variables = _function(template)["Properties"]["Environment"]["Variables"]
    assert variables["CQRS_APP"] == "shop.app:cqrs"


def test_cli_template_to_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CQRS_APP", raising=False)
    schema = _two_entities(tmp_path)
    out = tmp_path / "out" / "template.json"
    code = cqrs(
        "template",
        "--out",
        str(out),
        "--tables-dir",
        str(tmp_path),
        "--prefix",
        "cli-",
        "--runtime",
        "python3.13",
        "--batch-size",
        "25",
    )
    assert code == 0
    template = json.loads(out.read_text())
    assert len(_of_type(template, TABLE)) == len(schema.definitions())
    assert _function(template)["Properties"]["Runtime"] == "python3.13"
    assert "CQRS_APP" not in _function(template)["Properties"]["Environment"]["Variables"]
    assert {m["Properties"]["BatchSize"] for m in _of_type(template, MAPPING).values()} == {25}


def test_cli_template_mapping_and_operations_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = ("--tables-dir", str(REPO / "tables"))
    code = cqrs(
        "template", *tables, "--batching-window", "2", "--parallelization-factor", "2",
        "--stream-view-type", "NEW_AND_OLD_IMAGES", "--sweep-tenant", "acme",
        "--sweep-tenant", "globex", "--sweep-schedule", "rate(1 hour)",
    )  # fmt: skip
    assert code == 0
    template = json.loads(capsys.readouterr().out)
    for mapping in _of_type(template, MAPPING).values():
        p = mapping["Properties"]
        assert (p["MaximumBatchingWindowInSeconds"], p["ParallelizationFactor"]) == (2, 2)
    views = {
        t["Properties"]["StreamSpecification"]["StreamViewType"]
        for t in _of_type(template, TABLE).values()
        if "StreamSpecification" in t["Properties"]
    }
    assert views == {"NEW_AND_OLD_IMAGES"}
    (event,) = _function(template, SWEEP_HANDLER)["Properties"]["Events"].values()
    assert event["Properties"]["Schedule"] == "rate(1 hour)"
    assert json.loads(event["Properties"]["Input"]) == {"tenants": ["acme", "globex"]}

    assert cqrs("template", *tables, "--no-notifications", "--sweep-schedule", "") == 0
    template = json.loads(capsys.readouterr().out)
    assert _of_type(template, TOPIC) == {}
    assert len(_of_type(template, FUNCTION)) == 1
    assert cqrs("template", *tables, "--sweep-schedule", "hourly") == 2
    assert "sweep schedule must be" in capsys.readouterr().err


def test_cli_template_yaml_from_suffix(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    out = tmp_path / "template.yaml"
    assert cqrs("template", "--out", str(out), "--tables-dir", str(REPO / "tables")) == 0
    assert yaml.safe_load(out.read_text())["Transform"] == "AWS::Serverless-2016-10-31"


def test_cli_template_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cqrs("template", "--tables-dir", str(tmp_path / "missing")) == 2  # a usage error
    assert "cqrs.json not found" in capsys.readouterr().err


# -- the HTTP service (only when asked for) -------------------------------------------------

HTTP_API = "AWS::Serverless::HttpApi"
ISSUER = "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_Example"
HTTP = HttpApi("examples.orders_api:handler", ISSUER, ("client-1", "client-2"))


def _http_function(template: dict[str, Any]) -> dict[str, Any]:
    return _function(template, "examples.orders_api.handler")


def test_no_http_service_unless_asked(template: dict[str, Any]) -> None:
    assert _of_type(template, HTTP_API) == {}
    assert "HttpApiUrl" not in template["Outputs"]


@pytest.mark.slow
def test_cfn_lint_finds_nothing_with_the_http_service(schema: Schema) -> None:
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint is not installed")
    template = render_template(schema, http=HTTP)
    config = api.ManualArgs(regions=["ap-northeast-1", "us-east-1"], include_checks=["I"])
    assert [str(m) for m in api.lint(dump_template(template), config=config)] == []


def test_the_http_api_verifies_jwts_on_every_route(schema: Schema) -> None:
    template = render_template(schema, http=HTTP)
    ((api_id, api),) = _of_type(template, HTTP_API).items()
    auth = api["Properties"]["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["JwtConfiguration"] == {
        "issuer": ISSUER,
        "audience": ["client-1", "client-2"],
    }
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    function = _http_function(template)["Properties"]
    (event,) = function["Events"].values()
    assert event == {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": api_id}}}  # $default
    assert function["Timeout"] <= 29  # API Gateway gives up at 30 s
    assert function["Environment"]["Variables"]["CQRS_TABLE_PREFIX"] == schema.prefix
    assert api_id in template["Outputs"]["HttpApiUrl"]["Value"]["Fn::Sub"]
    assert f"{_function_id(template, 'examples.orders_api.handler')}LogGroup" in api["DependsOn"]


def test_the_http_function_may_only_use_the_entity_tables(schema: Schema) -> None:
    template = render_template(schema, http=HTTP)
    by_id = _definitions_by_id(schema)
    (policy,) = _http_function(template)["Properties"]["Policies"]
    kinds: dict[str, set[str]] = {}
    *tables, objects = policy["Statement"]
    assert objects == AttributesBucket().statement()  # large attributes: ddb/* of its bucket
    for statement in tables:
        assert statement["Effect"] == "Allow"
        assert all(a.startswith("dynamodb:") for a in statement["Action"])
        assert "*" not in json.dumps(statement)
        for logical_id in _refs(statement["Resource"]):
            kinds.setdefault(by_id[logical_id].kind, set()).update(statement["Action"])
    assert kinds == {
        "command": {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",  # retention ttl, publish_sync's hand-back to the stream
        },
        "data": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
        "history": {"dynamodb:GetItem", "dynamodb:Query"},
    }


def test_the_http_policy_covers_what_the_service_does(
    cqrs_app: Cqrs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request the example service makes, on every route, is one its policy allows."""
    pytest.importorskip("fastapi", reason="the http extra is not installed")
    from fastapi.testclient import TestClient

    from cqrs.http import UNVERIFIED_JWT_ENV, dev_token
    from examples.orders_api import create_api

    monkeypatch.setenv(UNVERIFIED_JWT_ENV, "1")
    kinds = {d.name: d.kind for d in cqrs_app.schema.definitions()}
    made: set[tuple[str, str, bool]] = set()

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        for table in (
            [params["TableName"]] if "TableName" in params else params.get("RequestItems", {})
        ):
            made.add((f"dynamodb:{model.name}", kinds[table], "IndexName" in params))

    headers = {"Authorization": f"Bearer {dev_token({'sub': 'u', 'custom:tenant': 'acme'})}"}
    cqrs_app.clients.dynamodb.meta.events.register("before-parameter-build.dynamodb.*", record)
    try:
        with TestClient(create_api(cqrs_app)) as http:
            assert (
                http.post("/orders", json={"code": "A", "name": "a"}, headers=headers).status_code
                == 201
            )
            body = {"version": 1, "name": "b", "attributes": {}}
            assert http.put("/orders/A", json=body, headers=headers).status_code == 200
            assert http.patch("/orders/A", json={"name": "c"}, headers=headers).status_code == 200
            assert http.delete("/orders/A", headers=headers).status_code == 200
            for path in ("/orders", "/orders/A", "/orders/by-code/A", "/orders/A/history"):
                http.get(path, headers=headers)
    finally:
        cqrs_app.clients.dynamodb.meta.events.unregister(
            "before-parameter-build.dynamodb.*", record
        )
    template = render_template(cqrs_app.schema, http=HTTP)
    by_id = _definitions_by_id(cqrs_app.schema)
    granted: set[tuple[str, str, bool]] = set()
    for statement in _http_function(template)["Properties"]["Policies"][0]["Statement"][:-1]:
        for resource in statement["Resource"]:
            (logical_id,) = _refs(resource)
            index = "/index/" in json.dumps(resource)
            granted |= {(a, by_id[logical_id].kind, index) for a in statement["Action"]}
    assert made and made <= granted, made - granted


@pytest.mark.parametrize(
    "http",
    [
        HttpApi("examples.orders_api.handler", ISSUER, ("a",)),  # not module:attribute
        HttpApi("examples.orders_api:handler", "http://issuer.example.com", ("a",)),
        HttpApi("examples.orders_api:handler", ISSUER, ()),
        HttpApi("examples.orders_api:handler", ISSUER, ("",)),
        HttpApi("examples.orders_api:handler", ISSUER, ("a",), timeout=30),
        HttpApi("examples.orders_api:handler", ISSUER, ("a",), function_name="Bad-Name"),
        HttpApi("examples.orders_api:handler", ISSUER, ("a",), function_name="CqrsStreamHandler"),
    ],
)
def test_invalid_http_options_are_refused(schema: Schema, http: HttpApi) -> None:
    with pytest.raises(ConfigurationError):
        render_template(schema, http=http)


def test_cli_template_http_options(capsys: pytest.CaptureFixture[str]) -> None:
    tables = ("--tables-dir", str(REPO / "tables"))
    http = ("--http", "examples.orders_api:handler", "--jwt-issuer", ISSUER)
    assert cqrs("template", *tables, *http, "--jwt-audience", "c1", "--jwt-audience", "c2") == 0
    template = json.loads(capsys.readouterr().out)
    ((_, api),) = _of_type(template, HTTP_API).items()
    assert api["Properties"]["Auth"]["Authorizers"]["Jwt"]["JwtConfiguration"]["audience"] == [
        "c1",
        "c2",
    ]
    assert _http_function(template)["Properties"]["Handler"] == "examples.orders_api.handler"
    assert cqrs("template", *tables, *http) == 2
    assert "--jwt-audience" in capsys.readouterr().err
    assert cqrs("template", *tables, "--jwt-issuer", ISSUER) == 2
    assert "need --http" in capsys.readouterr().err


# -- the bucket of large attributes ---------------------------------------------------


def _variables(function: dict[str, Any]) -> dict[str, Any]:
    return function["Properties"]["Environment"]["Variables"]


def _bucket_statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    statements = [s for p in function["Properties"]["Policies"] for s in p["Statement"]]
    return [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]


def test_the_template_creates_a_private_bucket_for_large_attributes(schema: Schema) -> None:
    template = render_template(schema, http=HTTP)
    (bucket_id,) = _of_type(template, "AWS::S3::Bucket")
    bucket = template["Resources"][bucket_id]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert set(bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["Properties"]["BucketEncryption"]
    objects = {"Fn::Sub": f"${{{bucket_id}.Arn}}/ddb/*"}
    for function in (_function(template), _http_function(template)):
        assert _variables(function)["CQRS_S3_BUCKET"] == {"Ref": bucket_id}
        (statement,) = _bucket_statements(function)
        assert statement["Resource"] == [objects]  # its ddb/ objects, not the bucket
        assert set(statement["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    sweep = _function(template, SWEEP_HANDLER)
    assert "CQRS_S3_BUCKET" not in _variables(sweep) and _bucket_statements(sweep) == []


def test_an_existing_bucket_or_none(schema: Schema) -> None:
    shared = render_template(schema, attributes_bucket=AttributesBucket(existing="mbc-shop"))
    assert _of_type(shared, "AWS::S3::Bucket") == {}
    handler = _function(shared)
    assert _variables(handler)["CQRS_S3_BUCKET"] == "mbc-shop"
    (statement,) = _bucket_statements(handler)
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:s3:::mbc-shop/ddb/*"}]
    without = render_template(schema, attributes_bucket=None)
    assert _of_type(without, "AWS::S3::Bucket") == {}
    assert "CQRS_S3_BUCKET" not in _variables(_function(without))
    assert _bucket_statements(_function(without)) == []
    with pytest.raises(ConfigurationError):
        render_template(schema, attributes_bucket=AttributesBucket(existing="Not_A_Bucket"))


@pytest.mark.parametrize(
    ("option", "variable"),
    [([], {"Ref": "AttributesBucket"}), (["--attributes-bucket", "mbc-shop"], "mbc-shop"),
     (["--attributes-bucket", "none"], None)],
)  # fmt: skip
def test_the_cli_option(
    option: list[str], variable: Any, tmp_path: Path, cqrs_tables_dir: Path
) -> None:
    out = tmp_path / "template.json"
    args = ["template", "--tables-dir", str(cqrs_tables_dir), "--out", str(out), *option]
    assert main(args) == 0
    handler = _function(json.loads(out.read_text()))
    assert _variables(handler).get("CQRS_S3_BUCKET") == variable
