"""Sequences: atomic, formatted, rotating counters (cqrs.system.sequences) against moto."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.config import Config
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from cqrs.core.context import SYSTEM, InvokeContext
from cqrs.core.errors import (
    ConfigurationError,
    InterfaceError,
    InvalidKeyError,
    MissingContextError,
    OperationalError,
    TableNotFoundError,
    TenantMismatchError,
)
from cqrs.schema import Schema
from cqrs.schema.provision import migrate_tables
from cqrs.store import Store, TableAdmin
from cqrs.system.sequences import (
    MAX_RESERVE,
    InvalidSequenceFormatError,
    RotateBy,
    SequenceBlock,
    SequenceFormat,
    SequenceNumber,
    SequenceService,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "ap-northeast-1"
TABLES_DIR = Path(__file__).resolve().parent.parent / "tables"
T0 = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def create_sequences_table(client: DynamoDBClient, prefix: str) -> str:
    schema = Schema.load(TABLES_DIR, prefix=prefix)
    migrate_tables(TableAdmin(client), [d for d in schema.definitions() if d.kind == "sequences"])
    return schema.system_table("sequences")


def scan_all(client: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    return list(client.scan(TableName=table, ConsistentRead=True)["Items"])


class CallLog:
    """Names of the DynamoDB operations a client sends (from botocore's event hooks)."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def clear(self) -> None:
        self.names.clear()


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(var, value)


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)  # caches service models: fast clients


@pytest.fixture
def ddb(aws_env: None, session: boto3.session.Session) -> Iterator[DynamoDBClient]:
    with mock_aws():
        yield session.client("dynamodb")


@pytest.fixture
def table(ddb: DynamoDBClient) -> str:
    return create_sequences_table(ddb, "test-")


@pytest.fixture
def calls(ddb: DynamoDBClient, table: str) -> CallLog:
    return CallLog(ddb)  # registered after the table exists: counts only our requests


@pytest.fixture
def make(ddb: DynamoDBClient, table: str) -> Callable[..., SequenceService]:
    def factory(**kwargs: Any) -> SequenceService:
        return SequenceService(Store(ddb), table, **kwargs)

    return factory


@pytest.fixture
def seq(make: Callable[..., SequenceService]) -> SequenceService:
    return make()


# -- basics ------------------------------------------------------------------------------


def test_first_number_is_one_and_increments(seq: SequenceService) -> None:
    got = [seq.next("T1", "ORD", now=T0, context=SYSTEM) for _ in range(3)]
    assert [n.number for n in got] == [1, 2, 3]
    assert [n.formatted for n in got] == ["1", "2", "3"]
    first = got[0]
    assert isinstance(first, SequenceNumber)
    assert first.rotate_by is RotateBy.NONE
    assert first.rotate_value == "none"
    assert first.issued_at == T0
    assert (first.pk, first.sk) == ("SEQ#t1", "ORD#none")


def test_one_counter_whatever_the_case_of_the_tenant_code(seq: SequenceService) -> None:
    ctx = InvokeContext(tenant_code="acme", user_id="alice")
    got = [seq.next(t, "ORD", now=T0, context=ctx).number for t in ("ACME", "acme", "Acme")]
    assert got == [1, 2, 3]


def test_stored_item_has_keys_and_camel_case_attributes(
    ddb: DynamoDBClient, table: str, seq: SequenceService
) -> None:
    ctx = InvokeContext(tenant_code="T1", user_id="alice")
    seq.next("T1", "ORD", codes=("TOKYO", "A"), rotate_by="daily", now=T0, context=ctx)
    seq.next("T1", "ORD", codes=("TOKYO", "A"), rotate_by="daily", now=T0, context=SYSTEM)
    [item] = scan_all(ddb, table)
    assert item["pk"] == {"S": "SEQ#t1"}
    assert item["sk"] == {"S": "ORD#TOKYO#A#20260305"}
    assert item["seq"] == {"N": "2"}
    assert item["tenantCode"] == {"S": "t1"}  # tenant codes are lowercase in items, as MBC
    assert item["typeCode"] == {"S": "ORD"}
    assert item["codes"] == {"L": [{"S": "TOKYO"}, {"S": "A"}]}
    assert item["rotateBy"] == {"S": "daily"}
    assert item["rotateValue"] == {"S": "20260305"}
    assert item["updatedBy"] == {"S": "system"}
    assert item["createdAt"]["S"] <= item["updatedAt"]["S"]
    datetime.fromisoformat(item["updatedAt"]["S"])  # ISO 8601


