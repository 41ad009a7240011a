"""The SAM template: valid per cfn-lint and faithful to the schema it was rendered from."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cqrs.cli import main
from cqrs.core.errors import ConfigurationError
from cqrs.deploy.template import (
    TemplateFormat,
    dump_template,
    render_template,
    table_logical_id,
)
from cqrs.schema import Schema, TableDefinition

REPO = Path(__file__).resolve().parents[1]
TABLE = "AWS::DynamoDB::Table"
MAPPING = "AWS::Lambda::EventSourceMapping"

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
EVENTS = {"command": ["INSERT"], "tasks": ["INSERT", "MODIFY"]}


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


def _function(template: dict[str, Any]) -> dict[str, Any]:
    (function,) = _of_type(template, "AWS::Serverless::Function").values()
    return function


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
        assert stream == definition.stream_view_type
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
    function_id = next(iter(_of_type(template, "AWS::Serverless::Function")))
    for mapping in _of_type(template, MAPPING).values():
        props = mapping["Properties"]
        definition = by_id[props["EventSourceArn"]["Fn::GetAtt"][0]]
        assert props["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
        assert props["FunctionName"] == {"Ref": function_id}
        assert props["StartingPosition"] == "TRIM_HORIZON"
        (pattern,) = props["FilterCriteria"]["Filters"]
        assert json.loads(pattern["Pattern"]) == {"eventName": EVENTS[definition.kind]}
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is True
        assert 0 <= props["MaximumRetryAttempts"] <= 10000
        assert 60 <= props["MaximumRecordAgeInSeconds"] <= 604800
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_tunables_reach_the_template(schema: Schema) -> None:
    template = render_template(
        schema,
        memory_size=1024,
        timeout=120,
        batch_size=50,
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


@pytest.mark.parametrize(
    "override",
    [
        {"batch_size": 0},
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
    props = _function(template)["Properties"]
    assert "Role" not in props
    assert all(isinstance(p, dict) for p in props["Policies"])  # no managed policy names
    for statement in _statements(template):
        assert statement["Effect"] == "Allow"
        assert all("*" not in a for a in statement["Action"])
        for resource in statement["Resource"]:
            assert isinstance(resource, dict), "resources are this stack's ARNs, not literals"
            assert "*" not in json.dumps(resource).replace("/stream/*", "")


def test_policy_names_only_this_schemas_tables(schema: Schema, template: dict[str, Any]) -> None:
    by_id = _definitions_by_id(schema)
    (queue_id,) = _of_type(template, "AWS::SQS::Queue")
    granted: dict[str, set[str]] = {}
    for statement in _statements(template):
        for logical_id in _refs(statement["Resource"]):
            assert logical_id in by_id or logical_id == queue_id
            granted.setdefault(logical_id, set()).update(statement["Action"])
    assert granted.pop(queue_id) == {"sqs:SendMessage"}
    for logical_id, definition in by_id.items():
        stream = STREAM_READS if definition.kind in EVENTS else set()
        assert granted.get(logical_id, set()) == NEEDED.get(definition.kind, set()) | stream


def test_index_and_stream_arns(schema: Schema, template: dict[str, Any]) -> None:
    resources = [s for st in _statements(template) for s in _strings(st["Resource"])]
    for logical_id, definition in _definitions_by_id(schema).items():
        for index in definition.indexes:
            assert f"${{{logical_id}.Arn}}/index/{index['IndexName']}" in resources
        if definition.kind in EVENTS:
            assert f"${{{logical_id}.Arn}}/stream/*" in resources
    sequences = table_logical_id(next(d for d in schema.definitions() if d.kind == "sequences"))
    assert sequences not in {r for st in _statements(template) for r in _refs(st["Resource"])}


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


def test_cli_template_yaml_from_suffix(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    out = tmp_path / "template.yaml"
    assert cqrs("template", "--out", str(out), "--tables-dir", str(REPO / "tables")) == 0
    assert yaml.safe_load(out.read_text())["Transform"] == "AWS::Serverless-2016-10-31"


def test_cli_template_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cqrs("template", "--tables-dir", str(tmp_path / "missing")) == 2  # a usage error
    assert "cqrs.json not found" in capsys.readouterr().err
