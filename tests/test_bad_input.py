"""Bad input: each class gets a specific, typed error before anything is written.

Every case runs on a fresh app; the test counts the items of every table before
and after the bad call, so "nothing written" is checked, not assumed. The README's
"Bad input" table lists these classes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs import (
    SYSTEM,
    CommandInput,
    CommandPartialInput,
    ConfigurationError,
    CqrsError,
    InterfaceError,
    InvalidAttributesError,
    InvalidEventError,
    InvalidKeyError,
    InvalidNumberError,
    InvalidValueError,
    InvokeContext,
    ItemTooLargeError,
    MissingContextError,
    TableNotFoundError,
    TenantMismatchError,
    UnknownEntityError,
)
from cqrs.schema import Schema
from cqrs.store.codec import MAX_ITEM_BYTES, item_size, to_wire_item
from cqrs.testing import make_test_app

CTX = InvokeContext(tenant_code="acme", user_id="u")
PK = "ORDER#acme"


class Typed(BaseModel):
    qty: int


def order(**overrides: Any) -> CommandInput:
    fields: dict[str, Any] = {
        "pk": PK,
        "sk": "ORDER#1",
        "code": "1",
        "name": "n",
        "tenant_code": "acme",
        "type": "ORDER",
        "version": 0,
        "attributes": {"qty": 1},
    }
    fields.update(overrides)
    return CommandInput.model_construct(**fields)


def publish(context: Any = CTX, **overrides: Any) -> Callable[[Any], object]:
    return lambda app: app.entity("order").commands.publish_async(order(**overrides), context)


def attrs(value: Any) -> Callable[[Any], object]:
    return publish(attributes={"value": value})


def publish_typed(attributes: Any) -> Callable[[Any], object]:
    return lambda app: app.entity("cat").commands.publish_async(
        order(pk="CAT#acme", sk="CAT#1", type="CAT", attributes=attributes), CTX
    )


def partial(**overrides: Any) -> Callable[[Any], object]:
    fields = {"pk": PK, "sk": "ORDER#1", "version": -1, **overrides}
    return lambda app: app.entity("order").commands.publish_partial_update_async(
        CommandPartialInput.model_construct(**fields), CTX
    )


def on(service: str, method: str, *args: Any, **kwargs: Any) -> Callable[[Any], object]:
    kwargs.setdefault("context", SYSTEM)
    return lambda app: getattr(getattr(app.entity("order"), service), method)(*args, **kwargs)


def event(raw: Any) -> Callable[[Any], object]:
    return lambda app: app.handle_event(raw)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


LONG = "x" * 1100
BASE = publish()  # a setup step: one stored command for the cases that update it

Case = tuple[str, Callable[[Any], object] | None, Callable[[Any], object], type[CqrsError], str]

CASES: list[Case] = [
    # -- numbers DynamoDB cannot store ----------------------------------------------------
    ("39 significant digits", None, attrs(Decimal("1." + "2" * 38)), InvalidNumberError, "38"),
    ("int of 39 digits", None, attrs(10**38 + 1), InvalidNumberError, "significant digits"),
    ("float too large", None, attrs(1e300), InvalidNumberError, "range"),
    ("Decimal too large", None, attrs(Decimal("1e126")), InvalidNumberError, "range"),
    ("Decimal too small", None, attrs(Decimal("1e-131")), InvalidNumberError, "range"),
    ("float too small", None, attrs(1e-200), InvalidNumberError, "range"),
    ("NaN", None, attrs(math.nan), InvalidNumberError, "finite"),
    ("+inf", None, attrs(math.inf), InvalidNumberError, "finite"),
    ("-inf", None, attrs(-math.inf), InvalidNumberError, "finite"),
    ("Decimal NaN", None, attrs(Decimal("NaN")), InvalidNumberError, "finite"),
    ("Decimal Infinity", None, attrs(Decimal("-Infinity")), InvalidNumberError, "finite"),
    ("bad number nested", None, attrs([1, {"b": math.inf}]), InvalidNumberError, r"\[1\]\.b"),
    ("NaN in a partial update", BASE, partial(attributes={"x": math.nan}), InvalidNumberError, "x"),
    ("NaN in a set", None, attrs({1.0, math.nan}), InvalidNumberError, "finite"),
    # -- values DynamoDB cannot store --------------------------------------------------------
    ("non-string map key", None, attrs({1: "x"}), InvalidValueError, "map keys"),
    ("tuple map key, nested", None, attrs({"a": {(1, 2): "x"}}), InvalidValueError, "map keys"),
    ("nested 33 deep", None, attrs(nested(33)), InvalidValueError, "32 levels"),
    ("nested 3,000 deep", None, attrs(nested(3000)), InvalidValueError, "32 levels"),
    ("empty set", None, attrs(set()), InvalidValueError, "empty set"),
    ("mixed set", None, attrs({1, "a"}), InvalidValueError, "only strings"),
    ("set of booleans", None, attrs({True}), InvalidValueError, "only strings"),
    ("datetime value", None, attrs(datetime(2026, 1, 1)), InvalidValueError, "datetime"),
    ("arbitrary object", None, attrs(object()), InvalidValueError, "object"),
    ("attributes not a mapping", None, publish(attributes=[1, 2]), InvalidAttributesError, "map"),
    ("typed: wrong type", None, publish_typed({"qty": "many"}), InvalidAttributesError, "qty"),
    ("typed: missing field", None, publish_typed({}), InvalidAttributesError, "qty"),
    # -- key parts ---------------------------------------------------------------------------
    ("code with #", None, publish(code="a#b", sk="ORDER#a#b"), InvalidKeyError, "code"),
    ("code with @", None, publish(code="a@b"), InvalidKeyError, "'@'"),
    ("code with control char", None, publish(code="a\nb", sk="ORDER#a\nb"), InvalidKeyError,
     "control"),
    ("code with NUL", None, publish(code="a\x00b", sk="ORDER#a\x00b"), InvalidKeyError, "control"),
    ("whitespace-only code", None, publish(code="  ", sk="ORDER#  "), InvalidKeyError,
     "whitespace"),
    ("whitespace-only tenant", None,
     publish(InvokeContext(tenant_code=" "), pk="ORDER# ", tenant_code=" "), InvalidKeyError,
     "whitespace"),
    ("tenant with control char", None,
     publish(InvokeContext(tenant_code="a\tb"), pk="ORDER#a\tb", tenant_code="a\tb"),
     InvalidKeyError, "control"),
    ("tenant with @", None, publish(pk="ORDER#ac@me"), InvalidKeyError, "'@'"),
    ("type with #", None, publish(type="OR#DER"), InvalidKeyError, "type"),
    ("type with @", None, publish(type="ORD@R"), InvalidKeyError, "type"),
    ("empty type", None, publish(type=""), InvalidKeyError, "type"),
    ("sk with @", None, publish(sk="ORDER#1@3"), InvalidKeyError, "'@'"),
    ("empty pk", None, publish(pk=""), InvalidKeyError, "pk"),
    ("empty sk", None, publish(sk=""), InvalidKeyError, "sk"),
    ("pk without tenant", None, publish(pk="ORDER"), InvalidKeyError, "<TYPE>#<tenantCode>"),
    ("empty key part", None, publish(sk="ORDER##1"), InvalidKeyError, "empty part"),
    ("pk over 2,048 bytes", None,
     publish(InvokeContext(tenant_code=LONG * 2), pk=f"ORDER#{LONG * 2}", tenant_code=LONG * 2),
     InvalidKeyError, "bytes"),
    ("sk over 1,024 bytes", None, publish(code=LONG, sk=f"ORDER#{LONG}"), InvalidKeyError,
     "bytes"),
    # -- key parts that disagree ---------------------------------------------------------------
    ("pk type ≠ type", None, publish(type="CAT"), InvalidKeyError, "disagrees with its type"),
    ("sk ≠ code", None, publish(code="2"), InvalidKeyError, "must end with '#2'"),
    ("custom id of another tenant", None, publish(id="ORDER#b#ORDER#B1"), InvalidKeyError,
     "pk#sk"),
    ("other tenant's pk", None, publish(pk="ORDER#globex"), TenantMismatchError, "globex"),
    ("other tenant code", None, publish(tenant_code="globex"), TenantMismatchError, "globex"),
    ("partial update breaking sk/code", BASE, partial(code="9"), InvalidKeyError, "end with"),
    # -- versions and version suffixes -----------------------------------------------------------
    ("version below -1", None, publish(version=-2), InterfaceError, "version"),
    ("version not an int", None, publish(version="1"), InterfaceError, "integer"),
    ("partial version below -1", None, partial(version=-5), InterfaceError, "version"),
    ("duplicate @abc", BASE,
     lambda app: app.entity("order").commands.duplicate(PK, "ORDER#1@abc", CTX),
     InvalidKeyError, "malformed version"),
    ("duplicate @0", BASE,
     lambda app: app.entity("order").commands.duplicate(PK, "ORDER#1@0", CTX),
     InvalidKeyError, "malformed version"),
    ("duplicate @-1", BASE,
     lambda app: app.entity("order").commands.duplicate(PK, "ORDER#1@-1", CTX),
     InvalidKeyError, "malformed version"),
    ("commands.get @", None, on("commands", "get", PK, "ORDER#1@"), InvalidKeyError, "malformed"),
    ("commands.get @01", None, on("commands", "get", PK, "ORDER#1@01"), InvalidKeyError,
     "malformed"),
    ("history.get @x", None, on("history", "get", PK, "ORDER#1@x", 1), InvalidKeyError,
     "malformed"),
    ("history.list @x", None, on("history", "list", PK, "ORDER#1@x"), InvalidKeyError,
     "malformed"),
    ("history.get version 0", None, on("history", "get", PK, "ORDER#1", 0), InterfaceError,
     "version"),
    ("is_applied empty sk", None, on("commands", "is_applied", PK, "", 1), InvalidKeyError, "sk"),
    ("is_applied version text", None, on("commands", "is_applied", PK, "ORDER#1", "1"),
     InterfaceError, "version"),
    # -- reads validate keys as writes do ------------------------------------------------------
    ("data.get sk with @", None, on("data", "get", PK, "ORDER#1@2"), InvalidKeyError, "'@'"),
    ("data.get control char", None, on("data", "get", PK, "ORDER#\x07"), InvalidKeyError,
     "control"),
    ("latest_version bad pk", None, on("commands", "latest_version", "ORDER", "ORDER#1"),
     InvalidKeyError, "pk"),
    ("list_by_pk bad pk", None, on("data", "list_by_pk", "ORDER"), InvalidKeyError, "pk"),
    ("list_by_pk bad limit", None, on("data", "list_by_pk", PK, limit=0), InterfaceError, "limit"),
    ("find_by_code with #", None, on("data", "find_by_code", "acme", "a#b"), InvalidKeyError,
     "code"),
    ("find_by_code whitespace", None, on("data", "find_by_code", "acme", " "), InvalidKeyError,
     "whitespace"),
    ("bad cursor", None, on("data", "list_by_pk", PK, cursor="!"), InterfaceError, "cursor"),
    # -- contexts ----------------------------------------------------------------------------------
    ("read without context", None, on("data", "get", PK, "ORDER#1", context=None),
     MissingContextError, "context=SYSTEM"),
    ("publish under SYSTEM", None, publish(SYSTEM), InterfaceError, "InvokeContext"),
    # -- sizes
    ("over 400 KB", None, attrs("x" * 410_000), ItemTooLargeError, "S3"),
    # -- the app and events
    ("unknown entity", None, lambda app: app.entity("dog"), UnknownEntityError, "dog"),
    ("event: not a mapping", None, event(None), InvalidEventError, "Records"),
    ("event: no Records", None, event({}), InvalidEventError, "Records"),
    ("event: Records not a list", None, event({"Records": "x"}), InvalidEventError, "Records"),
]  # fmt: skip


def counts(app: Any) -> dict[str, int]:
    ddb = app.clients.dynamodb
    return {
        d.name: ddb.scan(TableName=d.name, Select="COUNT", ConsistentRead=True)["Count"]
        for d in app.schema.definitions()
    }


@pytest.mark.parametrize(
    ("case", "setup", "call", "error", "says"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_before_any_write(cqrs_app, case, setup, call, error, says):
    cqrs_app.register("cat", attributes=Typed)
    if setup is not None:
        setup(cqrs_app)
    before = counts(cqrs_app)
    with pytest.raises(error, match=says) as info:
        call(cqrs_app)
    assert isinstance(info.value, CqrsError) and not info.value.retryable
    assert counts(cqrs_app) == before, f"{case}: something was written"


def test_at_least_forty_classes_are_covered() -> None:
    assert len(CASES) >= 40


def test_numbers_dynamodb_can_store_exactly_round_trip(cqrs_app, drain) -> None:
    values = {
        "big int": 10**40,
        "38 digits": Decimal("1." + "2" * 37),
        "tiny": Decimal("1e-130"),
        "huge": Decimal("9.9e125"),
        "negative zero": -0.0,
        "one tenth": 0.1,
    }
    orders = cqrs_app.entity("order")
    orders.commands.publish_sync(order(attributes=values), CTX)
    row = orders.data.get(PK, "ORDER#1", context=CTX)
    assert row is not None
    assert row.attributes["big int"] == 10**40
    assert row.attributes["one tenth"] == 0.1
    assert row.attributes["negative zero"] == 0


def test_not_dirty_compares_what_dynamodb_stores(cqrs_app) -> None:
    commands = cqrs_app.entity("order").commands
    commands.publish_async(order(attributes={"price": 0.1, "tags": [1, 2], "set": {"a", "b"}}), CTX)
    same = {"price": Decimal("0.1"), "tags": (1, 2), "set": {"b", "a"}}
    assert commands.publish_async(order(version=1, attributes=same), CTX) is None
    assert commands.publish_async(order(version=1, attributes={**same, "price": 0.2}), CTX)


def test_derived_history_item_over_400_kb_is_caught_at_publish(cqrs_app) -> None:
    """The command fits, but its data row and history item add cpk/csk (a long key twice):
    refused at publish, not later in the stream."""
    code = "k" * 900
    sk = f"ORDER#{code}"
    now = "2026-01-01T00:00:00.000+00:00"
    command = {  # what publish stores, with an empty payload
        **order(code=code, sk=f"{sk}@1", attributes={"blob": ""}).model_dump(by_alias=True),
        **{"id": f"{PK}#{sk}", "version": 1, "createdAt": now, "updatedAt": now},
        **{"createdBy": "u", "updatedBy": "u"},
    }
    blob = "x" * (MAX_ITEM_BYTES - item_size(to_wire_item(command)) - 300)  # command fits
    commands = cqrs_app.entity("order").commands
    before = counts(cqrs_app)
    with pytest.raises(ItemTooLargeError, match=r"(data row|history item) would be"):
        commands.publish_async(order(code=code, sk=f"ORDER#{code}", attributes={"blob": blob}), CTX)
    assert counts(cqrs_app) == before


@pytest.mark.parametrize(
    ("entities", "prefix", "says"),
    [
        (["my order"], "", "my order"),
        (["a/b"], "", "a/b"),
        (["x" * 250], "", "x" * 10),
        (["order"], "dev shop-", "prefix"),
        (["o"], "", None),
    ],
    ids=["space", "slash", "too long", "bad prefix", "short but valid"],
)
def test_entity_names_that_make_invalid_table_names_are_refused_on_load(
    tmp_path: Path, entities: list[str], prefix: str, says: str | None
) -> None:
    (tmp_path / "cqrs.json").write_text(json.dumps({"tables": entities}))
    if says is None:
        assert Schema.load(tmp_path, prefix).entities == tuple(entities)
        return
    with pytest.raises(ConfigurationError, match=says):
        Schema.load(tmp_path, prefix)


def test_tables_not_migrated(cqrs_tables_dir):
    from moto import mock_aws

    with mock_aws():
        app = make_test_app(cqrs_tables_dir, None)
        app.clients.dynamodb.delete_table(TableName=app.entity("order").tables.command)
        with pytest.raises(TableNotFoundError, match="cqrs migrate") as info:
            publish()(app)
        assert not info.value.retryable
