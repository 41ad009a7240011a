"""migrate: creates what is missing, fixes drift, never deletes, is idempotent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cqrs import ConfigurationError, Cqrs, Settings, UnknownEntityError
from cqrs.cli import main
from cqrs.core.errors import AccessDeniedError, ThrottledError, is_retryable
from cqrs.schema import Schema
from cqrs.schema.provision import migrate_tables
from cqrs.store import TableAdmin
from cqrs.testing import REGION

FIXTURES = Path(__file__).parent / "fixtures" / "tables"


@pytest.fixture
def moto_client():
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def schema(prefix: str = "dev-shop-") -> Schema:
    return Schema.load(FIXTURES, prefix)


def describe(client, name: str) -> dict:
    return client.describe_table(TableName=name)["Table"]


def test_creates_every_table_with_keys_index_stream_and_ttl(moto_client):
    changes = migrate_tables(TableAdmin(moto_client), schema().definitions())

    names = sorted(moto_client.list_tables()["TableNames"])
    assert names == sorted(
        [f"dev-shop-{e}-{k}" for e in ("order", "cat") for k in ("command", "data", "history")]
        + ["dev-shop-migrations", "dev-shop-sequences", "dev-shop-sync-failures", "dev-shop-tasks"]
    )
    assert {c.action for c in changes} == {"create-table", "enable-ttl"}
    command = describe(moto_client, "dev-shop-order-command")
    assert command["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert command["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    data = describe(moto_client, "dev-shop-order-data")
    (index,) = data["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "code-index"
    assert index["KeySchema"] == [
        {"AttributeName": "tenantCode", "KeyType": "HASH"},
        {"AttributeName": "code", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert "StreamSpecification" not in describe(moto_client, "dev-shop-order-history")
    for name in names:  # TTL on from the first run (MBC needs a second one) ...
        ttl = moto_client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if name == "dev-shop-sync-failures":  # ... but a stuck entity must not expire away
            assert ttl["TimeToLiveStatus"] == "DISABLED"
            continue
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_second_run_changes_nothing(moto_client):
    migrate_tables(TableAdmin(moto_client), schema().definitions())
    lines: list[str] = []
    assert migrate_tables(TableAdmin(moto_client), schema().definitions(), echo=lines.append) == []
    assert len(lines) == 10 and all(line.startswith("up to date") for line in lines)


def test_fixes_drift_without_deleting_anything(moto_client):
    name = "dev-shop-order-data"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    moto_client.create_table(
        TableName=name,
        KeySchema=keys,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "extra", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "extra-index",
                "KeySchema": [{"AttributeName": "extra", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    moto_client.create_table(
        TableName="dev-shop-order-command",
        KeySchema=keys,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    moto_client.create_table(
        TableName="someone-elses-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    changes = migrate_tables(TableAdmin(moto_client), schema().definitions())

    by_table = {(c.table, c.action) for c in changes}
    assert (name, "add-index") in by_table
    assert (name, "enable-ttl") in by_table
    assert ("dev-shop-order-command", "set-stream") in by_table
    indexes = {i["IndexName"] for i in describe(moto_client, name)["GlobalSecondaryIndexes"]}
    assert indexes == {"extra-index", "code-index"}  # ours added, theirs kept
    stream = describe(moto_client, "dev-shop-order-command")["StreamSpecification"]
    assert stream == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert "someone-elses-table" in moto_client.list_tables()["TableNames"]
    assert migrate_tables(TableAdmin(moto_client), schema().definitions()) == []


def test_dry_run_reports_and_changes_nothing(moto_client):
    lines: list[str] = []
    changes = migrate_tables(
        TableAdmin(moto_client), schema().definitions(), dry_run=True, echo=lines.append
    )
    assert len(changes) == 19  # 10 tables, each created; 9 with TTL
    assert all(line.startswith("would ") for line in lines)
    assert moto_client.list_tables()["TableNames"] == []


def test_table_prefix_and_entity_lookup(tmp_path):
    listing = tmp_path / "cqrs.json"
    listing.write_text(json.dumps({"tables": ["order", "cat"]}))
    s = Schema.load(tmp_path, "prod-app-")
    assert s.entity_tables("cat").history == "prod-app-cat-history"
    assert s.system_table("tasks") == "prod-app-tasks"
    assert s.entity_of_command_table("prod-app-cat-command") == "cat"
    assert s.entity_of_command_table("prod-app-cat-data") is None
    with pytest.raises(UnknownEntityError, match="dog"):
        s.entity_tables("dog")


@pytest.mark.parametrize(
    "content", ["not json", '{"tables": "order"}', '{"entities": ["order"]}', '{"tables": [""]}']
)
def test_bad_table_listing_is_a_clear_error(tmp_path, content):
    (tmp_path / "cqrs.json").write_text(content)
    with pytest.raises(ConfigurationError, match=r"cqrs\.json"):
        Schema.load(tmp_path)


def test_missing_listing_names_the_setting(tmp_path):
    with pytest.raises(ConfigurationError, match="CQRS_TABLES_DIR"):
        Schema.load(tmp_path / "nowhere")


def test_app_migrate_uses_the_prefix(moto_client):
    app = Cqrs(Settings(tables_dir=FIXTURES, table_prefix="x-", region=REGION))
    app.migrate()
    assert "x-cat-command" in moto_client.list_tables()["TableNames"]


def test_cli_migrate_is_idempotent_and_prints(moto_client, capsys):
    args = ["migrate", "--tables-dir", str(FIXTURES), "--prefix", "cli-"]
    assert main([*args, "--dry-run"]) == 0
    assert "would create-table cli-order-command" in capsys.readouterr().out
    assert moto_client.list_tables()["TableNames"] == []
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "create-table cli-cat-data" in first and "changed 19" in first
    assert main(args) == 0
    assert "changed 0" in capsys.readouterr().out


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert main(["migrate", "--tables-dir", str(tmp_path)]) == 2
    assert "cqrs: error:" in capsys.readouterr().err


# -- errors are classified ---------------------------------------------------------


def refuse(code: str, operation: str, status: int = 400) -> Any:
    """A botocore ``before-call`` hook raising ``code`` as DynamoDB would."""

    def hook(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": code, "Message": f"not allowed: dynamodb:{operation}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            operation,
        )

    return hook


def test_a_denied_describe_is_access_denied_and_not_retryable(moto_client):
    app = Cqrs(Settings(tables_dir=FIXTURES, table_prefix="denied-", region=REGION))
    app.clients.dynamodb.meta.events.register(
        "before-call.dynamodb.DescribeTable", refuse("AccessDeniedException", "DescribeTable")
    )

    with pytest.raises(AccessDeniedError) as caught:
        app.migrate()

    error = caught.value
    assert error.retryable is False and not is_retryable(error)
    assert isinstance(error.cause, ClientError) and error.__cause__ is error.cause
    assert error.cause.response["Error"]["Code"] == "AccessDeniedException"
    assert "denied-" in str(error) and "IAM" in str(error)
    assert moto_client.list_tables()["TableNames"] == []  # nothing was attempted after it


def test_a_throttled_create_is_retryable_and_a_rerun_completes(moto_client):
    app = Cqrs(Settings(tables_dir=FIXTURES, table_prefix="busy-", region=REGION))
    events = app.clients.dynamodb.meta.events
    hook = refuse("ThrottlingException", "CreateTable")
    events.register("before-call.dynamodb.CreateTable", hook)
    with pytest.raises(ThrottledError) as caught:
        app.migrate()
    assert caught.value.retryable and isinstance(caught.value.cause, ClientError)

    events.unregister("before-call.dynamodb.CreateTable", hook)
    assert {c.action for c in app.migrate()} == {"create-table", "enable-ttl"}
    assert app.migrate() == []


def test_cli_migrate_reports_a_denied_permission_as_such(moto_client, capsys, monkeypatch):
    import cqrs.app

    build = cqrs.app.make_clients

    def denied_clients(settings: Settings) -> Any:
        clients = build(settings)
        clients.dynamodb.meta.events.register(
            "before-call.dynamodb.DescribeTable", refuse("AccessDeniedException", "DescribeTable")
        )
        return clients

    monkeypatch.setattr(cqrs.app, "make_clients", denied_clients)

    assert main(["migrate", "--tables-dir", str(FIXTURES), "--prefix", "cli-"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("cqrs: error: describe cli-") and "access denied" in err
    assert "retry" not in err.lower() and "Traceback" not in err
