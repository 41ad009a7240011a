"""``Settings`` reads the environment as pydantic-settings' ``env_prefix="CQRS_"`` did.

(It imports neither pydantic-settings nor pydantic: ``tests/test_cold_start.py``.)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from cqrs import InvalidSettingsError, Settings

_READ = ("AWS_REGION", "AWS_DEFAULT_REGION", "REGION")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("CQRS_") or name.upper() in _READ:
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = Settings()
    assert (s.endpoint_url, s.region, s.table_prefix, s.tables_dir) == (
        None,
        "ap-northeast-1",
        "",
        Path("tables"),
    )
    assert (s.time_zone, s.fiscal_start_month, s.sns_topic_arn, s.sync_max_attempts) == (
        "UTC",
        4,
        None,
        5,
    )


def test_every_field_reads_its_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_ENDPOINT_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("CQRS_TABLE_PREFIX", "dev-")
    monkeypatch.setenv("CQRS_TABLES_DIR", "/srv/tables")
    monkeypatch.setenv("CQRS_TIME_ZONE", "Asia/Tokyo")
    monkeypatch.setenv("CQRS_FISCAL_START_MONTH", " 7 ")
    monkeypatch.setenv("CQRS_SNS_TOPIC_ARN", "arn:aws:sns:ap-northeast-1:1:t")
    monkeypatch.setenv("CQRS_SYNC_MAX_ATTEMPTS", "3")
    s = Settings()
    assert s.endpoint_url == "http://127.0.0.1:8000" and s.table_prefix == "dev-"
    assert s.tables_dir == Path("/srv/tables") and s.time_zone == "Asia/Tokyo"
    assert s.fiscal_start_month == 7 and s.sync_max_attempts == 3
    assert s.sns_topic_arn == "arn:aws:sns:ap-northeast-1:1:t"


def test_names_are_case_insensitive_and_unknown_ones_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("cqrs_table_prefix", "lower-")
    monkeypatch.setenv("CQRS_BOGUS", "1")
    assert Settings().table_prefix == "lower-"
    assert Settings(bogus=1).table_prefix == "lower-"


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_TABLE_PREFIX", "env-")
    monkeypatch.setenv("CQRS_ENDPOINT_URL", "ftp://not-used")
    s = Settings(table_prefix="kw-", endpoint_url=None)
    assert s.table_prefix == "kw-" and s.endpoint_url is None


def test_region_reads_aws_variables_unprefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_REGION", "ignored")
    assert Settings().region == "ap-northeast-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert Settings().region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert Settings().region == "us-east-1"  # AWS_REGION first
    assert Settings(region="kw").region == "kw"
    assert Settings(AWS_DEFAULT_REGION="kw-alias").region == "kw-alias"


def test_empty_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_ENDPOINT_URL", "")
    monkeypatch.setenv("CQRS_SNS_TOPIC_ARN", "")
    s = Settings()
    assert s.endpoint_url is None and s.sns_topic_arn == ""


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("CQRS_FISCAL_START_MONTH", "13", "fiscal_start_month"),
        ("CQRS_SYNC_MAX_ATTEMPTS", "0", "sync_max_attempts"),
        ("CQRS_ENDPOINT_URL", "ftp://example.com", "endpoint_url"),
    ],
)
def test_invalid_values_name_the_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSettingsError) as raised:
        Settings()
    assert [(name, where) for name, where, _ in raised.value.problems] == [(field, variable)]
    assert f"invalid {variable}: " in str(raised.value) and repr(value) in str(raised.value)


@pytest.mark.parametrize(
    ("values", "field", "what"),
    [
        ({"fiscal_start_month": 0}, "fiscal_start_month", "from 1 to 12"),
        ({"fiscal_start_month": 4.5}, "fiscal_start_month", "an integer"),
        ({"sync_max_attempts": "many"}, "sync_max_attempts", "an integer"),
        ({"sync_max_attempts": True}, "sync_max_attempts", "a number"),
        ({"table_prefix": 3}, "table_prefix", "text"),
        ({"tables_dir": 3}, "tables_dir", "a path"),
        ({"command_ttl_days": 0}, "command_ttl_days", "above 0"),
        ({"command_ttl_master_data": "maybe"}, "command_ttl_master_data", "true or false"),
    ],
)
def test_invalid_keywords_name_the_field(values: dict[str, object], field: str, what: str) -> None:
    with pytest.raises(InvalidSettingsError) as raised:
        Settings(**values)
    [(name, where, message)] = raised.value.problems
    assert (name, where) == (field, field) and what in message


def test_every_bad_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_FISCAL_START_MONTH", "0")
    with pytest.raises(InvalidSettingsError) as raised:
        Settings(sync_max_attempts=0)
    assert {name for name, _, _ in raised.value.problems} == {
        "fiscal_start_month",
        "sync_max_attempts",
    }


def test_values_are_coerced_as_pydantic_did(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_COMMAND_TTL_DAYS", "1.5")
    monkeypatch.setenv("CQRS_COMMAND_TTL_MASTER_DATA", " Yes ")
    s = Settings(tables_dir="t", fiscal_start_month=7.0)
    assert (s.tables_dir, s.fiscal_start_month) == (Path("t"), 7)
    assert (s.command_ttl_days, s.command_ttl_master_data) == (1.5, True)


def test_frozen_and_copied_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.table_prefix = "x"  # type: ignore[misc]
    monkeypatch.setenv("CQRS_TABLE_PREFIX", "later-")
    assert s.model_copy(update={"sync_max_attempts": 2}).table_prefix == ""
    assert Settings() != s and Settings(table_prefix="") == s
    assert s.replace(table_prefix="p-").table_prefix == "p-"
    with pytest.raises(InvalidSettingsError):
        s.replace(sync_max_attempts=0)
    assert "appsync_api_key" not in repr(Settings(appsync_api_key="secret"))