def test_counters_are_separate_per_tenant_type_and_codes(seq: SequenceService) -> None:
    assert seq.next("T1", "ORD", now=T0, context=SYSTEM).number == 1
    assert seq.next("T1", "ORD", now=T0, context=SYSTEM).number == 2
    assert seq.next("T2", "ORD", now=T0, context=SYSTEM).number == 1
    assert seq.next("T1", "INV", now=T0, context=SYSTEM).number == 1
    assert seq.next("T1", "ORD", codes=("A",), now=T0, context=SYSTEM).number == 1
    assert seq.next("T1", "ORD", codes=("A", "B"), now=T0, context=SYSTEM).number == 1
    assert seq.next("T1", "ORD", codes=("B",), now=T0, context=SYSTEM).number == 1
    assert seq.next("T1", "ORD", now=T0, context=SYSTEM).number == 3


def test_one_update_item_per_number(seq: SequenceService, calls: CallLog) -> None:
    for _ in range(10):
        seq.next(
            "T1", "ORD", rotate_by=RotateBy.MONTHLY, fmt="ORD-{year}-{no:6}", now=T0, context=SYSTEM
        )
    assert calls.names == ["UpdateItem"] * 10


def test_clock_is_used_when_now_is_not_given(make: Callable[..., SequenceService]) -> None:
    seq = make(clock=lambda: utc(2030, 7, 1, 12), time_zone="Asia/Tokyo")
    n = seq.next("T1", "ORD", rotate_by="daily", fmt="{year}{month}{day}-{no}", context=SYSTEM)
    assert n.formatted == "20300701-1"
    assert n.issued_at == utc(2030, 7, 1, 12)
    assert n.issued_at.tzinfo == ZoneInfo("Asia/Tokyo")


def test_default_clock_is_aware_utc(seq: SequenceService) -> None:
    n = seq.next("T1", "ORD", context=SYSTEM)
    assert n.issued_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - n.issued_at) < timedelta(days=1)


def test_current_reads_the_counter_with_one_get(seq: SequenceService, calls: CallLog) -> None:
    assert seq.current("T1", "ORD", rotate_by="yearly", now=T0, context=SYSTEM) == 0
    seq.reserve("T1", "ORD", count=4, rotate_by="yearly", now=T0, context=SYSTEM)
    assert seq.current("T1", "ORD", rotate_by="yearly", now=T0, context=SYSTEM) == 4
    assert seq.current("T1", "ORD", rotate_by="yearly", now=utc(2027, 1, 1), context=SYSTEM) == 0
    assert calls.names == ["GetItem", "UpdateItem", "GetItem", "GetItem"]


# -- formatting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (None, "1"),
        ("{no}", "1"),
        ("{no:6}", "000001"),
        ("{no:1}", "1"),
        ("{year}-{no}", "2026-1"),
        ("{yy}-{no}", "26-1"),
        ("{month}-{no}", "03-1"),
        ("{month:1}-{no}", "3-1"),
        ("{day}-{no}", "05-1"),
        ("{day:3}-{no}", "005-1"),
        ("{fiscal_year}-{no}", "2025-1"),  # March: still FY2025 with an April start
        ("{type}-{no}", "ORD-1"),
        ("{code1}-{no}", "TOKYO-1"),
        ("{code2}-{no}", "A-1"),
        ("{prefix}{no}{postfix}", "1"),
        ("{{literal}}-{no}", "{literal}-1"),
        ("x{{{no}}}y", "x{1}y"),
        ("番号{no:3}", "番号001"),
    ],
)
def test_each_token(seq: SequenceService, fmt: str | None, expected: str) -> None:
    n = seq.next("T1", "ORD", fmt=fmt, codes=("TOKYO", "A"), now=T0, context=SYSTEM)
    assert n.formatted == expected


