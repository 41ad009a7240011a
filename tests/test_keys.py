"""Key rules (MBC semantics): ``#`` separates parts, ``@`` the version.

The pure helpers are tested directly; the rejection rules are also tested
through the write path, asserting that nothing reached the command table.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cqrs
from cqrs import SYSTEM, CommandInput, CommandPartialInput, InvalidKeyError, InvokeContext
from cqrs.core.keys import (
    KEY_SEPARATOR,
    VERSION_SEPARATOR,
    add_version,
    make_id,
    make_pk,
    make_sk,
    remove_version,
    tenant_of,
    validate_key,
    validate_part,
    version_of,
)
from cqrs.store.codec import from_wire_item as deserialize

TENANT = "acme"
CTX = InvokeContext(tenant_code=TENANT, user_id="alice")


def order_input(code: str = "1", **kw: object) -> CommandInput:
    fields: dict[str, object] = {
        "pk": f"ORDER#{TENANT}",
        "sk": f"ORDER#{code}",
        "code": code,
        "name": f"order {code}",
        "tenant_code": TENANT,
        "type": "ORDER",
    }
    fields.update(kw)
    return CommandInput(**fields)


def error_name(call: Callable[[], object]) -> str | None:
    """The class name of the exception ``call`` raises, or ``None``."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return None


def command_items(app: cqrs.Cqrs) -> list[dict[str, object]]:
    """Every item of the order command table, read straight from DynamoDB."""
    table = app.entity("order").tables.command
    resp = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)
    return [deserialize(i) for i in resp["Items"]]


# -- constants and pure helpers ------------------------------------------------------


def test_constants_match_mbc() -> None:
    assert (KEY_SEPARATOR, VERSION_SEPARATOR) == ("#", "@")
    assert cqrs.VERSION_FIRST == 0
    assert cqrs.VERSION_LATEST == -1


@pytest.mark.parametrize(
    ("sk", "version", "expected"),
    [
        ("ORDER#1", 1, "ORDER#1@1"),
        ("ORDER#1@3", 4, "ORDER#1@4"),  # an existing version is replaced, not stacked
        ("ORDER#1", 12, "ORDER#1@12"),
    ],
)
def test_add_version(sk: str, version: int, expected: str) -> None:
    assert add_version(sk, version) == expected


@pytest.mark.parametrize(
    ("sk", "base", "version"),
    [
        ("ORDER#1@1", "ORDER#1", 1),
        ("ORDER#1@10", "ORDER#1", 10),
        ("ORDER#1", "ORDER#1", None),
        ("ORDER#1@", "ORDER#1", None),
        ("ORDER#1@x", "ORDER#1", None),
    ],
)
def test_remove_version_and_version_of(sk: str, base: str, version: int | None) -> None:
    assert remove_version(sk) == base
    assert version_of(sk) == version


@pytest.mark.parametrize(
    ("pk", "tenant"),
    [("ORDER#acme", "acme"), ("MASTER#SUB#acme", "acme"), ("ORDER#", "")],
)
def test_tenant_is_text_after_last_separator(pk: str, tenant: str) -> None:
    assert tenant_of(pk) == tenant


def test_id_is_pk_and_base_sk() -> None:
    assert make_id("ORDER#acme", "ORDER#1") == "ORDER#acme#ORDER#1"
    assert make_id("ORDER#acme", "ORDER#1@7") == "ORDER#acme#ORDER#1"


def test_make_pk_and_sk() -> None:
    assert make_pk("ORDER", "acme") == "ORDER#acme"
    assert make_sk("ORDER", "1") == "ORDER#1"
    with pytest.raises(InvalidKeyError):
        make_pk("ORDER", "ac#me")
    with pytest.raises(InvalidKeyError):
        make_sk("ORDER", "1@2")


