"""The benchmark's capacity units: DynamoDB's sizing and billing rules, applied to requests.

``bench.capacity`` computes what DynamoDB would bill (the in-process engine only reports
placeholders), so its rules are checked here against the developer guide's, on
requests made to the in-process engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench.capacity import (
    CapacityMeter,
    item_size,
    number_size,
    read_units,
    value_size,
    write_units,
)

REGION = "ap-northeast-1"


# -- sizes -------------------------------------------------------------------------------


def test_scalar_sizes() -> None:
    assert value_size({"S": "abc"}) == 3
    assert value_size({"S": "é"}) == 2  # UTF-8 bytes
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"B": b"\x00\x01"}) == 2  # raw bytes, not base64


@pytest.mark.parametrize(
    ("text", "size"),
    [("1", 2), ("12", 2), ("123", 3), ("-123", 3), ("1000", 2), ("0.0012", 2), ("1.5E+10", 2)],
)
def test_number_size_is_one_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_lists_and_maps_cost_three_bytes_plus_one_per_element() -> None:
    assert value_size({"L": []}) == value_size({"M": {}}) == 3
    assert value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"k": {"S": "ab"}}}) == 3 + (1 + 1 + 2)


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"pk": {"S": "a"}, "n": {"N": "10"}}) == (2 + 1) + (1 + 2)


def test_units_round_up_per_kb_written_and_per_4_kb_read() -> None:
    assert [write_units(s) for s in (0, 1, 1024, 1025, 4096)] == [1, 1, 1, 2, 4]
    assert [read_units(s, True) for s in (0, 4096, 4097)] == [1.0, 1.0, 2.0]
    assert read_units(5000, False) == 1.0  # eventually consistent: half


# -- requests on the engine --------------------------------------------------------------------


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A table with a global secondary index (projection ALL), on the in-process engine."""
    moto = pytest.importorskip("moto")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        client = boto3.session.Session(region_name=REGION).client("dynamodb")
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("pk", "sk", "code")],
            GlobalSecondaryIndexes=[{
                "IndexName": "code-index",
                "KeySchema": [{"AttributeName": "code", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        )  # fmt: skip
        yield client


def _item(sk: str, payload: int, code: str | None = None) -> dict[str, Any]:
    item = {"pk": {"S": "p"}, "sk": {"S": sk}, "blob": {"S": "x" * payload}}
    if code is not None:
        item["code"] = {"S": code}
    return item


def test_writes_bill_per_kb_of_the_larger_item_and_the_index(client: Any) -> None:
    with CapacityMeter(client) as meter:
        client.put_item(TableName="t", Item=_item("a", 2000))  # 2 KB, not indexed
        assert (meter.units.write, meter.units.index_write) == (2, 0)
        client.put_item(TableName="t", Item=_item("b", 100, code="c"))  # indexed: + 1
        assert (meter.units.write, meter.units.index_write) == (4, 1)
        client.put_item(TableName="t", Item=_item("a", 10))  # replaces a 2 KB item: 2
        assert meter.units.write == 6
    assert meter.units.failed_writes == 0


def test_a_failed_conditional_write_is_billed_and_counted(client: Any) -> None:
    client.put_item(TableName="t", Item=_item("a", 1500, code="c"))
    with (
        CapacityMeter(client) as meter,
        pytest.raises(client.exceptions.ConditionalCheckFailedException),
    ):
        client.put_item(
            TableName="t", Item=_item("a", 10), ConditionExpression="attribute_not_exists(pk)"
        )
    # the existing item's size (2 KB), no index write: nothing changed
    assert (meter.units.write, meter.units.index_write, meter.units.failed_writes) == (2, 0, 1)


def test_reads_bill_missing_items_and_consistency(client: Any) -> None:
    client.put_item(TableName="t", Item=_item("a", 5000))
    keys = [{"pk": {"S": "p"}, "sk": {"S": s}} for s in ("a", "missing")]
    with CapacityMeter(client) as meter:
        client.get_item(TableName="t", Key=keys[0], ConsistentRead=True)  # 5 KB: 2
        client.get_item(TableName="t", Key=keys[1])  # missing, eventual: 0.5
        client.batch_get_item(RequestItems={"t": {"Keys": keys, "ConsistentRead": True}})  # 2 + 1
    assert meter.units.read == 2 + 0.5 + 3


def test_batch_writes_bill_every_item(client: Any) -> None:
    requests = [{"PutRequest": {"Item": _item(str(i), 10)}} for i in range(25)]
    with CapacityMeter(client) as meter:
        client.batch_write_item(RequestItems={"t": requests})
    assert meter.units.write == 25


def test_the_meter_asks_for_consumed_capacity_and_reads_it(client: Any) -> None:
    with CapacityMeter(client) as meter:
        response = client.put_item(TableName="t", Item=_item("a", 10))
    assert "ConsumedCapacity" in response  # the hook added ReturnConsumedCapacity=TOTAL
    assert meter.units.reported == response["ConsumedCapacity"]["CapacityUnits"]