def test_all_codes_and_prefix_postfix(seq: SequenceService) -> None:
    fmt = "{prefix}{code1}{code2}{code3}{code4}{code5}-{no:3}{postfix}"
    n = seq.next(
        "T1",
        "ORD",
        fmt=fmt,
        codes=("A", "B", "C", "D", "E"),
        prefix="P-",
        postfix="-Z",
        now=T0,
        context=SYSTEM,
    )
    assert n.formatted == "P-ABCDE-001-Z"
    assert n.sk == "ORD#A#B#C#D#E#none"


def test_business_number_example(seq: SequenceService) -> None:
    seq.reserve("T1", "ORD", count=122, rotate_by="yearly", now=T0, context=SYSTEM)
    n = seq.next(
        "T1",
        "ORD",
        rotate_by="yearly",
        fmt="{prefix}ORD-{year}-{no:6}{postfix}",
        prefix="JP-",
        postfix="-X",
        now=T0,
        context=SYSTEM,
    )
    assert n.formatted == "JP-ORD-2026-000123-X"


def test_width_is_a_minimum_never_a_truncation(seq: SequenceService) -> None:
    seq.reserve("T1", "ORD", count=99, now=T0, context=SYSTEM)
    assert seq.next("T1", "ORD", fmt="{no:2}", now=T0, context=SYSTEM).formatted == "100"


def test_sequence_format_can_be_parsed_once_and_reused(seq: SequenceService) -> None:
    fmt = SequenceFormat.parse("INV-{fiscal_year}-{no:4}")
    assert fmt.tokens == {"fiscal_year", "no"}
    assert seq.next("T1", "INV", fmt=fmt, now=T0, context=SYSTEM).formatted == "INV-2025-0001"


@given(st.text(max_size=40))
def test_literal_text_survives_escaping(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")
    fmt = SequenceFormat.parse(escaped + "{no:3}")
    assert fmt.render({"no": 7}) == text + "007"


# -- rotation ----------------------------------------------------------------------------


def _issue(seq: SequenceService, rotate_by: RotateBy, when: datetime) -> tuple[int, str]:
    n = seq.next("T1", "ORD", rotate_by=rotate_by, now=when, context=SYSTEM)
    return n.number, n.rotate_value


def test_no_rotation_never_restarts(seq: SequenceService) -> None:
    assert _issue(seq, RotateBy.NONE, utc(2026, 12, 31, 23, 59)) == (1, "none")
    assert _issue(seq, RotateBy.NONE, utc(2027, 1, 1)) == (2, "none")
    assert _issue(seq, RotateBy.NONE, utc(2031, 6, 1)) == (3, "none")


def test_yearly_restarts_on_january_first(seq: SequenceService) -> None:
    assert _issue(seq, RotateBy.YEARLY, utc(2026, 1, 1)) == (1, "2026")
    assert _issue(seq, RotateBy.YEARLY, utc(2026, 12, 31, 23, 59, 59)) == (2, "2026")
    assert _issue(seq, RotateBy.YEARLY, utc(2027, 1, 1)) == (1, "2027")
    assert _issue(seq, RotateBy.YEARLY, utc(2027, 1, 1, 0, 1)) == (2, "2027")
    # A late write for the old period continues the old counter.
    assert _issue(seq, RotateBy.YEARLY, utc(2026, 12, 31, 23, 59, 59)) == (3, "2026")


def test_fiscal_year_starts_in_april_by_default(seq: SequenceService) -> None:
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 1, 10)) == (1, "2025")
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 3, 31, 23, 59, 59)) == (2, "2025")
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 4, 1)) == (1, "2026")
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 12, 31)) == (2, "2026")
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2027, 1, 1)) == (3, "2026")  # not Jan 1
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2027, 4, 1)) == (1, "2027")