@pytest.mark.parametrize("value", ["", "a#b", "a@b", "#", "@", None, 7])
def test_validate_part_rejects(value: object) -> None:
    with pytest.raises(InvalidKeyError):
        validate_part("code", value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pk", "sk"),
    [
        ("", "ORDER#1"),
        ("   ", "ORDER#1"),
        ("ORDER#acme", ""),
        ("ORDER#acme", "  "),
        ("ORDERacme", "ORDER#1"),  # no tenant part
        ("ORDER#", "ORDER#1"),  # empty tenant
        ("ORDER#ac@me", "ORDER#1"),
        ("ORDER#acme", "ORDER#1@2"),  # a versioned sk where the base is expected
        ("ORDER##acme", "ORDER#1"),
        ("ORDER#acme", "ORDER##1"),
    ],
)
def test_validate_key_rejects(pk: str, sk: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(pk, sk)


def test_validate_key_accepts_multi_part_keys() -> None:
    validate_key("MASTER#SUB#acme", "MASTER#SETTING#1")


def test_invalid_key_error_is_an_interface_error() -> None:
    assert issubclass(InvalidKeyError, cqrs.InterfaceError)
    assert issubclass(InvalidKeyError, ValueError)


_part = st.text(
    alphabet=st.characters(
        blacklist_characters="#@", blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")
    ),
    min_size=1,
    max_size=12,
).filter(str.strip)  # whitespace-only parts are refused


@given(type_=_part, tenant=_part, code=_part, version=st.integers(0, 10**6))
def test_key_round_trip(type_: str, tenant: str, code: str, version: int) -> None:
    pk, sk = make_pk(type_, tenant), make_sk(type_, code)
    versioned = add_version(sk, version)
    assert tenant_of(pk) == tenant.lower()  # lowercase, as MBC >= 1.1
    assert remove_version(versioned) == sk
    assert version_of(versioned) == version
    assert make_id(pk, versioned) == f"{pk}#{sk}"


# -- rejection through the write path: nothing is written ----------------------------

BAD_INPUTS = {
    "tenant with #": {"tenant_code": "ac#me", "pk": "ORDER#ac#me"},
    "tenant with @": {"tenant_code": "ac@me", "pk": "ORDER#ac@me"},
    "code with #": {"code": "1#2"},
    "code with @": {"code": "1@2"},
    "empty code": {"code": ""},
    "empty pk": {"pk": ""},
    "empty sk": {"sk": ""},
    "pk without tenant": {"pk": "ORDER"},
    "versioned sk": {"sk": "ORDER#1@1"},
}


@pytest.mark.parametrize("publish", ["publish_async", "publish_sync"])
def test_publish_rejects_bad_keys_before_writing(cqrs_app: cqrs.Cqrs, publish: str) -> None:
    publish_fn = getattr(cqrs_app.entity("order").commands, publish)
    outcomes = {}
    for case, bad in BAD_INPUTS.items():
        # The context carries the input's tenant code, so only the key rule can fail.
        ctx = InvokeContext(tenant_code=bad.get("tenant_code", TENANT))
        outcomes[case] = error_name(lambda: publish_fn(order_input(**bad), ctx))  # noqa: B023
    assert outcomes == dict.fromkeys(BAD_INPUTS, "InvalidKeyError")
    assert command_items(cqrs_app) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"pk": "", "sk": "ORDER#1"},
        {"pk": "ORDER#acme", "sk": ""},
        {"pk": "ORDER#acme", "sk": "ORDER#1", "code": "x#y"},
        {"pk": "ORDER#acme", "sk": "ORDER#1", "code": "x@y"},
    ],
)
def test_partial_update_rejects_bad_keys_before_writing(
    cqrs_app: cqrs.Cqrs, bad: dict[str, str]
) -> None:
    orders = cqrs_app.entity("order").commands
    orders.publish_async(order_input("1"), CTX)
    with pytest.raises(InvalidKeyError):
        orders.publish_partial_update_async(CommandPartialInput(**bad), CTX)
    assert [i["sk"] for i in command_items(cqrs_app)] == ["ORDER#1@1"]


def test_reads_reject_bad_keys(cqrs_app: cqrs.Cqrs) -> None:
    order = cqrs_app.entity("order")
    with pytest.raises(InvalidKeyError):
        order.data.get("", "ORDER#1", context=SYSTEM)
    with pytest.raises(InvalidKeyError):
        order.data.get("ORDER#acme", "", context=SYSTEM)
    with pytest.raises(InvalidKeyError):
        order.data.find_by_code("ac#me", "1", context=SYSTEM)
    with pytest.raises(InvalidKeyError):
        order.history.list("ORDER#acme", "", context=SYSTEM)
