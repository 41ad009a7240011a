"""The history item is written from the stream image's wire form, and is the same item.

A command decoded from a stream image keeps the image (``CommandItem.wire``); the
projector writes its projected attributes as they came whenever they are exactly what
encoding the decoded values would write (``cqrs.store.codec.written_form``), and
otherwise encodes them from the command's fields as before. Either way the stored
history item must be the one the Python round trip writes: checked here value by
value (hypothesis) and end to end on moto's streams, including a command written by
another writer with number text and sets the codec writes differently.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import cqrs
from cqrs import SYSTEM, CommandInput, InvokeContext
from cqrs.core.items import CommandItem
from cqrs.store.codec import decode_image, history_form, to_wire_item, written_form

TENANT = "acme"
PK = f"ORDER#{TENANT}"
CTX = InvokeContext(tenant_code=TENANT, user_id="alice")


def command_item(attributes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": PK, "sk": "ORDER#1@3", "version": 3, "id": f"{PK}#ORDER#1", "code": "1",
        "name": "order 1", "tenantCode": TENANT, "type": "ORDER", "attributes": attributes,
        "source": "test", "requestId": "r-1", "createdAt": "2026-01-01T00:00:00+00:00",
        "createdBy": "alice", "updatedAt": "2026-01-02T00:00:00+00:00", "updatedBy": "bob",
    }  # fmt: skip
    return item | fields


def before(wire: dict[str, Any]) -> dict[str, Any]:
    """The history item as the projector wrote it before: decode, model, encode."""
    from cqrs.store.codec import from_wire_item

    command = CommandItem.from_item(from_wire_item(wire))
    return to_wire_item(command.history_item().to_item())


def after(wire: dict[str, Any]) -> dict[str, Any]:
    """The history item as the projector writes it now, from the kept image."""
    command = CommandItem.from_item(decode_image(wire))
    assert command.wire is wire
    return history_form(command)


#: Values the codec stores, in the forms it writes without an exponent (those it writes as
#: ``1E+40`` take the round trip, checked below).
values = st.recursive(
    st.none()
    | st.booleans()
    | st.text(max_size=8)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20).filter(
        lambda x: x == 0 or abs(x) > 1e-20
    )
    | st.binary(max_size=4)
    | st.frozensets(st.text(max_size=4), min_size=1, max_size=4)
    | st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=5), values, values)
def test_codec_written_image_gives_the_same_history_item(
    attributes: dict[str, Any], seq: Any, extra: Any
) -> None:
    """Images the codec wrote (what cqrs stores) are reused as is, and equal the old item."""
    seq = seq if isinstance(seq, int | float) and not isinstance(seq, bool) else None
    wire = to_wire_item(command_item(attributes, seq=seq, other=extra))
    assert after(wire) == before(wire)
    assert written_form(wire, ("attributes",)) is not None  # the fast path was taken


def test_other_writers_number_text_and_sets_are_normalised_as_before() -> None:
    """Text the codec writes differently falls back to the round trip: same item."""
    odd_values = [
        {"N": "1.50"}, {"N": "1e+21"}, {"N": "-0"}, {"N": "007"}, {"N": "1" + "0" * 40},
        {"N": "0.12345678901234567890123"}, {"N": "1.5625E+38"}, {"SS": ["b", "a"]},
        {"NS": ["2", "10"]}, {"NS": ["1", "1.0"]},
        {"L": [{"N": "2.0"}]}, {"M": {"x": {"NULL": True}, "y": {"N": "3E2"}}},
    ]  # fmt: skip
    for odd in odd_values:
        wire = to_wire_item(command_item({}))
        wire["attributes"] = {"M": {"v": odd}}
        assert written_form(wire, ("attributes",)) is None, odd
        assert after(wire) == before(wire), odd
    wire = to_wire_item(command_item({"n": 1}))
    wire["seq"] = {"N": "2.50"}
    wire["ttl"] = {"NULL": True}  # top-level NULL: absent in the history item
    assert after(wire) == before(wire)
    assert "ttl" not in after(wire) and after(wire)["seq"] == {"N": "2.5"}


def test_history_item_equals_the_round_trip_on_the_stream(cqrs_app: cqrs.Cqrs, drain: Any) -> None:
    """End to end: our commands and another writer's, through moto's stream."""
    orders = cqrs_app.entity("order")
    attributes = {"total": Decimal("12.5"), "lines": [{"sku": "a", "qty": 2}], "tags": {"x", "y"}}
    orders.commands.publish_async(
        CommandInput(pk=PK, sk="ORDER#1", code="1", name="one", tenant_code=TENANT,
                     type="ORDER", version=0, attributes=attributes), CTX)  # fmt: skip
    other = to_wire_item(command_item({"price": 1}, sk="ORDER#2@1", version=1, code="2",
                                      id=f"{PK}#ORDER#2"))  # fmt: skip
    other["attributes"] = {"M": {"price": {"N": "1.50"}, "tags": {"SS": ["z", "a"]}}}
    client = cqrs_app.clients.dynamodb
    client.put_item(TableName=orders.tables.command, Item=other)  # e.g. MBC's own put
    report = drain(cqrs_app)
    assert report.records == 2
    for sk in ("ORDER#1@1", "ORDER#2@1"):
        key = {"pk": {"S": PK}, "sk": {"S": sk}}
        command = client.get_item(TableName=orders.tables.command, Key=key, ConsistentRead=True)
        stored = client.get_item(TableName=orders.tables.history, Key=key, ConsistentRead=True)
        assert stored["Item"] == before(command["Item"]), sk
    history = orders.history.list(PK, "ORDER#2", context=SYSTEM)
    assert [h.attributes for h in history] == [{"price": 1.5, "tags": {"a", "z"}}]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=5))
def test_storable_sizes_equal_encoding_each_item(attributes: dict[str, Any]) -> None:
    """``check_storable`` encodes the command once and sums the data row's and history
    item's sizes from its attributes: the same sizes as encoding each of them."""
    from cqrs.core.errors import ItemTooLargeError
    from cqrs.store.codec import MAX_ITEM_BYTES, item_size
    from cqrs.write import rules

    command = CommandItem.from_item(command_item(attributes, other="not projected"))
    sizes = [item_size(to_wire_item(i.to_item()))
             for i in (command, command.data_row(), command.history_item())]  # fmt: skip
    assert rules.check_storable(command) == to_wire_item(command.to_item())
    for limit in {s - 1 for s in sizes} | {max(sizes)}:  # refused exactly when one is over
        rules.MAX_ITEM_BYTES = limit
        try:
            rules.check_storable(command)
            refused = False
        except ItemTooLargeError:
            refused = True
        finally:
            rules.MAX_ITEM_BYTES = MAX_ITEM_BYTES
        assert refused == (max(sizes) > limit), (sizes, limit)