def test_fiscal_year_with_an_october_start(make: Callable[..., SequenceService]) -> None:
    seq = make(fiscal_start_month=10)
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 4, 1)) == (1, "2025")  # not April
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 9, 30, 23, 59)) == (2, "2025")
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 10, 1)) == (1, "2026")
    n = seq.next(
        "T1", "X", rotate_by="fiscal_yearly", fmt="FY{fiscal_year}-{no}", now=T0, context=SYSTEM
    )
    assert (n.formatted, n.fiscal_year) == ("FY2025-1", 2025)


def test_fiscal_year_starting_in_january_is_the_calendar_year(
    make: Callable[..., SequenceService],
) -> None:
    seq = make(fiscal_start_month=1)
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2026, 12, 31)) == (1, "2026")
    assert _issue(seq, RotateBy.FISCAL_YEARLY, utc(2027, 1, 1)) == (1, "2027")


def test_monthly_restarts_on_the_first(seq: SequenceService) -> None:
    assert _issue(seq, RotateBy.MONTHLY, utc(2026, 1, 31, 23, 59)) == (1, "202601")
    assert _issue(seq, RotateBy.MONTHLY, utc(2026, 1, 1)) == (2, "202601")
    assert _issue(seq, RotateBy.MONTHLY, utc(2026, 2, 1)) == (1, "202602")
    assert _issue(seq, RotateBy.MONTHLY, utc(2027, 1, 15)) == (1, "202701")  # next year's Jan


def test_daily_restarts_at_midnight(seq: SequenceService) -> None:
    assert _issue(seq, RotateBy.DAILY, utc(2028, 2, 28, 23, 59, 59)) == (1, "20280228")
    assert _issue(seq, RotateBy.DAILY, utc(2028, 2, 29)) == (1, "20280229")  # leap day
    assert _issue(seq, RotateBy.DAILY, utc(2028, 2, 29, 12)) == (2, "20280229")
    assert _issue(seq, RotateBy.DAILY, utc(2028, 3, 1)) == (1, "20280301")


def test_time_zone_decides_the_period(make: Callable[..., SequenceService]) -> None:
    tokyo = make(time_zone="Asia/Tokyo")
    moment = utc(2026, 12, 31, 15, 30)  # 2027-01-01 00:30 in Tokyo
    fmt = "{year}{month}{day}-{no}"
    n = tokyo.next("T1", "ORD", rotate_by="yearly", fmt=fmt, now=moment, context=SYSTEM)
    assert (n.rotate_value, n.formatted, n.number) == ("2027", "20270101-1", 1)
    assert n.issued_at.utcoffset() == timedelta(hours=9)
    before = tokyo.next(
        "T1", "ORD", rotate_by="yearly", fmt=fmt, now=utc(2026, 12, 31, 14, 59), context=SYSTEM
    )
    assert (before.rotate_value, before.formatted, before.number) == ("2026", "20261231-1", 1)
    assert tokyo.next("T1", "ORD", rotate_by="yearly", now=moment, context=SYSTEM).number == 2

    # The same instant is still 2026 in UTC: a different counter.
    plain = make()
    assert (
        plain.next("T1", "ORD", rotate_by="yearly", now=moment, context=SYSTEM).rotate_value
        == "2026"
    )


def test_time_zone_decides_the_fiscal_year(make: Callable[..., SequenceService]) -> None:
    tokyo = make(time_zone=ZoneInfo("Asia/Tokyo"))
    n = tokyo.next("T1", "ORD", rotate_by="fiscal_yearly", now=utc(2026, 3, 31, 15), context=SYSTEM)
    assert n.rotate_value == "2026"  # already April 1 in Tokyo
    minus_five = make(time_zone=timezone(timedelta(hours=-5)))
    m = minus_five.next("T1", "ORD", rotate_by="daily", now=utc(2026, 3, 1, 3), context=SYSTEM)
    assert m.rotate_value == "20260228"


# -- reserve -----------------------------------------------------------------------------


