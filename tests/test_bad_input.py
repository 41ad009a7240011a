"""Bad input: each case gets a specific, typed error before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs import (
    CommandInput,
    CommandPartialInput,
    CqrsError,
    InterfaceError,
    InvalidAttributesError,
    InvalidEventError,
    InvalidKeyError,
    InvokeContext,
    ItemTooLargeError,
    TableNotFoundError,
    TenantMismatchError,
    UnknownEntityError,
)
from cqrs.testing import make_test_app

CTX = InvokeContext(tenant_code="acme", user_id="u")


class Typed(BaseModel):
    qty: int


def order(**overrides: Any) -> CommandInput:
    fields: dict[str, Any] = {
        "pk": "ORDER#acme",
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


def publish(**overrides: Any) -> Callable[[Any], object]:
    return lambda app: app.entity("order").commands.publish_async(order(**overrides), CTX)


def publish_typed(attributes: Any) -> Callable[[Any], object]:
    return lambda app: app.entity("cat").commands.publish_async(
        order(pk="CAT#acme", sk="CAT#1", type="CAT", attributes=attributes), CTX
    )


def partial(**overrides: Any) -> Callable[[Any], object]:
    fields = {"pk": "ORDER#acme", "sk": "ORDER#1", "version": -1, **overrides}
    return lambda app: app.entity("order").commands.publish_partial_update_async(
        CommandPartialInput.model_construct(**fields), CTX
    )


def event(raw: Any) -> Callable[[Any], object]:
    return lambda app: app.handle_event(raw)


CASES: list[tuple[str, Callable[[Any], object], type[CqrsError], str]] = [
    ("code with #", publish(code="a#b", sk="ORDER#a#b"), InvalidKeyError, "code"),
    ("code with @", publish(code="a@b"), InvalidKeyError, "'@'"),
    ("sk with @", publish(sk="ORDER#1@3"), InvalidKeyError, "'@'"),
    ("empty pk", publish(pk=""), InvalidKeyError, "pk"),
    ("empty sk", publish(sk=""), InvalidKeyError, "sk"),
    ("pk without tenant", publish(pk="ORDER"), InvalidKeyError, "<TYPE>#<tenantCode>"),
    ("empty key part", publish(sk="ORDER##1"), InvalidKeyError, "empty part"),
    ("tenant with @", publish(pk="ORDER#ac@me"), InvalidKeyError, "'@'"),
    ("other tenant's pk", publish(pk="ORDER#globex"), TenantMismatchError, "globex"),
    ("other tenant code", publish(tenant_code="globex"), TenantMismatchError, "globex"),
    ("version below -1", publish(version=-2), InterfaceError, "version"),
    ("partial version below -1", partial(version=-5), InterfaceError, "version"),
    ("attributes not a mapping", publish(attributes=[1, 2]), InvalidAttributesError, "mapping"),
    ("typed: wrong type", publish_typed({"qty": "many"}), InvalidAttributesError, "qty"),
    ("typed: missing field", publish_typed({}), InvalidAttributesError, "qty"),
    ("over 400 KB", publish(attributes={"blob": "x" * 410_000}), ItemTooLargeError, "S3"),
    ("unknown entity", lambda app: app.entity("dog"), UnknownEntityError, "dog"),
    (
        "bad cursor",
        lambda app: app.entity("order").data.list_by_pk("ORDER#acme", cursor="!"),
        InterfaceError,
        "cursor",
    ),
    (
        "find_by_code with #",
        lambda app: app.entity("order").data.find_by_code("acme", "a#b"),
        InvalidKeyError,
        "code",
    ),
    ("event: not a mapping", event(None), InvalidEventError, "Records"),
    ("event: no Records", event({}), InvalidEventError, "Records"),
    ("event: Records not a list", event({"Records": "x"}), InvalidEventError, "Records"),
    (
        "event: record without sequence number",
        event({"Records": [{"eventName": "INSERT", "dynamodb": {}}]}),
        InvalidEventError,
        "eventSourceARN",
    ),
]


def all_items(app) -> int:
    ddb = app.clients.dynamodb
    return sum(
        ddb.scan(TableName=d.name, Select="COUNT")["Count"] for d in app.schema.definitions()
    )


@pytest.mark.parametrize(("case", "call", "error", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_write(cqrs_app, case, call, error, says):
    cqrs_app.register("cat", attributes=Typed)
    with pytest.raises(error, match=says) as info:
        call(cqrs_app)
    assert isinstance(info.value, CqrsError)
    assert all_items(cqrs_app) == 0, f"{case}: something was written"


def test_a_malformed_record_with_a_sequence_number_is_reported_not_raised(cqrs_app):
    table = cqrs_app.entity("order").tables.command
    bad = {
        "eventName": "INSERT",
        "eventSourceARN": f"arn:aws:dynamodb:r:1:table/{table}/stream/1",
        "dynamodb": {"SequenceNumber": "42", "NewImage": {"pk": {"X": "not a type"}}},
    }
    assert cqrs_app.handle_event({"Records": [bad]}) == {
        "batchItemFailures": [{"itemIdentifier": "42"}]
    }
    assert all_items(cqrs_app) == 0


def test_tables_not_migrated(cqrs_tables_dir):
    from moto import mock_aws

    with mock_aws():
        app = make_test_app(cqrs_tables_dir, None)
        app.clients.dynamodb.delete_table(TableName=app.entity("order").tables.command)
        with pytest.raises(TableNotFoundError, match="cqrs migrate"):
            publish()(app)
