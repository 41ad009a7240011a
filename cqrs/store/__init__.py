"""The storage gateway: the only package in ``cqrs`` that calls boto3's DynamoDB and S3
clients.

- :mod:`.codec`: plain values ⇄ wire format, refusing what DynamoDB cannot store;
- :mod:`.expressions`: conditions and updates built from named parts;
- :mod:`.classify`: botocore errors → transient or permanent framework errors;
- :mod:`.gateway`: :class:`Store`, items (conflicts as values), pages, batches, transactions;
- :mod:`.tables`: :class:`TableAdmin`, the control plane ``migrate`` uses;
- :mod:`.streams`: :class:`StreamsGateway`, the stream reads of the local follower;
- :mod:`.objects`: :class:`~.objects.AttributeObjects`, large attributes kept in S3 as MBC
  keeps them.
"""

from __future__ import annotations

from .codec import MAX_ITEM_BYTES, Item, WireItem, from_wire_item, to_wire, to_wire_item
from .expressions import (
    Condition,
    Update,
    absent,
    all_of,
    at_most,
    begins_with,
    equals,
    item_absent,
    one_of,
    present,
)
from .gateway import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, Store
from .results import CancellationReason, Cancelled, Conflict, Key, Page, TxUpdate, Written
from .tables import TableAdmin

__all__ = [
    "BATCH_GET_LIMIT",
    "BATCH_WRITE_LIMIT",
    "MAX_ITEM_BYTES",
    "CancellationReason",
    "Cancelled",
    "Condition",
    "Conflict",
    "Item",
    "Key",
    "Page",
    "Store",
    "TableAdmin",
    "TxUpdate",
    "Update",
    "WireItem",
    "Written",
    "absent",
    "all_of",
    "at_most",
    "begins_with",
    "equals",
    "from_wire_item",
    "item_absent",
    "one_of",
    "present",
    "to_wire",
    "to_wire_item",
]