def test_reserve_hands_out_contiguous_blocks(seq: SequenceService, calls: CallLog) -> None:
    block = seq.reserve("T1", "ORD", count=5, fmt="ORD-{no:4}", now=T0, context=SYSTEM)
    assert isinstance(block, SequenceBlock)
    assert (block.first, block.last, block.count, len(block)) == (1, 5, 5, 5)
    assert block.formatted == ("ORD-0001", "ORD-0002", "ORD-0003", "ORD-0004", "ORD-0005")
    assert (block.first_formatted, block.last_formatted) == ("ORD-0001", "ORD-0005")
    assert list(block.numbers) == [1, 2, 3, 4, 5]
    assert [(n.number, n.formatted) for n in block] == list(
        zip(block.numbers, block.formatted, strict=True)
    )
    assert seq.next("T1", "ORD", now=T0, context=SYSTEM).number == 6
    again = seq.reserve("T1", "ORD", count=3, now=T0, context=SYSTEM)
    assert (again.first, again.last) == (7, 9)
    one = seq.reserve("T1", "ORD", count=1, now=T0, context=SYSTEM)
    assert (one.first, one.last, one.formatted) == (10, 10, ("10",))
    assert calls.names == ["UpdateItem"] * 4


def test_reserve_follows_rotation(seq: SequenceService) -> None:
    seq.reserve("T1", "ORD", count=50, rotate_by="monthly", now=utc(2026, 1, 31), context=SYSTEM)
    block = seq.reserve(
        "T1", "ORD", count=2, rotate_by="monthly", now=utc(2026, 2, 1), context=SYSTEM
    )
    assert (block.first, block.last, block.rotate_value) == (1, 2, "202602")


# -- refused before any request ----------------------------------------------------------


def _assert_nothing_sent(ddb: DynamoDBClient, table: str, calls: CallLog) -> None:
    assert calls.names == []
    assert scan_all(ddb, table) == []


@pytest.mark.parametrize(
    "fmt",
    [
        "",
        "ORD-",
        "{year}",  # no {no}
        "{{no}}",  # escaped: literal text, still no {no}
        "{no",
        "{no:6",
        "no}",
        "{no}}",
        "{nope}",
        "{No}",
        "{ no }",
        "{}",
        "{no:}",
        "{no:0}",
        "{no:33}",
        "{no:abc}",
        "{no:-1}",
        "{no:6:2}",
        "{code6}{no}",
        "{code1:3}{no}",
        "{prefix:2}{no}",
        "{code3}{no}",  # only two codes are given
        "{year{no}}",
    ],
)
def test_bad_template_raises_before_any_write(
    ddb: DynamoDBClient, table: str, seq: SequenceService, calls: CallLog, fmt: str
) -> None:
    with pytest.raises(InvalidSequenceFormatError) as info:
        seq.next("T1", "ORD", fmt=fmt, codes=("A", "B"), now=T0, context=SYSTEM)
    assert isinstance(info.value, InterfaceError)
    assert repr(fmt) in str(info.value)
    with pytest.raises(InvalidSequenceFormatError):
        seq.reserve("T1", "ORD", count=3, fmt=fmt, codes=("A", "B"), now=T0, context=SYSTEM)
    _assert_nothing_sent(ddb, table, calls)


