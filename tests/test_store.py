"""The storage gateway: classification by AWS error code, the codec, expressions, conflicts
as values, batches with unprocessed items, transactions with reasons by name.

Requests go to moto (the ``cqrs_app`` fixture's tables); failures DynamoDB would send are
raised from botocore's own hooks, so the gateway sees exactly what a client raises.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from cqrs import Cqrs
from cqrs.core.errors import (
    AccessDeniedError,
    ConditionFailedError,
    ConfigurationError,
    InvalidKeyError,
    ItemCollectionFullError,
    ItemTooLargeError,
    NetworkError,
    PermanentError,
    RequestRejectedError,
    ServiceUnavailableError,
    TableNotFoundError,
    ThrottledError,
    TransactionConflictError,
    TransientError,
    UnexpectedError,
    is_retryable,
)
from cqrs.store import Cancelled, Conflict, TxUpdate, Update, Written, absent, equals, one_of
from cqrs.store.classify import classify
from cqrs.store.codec import from_wire_item, to_wire_item
from cqrs.store.expressions import Placeholders
from cqrs.testing import external_engine


def client_error(code: str, message: str = "m", status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutItem")


# -- classification -------------------------------------------------------------------------

CODES = [
    ("ThrottlingException", 400, ThrottledError),
    ("ProvisionedThroughputExceededException", 400, ThrottledError),
    ("RequestLimitExceeded", 400, ThrottledError),
    ("InternalServerError", 500, ServiceUnavailableError),
    ("ServiceUnavailable", 503, ServiceUnavailableError),
    ("SomethingNew", 502, ServiceUnavailableError),  # any 5xx passes
    ("TransactionConflictException", 400, TransactionConflictError),
    ("ResourceNotFoundException", 400, TableNotFoundError),
    ("AccessDeniedException", 400, AccessDeniedError),
    ("UnrecognizedClientException", 400, AccessDeniedError),
    ("ExpiredTokenException", 400, AccessDeniedError),
    ("ValidationException", 400, RequestRejectedError),
    ("SerializationException", 400, RequestRejectedError),
    ("ItemCollectionSizeLimitExceededException", 400, ItemCollectionFullError),
    ("ConditionalCheckFailedException", 400, ConditionFailedError),
    ("InternalWidgetException", 400, UnexpectedError),  # nobody listed it: not retryable
]


@pytest.mark.parametrize(("code", "status", "cls"), CODES, ids=[c[0] for c in CODES])
def test_errors_are_classified_by_aws_code(code: str, status: int, cls: type) -> None:
    cause = client_error(code, status=status)
    error = classify(cause, "put t")
    assert type(error) is cls and error.cause is cause and error.__cause__ is cause
    assert error.retryable == issubclass(cls, TransientError) == is_retryable(error)
    assert code in str(error) and str(error).startswith("put t: ")


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("Item size has exceeded the maximum allowed size", ItemTooLargeError),
        ("Aggregated size of all range keys has exceeded the size limit of 1024", InvalidKeyError),
        ("One or more parameter values were invalid", RequestRejectedError),
    ],
)
def test_validation_messages_name_what_was_refused(message: str, cls: type) -> None:
    error = classify(client_error("ValidationException", message), "put t")
    assert type(error) is cls and not error.retryable


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (ReadTimeoutError(endpoint_url="http://x"), NetworkError),
        (EndpointConnectionError(endpoint_url="http://x"), NetworkError),
        (NoCredentialsError(), AccessDeniedError),
        (ParamValidationError(report="bad"), RequestRejectedError),
        (RuntimeError("?"), UnexpectedError),
    ],
)
def test_botocore_errors_are_classified_by_kind(exc: Exception, cls: type) -> None:
    assert type(classify(exc, "x")) is cls


def test_no_permanent_error_is_retryable() -> None:
    assert not any(c.retryable for c in (PermanentError, UnexpectedError, ConfigurationError))


# -- codec ----------------------------------------------------------------------------------


def test_values_round_trip() -> None:
    item = {
        "s": "x", "i": 7, "f": 0.25, "d": Decimal("1.5"), "b": True, "bytes": b"\x00",
        "m": {"n": None, "l": [1, "a"]}, "ss": {"a", "b"}, "ns": {1, 2}, "bs": {b"x"},
        "big": 10**40, "absent": None,
    }  # fmt: skip
    back = from_wire_item(to_wire_item(item))
    assert "absent" not in back
    assert back == {**{k: v for k, v in item.items() if k != "absent"}, "d": 1.5}


def test_numbers_are_written_exactly_and_plainly() -> None:
    wire = to_wire_item({"a": 50, "b": 0.1, "c": 10**40, "d": Decimal("1e-130"), "e": -0.0})
    assert {k: v["N"] for k, v in wire.items()} == {
        "a": "50",
        "b": "0.1",
        "c": "1E+40",
        "d": "1E-130",
        "e": "0",
    }


# -- expressions ----------------------------------------------------------------------------


def test_expressions_render_with_one_placeholder_per_name() -> None:
    p = Placeholders()
    update = Update().set(status="QUEUED", n=1).set_if_absent(createdAt="t").add(count=1)
    text = update.remove("lease").render(p)
    condition = (absent("pk") | equals("status", "CREATED")) & one_of("n", [1, 2])
    cond = condition.render(p)
    assert text == (
        "SET #n0 = :v0, #n1 = :v1, #n2 = if_not_exists(#n2, :v2) ADD #n3 :v3 REMOVE #n4"
    )
    assert cond == "((attribute_not_exists(#n5) OR #n0 = :v4) AND #n1 IN (:v5, :v6))"
    assert p.names["#n0"] == "status" and p.values[":v4"] == {"S": "CREATED"}


# -- the gateway on moto ---------------------------------------------------------------------


@pytest.fixture
def table(cqrs_app: Cqrs) -> str:
    return cqrs_app.schema.system_table("sequences")


@pytest.mark.engine
def test_a_failed_condition_is_a_conflict_value_with_the_current_item(
    cqrs_app: Cqrs, table: str
) -> None:
    store = cqrs_app.clients.store
    assert store.put(table, {"pk": "a", "sk": "b", "v": 1}, condition=absent("pk")) is None
    conflict = store.put(table, {"pk": "a", "sk": "b", "v": 2}, condition=absent("pk"))
    # DynamoDB and moto return the item; DynamoDB Local returns none (current is None).
    returned = None if external_engine() else {"pk": "a", "sk": "b", "v": 1}
    assert conflict == Conflict(returned)
    written = store.update(
        table, {"pk": "a", "sk": "b"}, Update().add(v=1), condition=equals("v", 1),
        returns="ALL_NEW",
    )  # fmt: skip
    assert written == Written({"pk": "a", "sk": "b", "v": 2})
    stale = store.update(table, {"pk": "a", "sk": "b"}, Update().add(v=1), condition=equals("v", 1))
    assert isinstance(stale, Conflict) and stale.current == (returned and {**returned, "v": 2})
    assert store.delete(table, {"pk": "a", "sk": "b"}, condition=equals("v", 1)) is not None


def test_an_item_over_400_kb_is_refused_before_any_request(cqrs_app: Cqrs, table: str) -> None:
    calls: list[str] = []
    cqrs_app.clients.dynamodb.meta.events.register(
        "before-call.*.*", lambda model, **_: calls.append(model.name)
    )
    with pytest.raises(ItemTooLargeError):
        cqrs_app.clients.store.put(table, {"pk": "a", "sk": "b", "blob": "x" * 410_000})
    with pytest.raises(ItemTooLargeError):
        cqrs_app.clients.store.batch_write(table, puts=[{"pk": "a", "sk": "b", "x": "x" * 410_000}])
    assert calls == []


def test_unprocessed_items_are_retried_with_backoff(
    cqrs_app: Cqrs, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cqrs_app.clients.dynamodb
    real = client.batch_write_item
    sent: list[int] = []

    def half_processed(**kwargs: Any) -> Any:
        requests = kwargs["RequestItems"][table]
        sent.append(len(requests))
        if len(requests) > 1:  # process the first, hand the rest back
            real(RequestItems={table: requests[:1]})
            return {"UnprocessedItems": {table: requests[1:]}}
        return real(**kwargs)

    monkeypatch.setattr(client, "batch_write_item", half_processed)
    sleeps: list[float] = []
    store = type(cqrs_app.clients.store)(client, sleep=sleeps.append)
    made = store.batch_write(table, puts=[{"pk": "p", "sk": str(i)} for i in range(3)])
    assert (made, sent, len(sleeps)) == (3, [3, 2, 1], 2)
    assert len(list(store.scan(table, consistent=True))) == 3


@pytest.mark.engine
def test_a_cancelled_transaction_names_its_reasons(cqrs_app: Cqrs, table: str) -> None:
    store = cqrs_app.clients.store
    store.put(table, {"pk": "a", "sk": "1", "n": 1})
    ops = [
        TxUpdate(table, {"pk": "a", "sk": "1"}, Update().add(n=1), equals("n", 1)),
        TxUpdate(table, {"pk": "a", "sk": "2"}, Update().add(n=1), equals("n", 5)),
    ]
    cancelled = store.transact_write(ops)
    assert isinstance(cancelled, Cancelled)
    assert [r.code for r in cancelled.reasons] == ["None", "ConditionalCheckFailed"]
    assert cancelled.failed(1) and not cancelled.failed(0)
    assert store.get(table, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "n": 1}


def test_a_transaction_losing_races_is_retried_then_transient(
    cqrs_app: Cqrs, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cqrs_app.clients.dynamodb
    attempts: list[int] = []

    def conflict(**_: Any) -> Any:
        attempts.append(1)
        error = client_error("TransactionCanceledException")
        error.response["CancellationReasons"] = [{"Code": "TransactionConflict"}]
        raise error

    monkeypatch.setattr(client, "transact_write_items", conflict)
    store = type(cqrs_app.clients.store)(client, sleep=lambda _: None)
    op = TxUpdate(table, {"pk": "a", "sk": "1"}, Update().add(n=1))
    with pytest.raises(TransactionConflictError) as info:
        store.transact_write([op])
    assert info.value.retryable and len(attempts) == 5


def test_scan_pages_follow_the_page_size(cqrs_app: Cqrs, table: str) -> None:
    store = cqrs_app.clients.store
    store.batch_write(table, puts=[{"pk": "p", "sk": str(i)} for i in range(5)])
    limits: list[Any] = []
    cqrs_app.clients.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.Scan",
        lambda params, **_: limits.append(params.get("Limit")),
    )
    pages: list[int] = []
    assert len(list(store.scan(table, page_size=2, on_page=pages.append))) == 5
    assert limits == [2, 2, 2] and pages[-1] == 5


@pytest.mark.engine
def test_errors_from_the_gateway_are_classified(cqrs_app: Cqrs) -> None:
    with pytest.raises(TableNotFoundError, match="cqrs migrate") as info:
        cqrs_app.clients.store.get("no-such-table", {"pk": "a", "sk": "b"})
    assert isinstance(info.value.cause, ClientError) and not info.value.retryable
