"""The typed record of a stored counter item, and the sequence errors in core."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import cqrs.core.errors as core_errors
import cqrs.system.sequences as sequences_package
from cqrs.core.context import SYSTEM, InvokeContext
from cqrs.core.errors import InterfaceError, is_retryable
from cqrs.schema import Schema
from cqrs.schema.provision import migrate_tables
from cqrs.store import Store, TableAdmin, from_wire_item
from cqrs.system.sequences import RotateBy, SequenceService
from cqrs.system.sequences.records import CounterItem, seq_of

TABLES_DIR = Path(__file__).resolve().parent.parent / "tables"
T0 = datetime(2026, 3, 5, 12, tzinfo=UTC)


@pytest.fixture
def seq(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SequenceService, Any, str]]:
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(var, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        schema = Schema.load(TABLES_DIR, prefix="test-")
        defs = [d for d in schema.definitions() if d.kind == "sequences"]
        migrate_tables(TableAdmin(client), defs)
        table = schema.system_table("sequences")
        yield SequenceService(Store(client), table), client, table


@pytest.mark.parametrize("name", ["InvalidSequenceFormatError", "InvalidSequenceItemError"])
def test_sequence_errors_live_in_core_and_are_re_exported(name):
    error = getattr(core_errors, name)
    assert getattr(sequences_package, name) is error
    assert issubclass(error, InterfaceError) and not is_retryable(error("x"))


def test_the_record_is_the_stored_item(seq):
    service, client, table = seq
    ctx = InvokeContext(tenant_code="T1", user_id="alice")
    service.next("T1", "ORD", codes=("A",), rotate_by="monthly", now=T0, context=ctx)
    [wire] = client.scan(TableName=table)["Items"]
    item = from_wire_item(wire)
    record = CounterItem.from_item(item)
    assert record.to_item() == item
    assert (record.seq, record.codes, record.rotate_by, record.rotate_value) == (
        1, ("A",), RotateBy.MONTHLY, "202603"
    )  # fmt: skip
    assert record.key == {"pk": "SEQ#t1", "sk": "ORD#A#202603"}
    assert record.updated_by == "alice" and record.created_at == record.updated_at


def test_seq_of_reads_a_projection_or_nothing():
    assert seq_of(None) == 0
    assert seq_of({}) == 0
    assert seq_of({"seq": 12}) == 12
    with pytest.raises(core_errors.InvalidSequenceItemError):
        seq_of({"seq": "12"})


@pytest.mark.parametrize(
    "changes",
    [{"rotateBy": "weekly"}, {"codes": "A"}, {"codes": [1]}, {"typeCode": None}, {"seq": 1.5}],
    ids=str,
)
def test_a_malformed_counter_item_is_an_invalid_sequence_item_error(changes):
    item = {
        "pk": "SEQ#T1", "sk": "ORD#none", "seq": 1, "tenantCode": "T1", "typeCode": "ORD",
        "codes": [], "rotateBy": "none", "rotateValue": "none",
    }  # fmt: skip
    item.update(changes)
    with pytest.raises(core_errors.InvalidSequenceItemError, match="ORD#none"):
        CounterItem.from_item({k: v for k, v in item.items() if v is not None})


def test_a_system_issue_is_recorded_as_user_system(seq):
    service, client, table = seq
    service.next("T1", "ORD", now=T0, context=SYSTEM)
    [wire] = client.scan(TableName=table)["Items"]
    assert CounterItem.from_item(from_wire_item(wire)).updated_by == "system"