def test_unknown_token_message_lists_the_known_ones() -> None:
    with pytest.raises(InvalidSequenceFormatError, match=r"unknown token \{seq\}.*fiscal_year"):
        SequenceFormat.parse("{seq}")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prefix": "P-", "fmt": "{no}"}, InvalidSequenceFormatError),
        ({"postfix": "-Z", "fmt": "{prefix}{no}"}, InvalidSequenceFormatError),
        ({"fmt": 42}, InvalidSequenceFormatError),
        ({"prefix": 1}, InterfaceError),
        ({"codes": ("A#B",)}, InvalidKeyError),
        ({"codes": ("A@1",)}, InvalidKeyError),
        ({"codes": ("",)}, InvalidKeyError),
        ({"codes": ("A", 7)}, InvalidKeyError),
        ({"codes": "AB"}, InvalidKeyError),
        ({"codes": ("1", "2", "3", "4", "5", "6")}, InvalidKeyError),
        ({"tenant_code": ""}, InvalidKeyError),
        ({"tenant_code": "T#1"}, InvalidKeyError),
        ({"type_code": "O@R"}, InvalidKeyError),
        ({"type_code": ""}, InvalidKeyError),
        ({"tenant_code": "   "}, InvalidKeyError),  # whitespace only
        ({"tenant_code": "T\n1"}, InvalidKeyError),  # a control character
        ({"type_code": " \t"}, InvalidKeyError),
        ({"type_code": "OR\x00D"}, InvalidKeyError),
        ({"codes": ("A", "  ")}, InvalidKeyError),
        ({"codes": ("A\u200b",)}, InvalidKeyError),  # a format character (Cf)
        ({"rotate_by": "weekly"}, InterfaceError),
        ({"now": datetime(2026, 1, 1)}, InterfaceError),  # naive
        ({"now": "2026-01-01"}, InterfaceError),
    ],
)
def test_bad_input_raises_before_any_write(
    ddb: DynamoDBClient,
    table: str,
    seq: SequenceService,
    calls: CallLog,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    args = {"tenant_code": "T1", "type_code": "ORD", "now": T0, **kwargs}
    with pytest.raises(error):
        seq.next(**args, context=SYSTEM)
    with pytest.raises(error):
        seq.reserve(count=2, **args, context=SYSTEM)
    _assert_nothing_sent(ddb, table, calls)


@pytest.mark.parametrize("count", [0, -1, MAX_RESERVE + 1, True, 2.0, "3"])
def test_bad_count_raises_before_any_write(
    ddb: DynamoDBClient, table: str, seq: SequenceService, calls: CallLog, count: Any
) -> None:
    with pytest.raises(InterfaceError, match="count"):
        seq.reserve("T1", "ORD", count=count, now=T0, context=SYSTEM)
    _assert_nothing_sent(ddb, table, calls)


def test_tenant_mismatch_is_refused(
    ddb: DynamoDBClient, table: str, seq: SequenceService, calls: CallLog
) -> None:
    other = InvokeContext(tenant_code="T2", user_id="mallory")
    with pytest.raises(TenantMismatchError) as info:
        seq.next("T1", "ORD", now=T0, context=other)
    assert (info.value.key_tenant, info.value.context_tenant) == ("T1", "T2")
    with pytest.raises(TenantMismatchError):
        seq.reserve("T1", "ORD", count=2, now=T0, context=other)
    with pytest.raises(TenantMismatchError):
        seq.current("T1", "ORD", now=T0, context=other)
    _assert_nothing_sent(ddb, table, calls)

    mine = InvokeContext(tenant_code="T1", user_id="alice")
    assert seq.next("T1", "ORD", now=T0, context=mine).number == 1
    [item] = scan_all(ddb, table)
    assert item["updatedBy"] == {"S": "alice"}


@pytest.mark.parametrize(
    "call",
    [
        lambda seq, ctx: seq.next("T1", "ORD", now=T0, context=ctx),
        lambda seq, ctx: seq.reserve("T1", "ORD", count=2, now=T0, context=ctx),
        lambda seq, ctx: seq.current("T1", "ORD", now=T0, context=ctx),
    ],
    ids=["next", "reserve", "current"],
)
def test_no_context_is_refused_before_any_request(
    ddb: DynamoDBClient, table: str, seq: SequenceService, calls: CallLog, call: Any
) -> None:
    with pytest.raises(MissingContextError, match="SYSTEM"):
        call(seq, None)
    _assert_nothing_sent(ddb, table, calls)


@pytest.mark.parametrize("method", ["next", "reserve", "current"])
def test_context_is_a_required_keyword(
    ddb: DynamoDBClient, table: str, seq: SequenceService, calls: CallLog, method: str
) -> None:
    kwargs: dict[str, Any] = {"now": T0, **({"count": 2} if method == "reserve" else {})}
    with pytest.raises(TypeError, match="context"):
        getattr(seq, method)("T1", "ORD", **kwargs)
    _assert_nothing_sent(ddb, table, calls)


def test_system_acts_on_any_tenant_as_user_system(
    ddb: DynamoDBClient, table: str, seq: SequenceService
) -> None:
    assert seq.next("T1", "ORD", now=T0, context=SYSTEM).number == 1
    assert seq.reserve("T2", "ORD", count=2, now=T0, context=SYSTEM).last == 2
    assert seq.current("T2", "ORD", now=T0, context=SYSTEM) == 2
    items = scan_all(ddb, table)
    assert {i["pk"]["S"] for i in items} == {"SEQ#t1", "SEQ#t2"}
    assert all(i["updatedBy"] == {"S": "system"} for i in items)


# -- configuration and DynamoDB errors ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_zone": "Mars/Olympus_Mons"},
        {"time_zone": ""},
        {"fiscal_start_month": 0},
        {"fiscal_start_month": 13},
        {"fiscal_start_month": True},
    ],
)
def test_bad_configuration(ddb: DynamoDBClient, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SequenceService(Store(ddb), "test-sequences", **kwargs)


def test_missing_table_is_an_operational_error(ddb: DynamoDBClient) -> None:
    seq = SequenceService(Store(ddb), "no-such-sequences")
    with pytest.raises(TableNotFoundError) as info:
        seq.next("T1", "ORD", now=T0, context=SYSTEM)
    assert isinstance(info.value, OperationalError)
    assert info.value.cause is not None


# -- concurrency against a moto server ---------------------------------------------------
#
# ``moto_server`` is the cqrs pytest plugin's fixture: a ThreadedMotoServer on 127.0.0.1
# (free port, stopped at session end), or CQRS_TEST_ENDPOINT_URL (DynamoDB Local) if set.


@pytest.fixture
def server_service(aws_env: None, moto_server: str) -> SequenceService:
    # moto_server (cqrs.testing) serves each request atomically, as DynamoDB does.
    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=moto_server,
        config=Config(
            max_pool_connections=16,
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
    table = create_sequences_table(client, f"c{uuid4().hex[:8]}-")
    return SequenceService(Store(client), table)


@pytest.mark.engine
def test_concurrent_next_is_unique_and_gap_free(server_service: SequenceService) -> None:
    tenant = "T1"
    threads, per_thread = 8, 25

    def work(_: int) -> list[int]:
        return [
            server_service.next(tenant, "ORD", now=T0, context=SYSTEM).number
            for _ in range(per_thread)
        ]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, i) for i in range(threads)]
        results = [f.result(timeout=120) for f in futures]
    numbers = sorted(itertools.chain.from_iterable(results))
    assert numbers == list(range(1, threads * per_thread + 1))
    for per_worker in results:  # each caller sees its own numbers increase
        assert per_worker == sorted(per_worker)


@pytest.mark.engine
def test_concurrent_reserve_blocks_do_not_overlap(server_service: SequenceService) -> None:
    tenant = "T1"
    threads, per_thread, size = 8, 5, 7

    def work(_: int) -> list[SequenceBlock]:
        return [
            server_service.reserve(
                tenant, "INV", count=size, fmt="INV-{no:5}", now=T0, context=SYSTEM
            )
            for _ in range(per_thread)
        ]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, i) for i in range(threads)]
        blocks = [b for f in futures for b in f.result(timeout=120)]
    numbers = sorted(n for b in blocks for n in b.numbers)
    assert numbers == list(range(1, threads * per_thread * size + 1))
    ids = [i for b in blocks for i in b.formatted]
    assert len(set(ids)) == len(ids)


def test_app_sequences_is_wired_to_the_migrated_table_and_settings(cqrs_app) -> None:
    seq = cqrs_app.sequences
    first = seq.next("acme", "ORD", fmt="ORD-{year}-{no:4}", now=T0, context=SYSTEM)
    assert first.number == 1 and first.formatted == f"ORD-{T0.year}-0001"
    assert cqrs_app.sequences is seq  # one service per app
    with pytest.raises(TenantMismatchError):
        seq.next("acme", "ORD", context=InvokeContext(tenant_code="globex"))
