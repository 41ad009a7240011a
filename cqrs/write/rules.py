"""What a command must satisfy before it is written: every rule, one typed error each.

The write path (:mod:`cqrs.write.commands`) calls these before any request, so bad
input never reaches DynamoDB and nothing is written. Key parts follow
:mod:`cqrs.core.keys`; the parts of one command must also agree with each other:

- ``pk`` is exactly ``<type>#<tenantCode>`` (MBC's ``generatePk``);
- ``sk`` ends with ``#<code>`` (``<TYPE>#<code>``, or MBC's longer master-data
  keys such as ``MASTER_SETTING#TENANT_USER#u1#<code>``);
- a custom ``id`` is ``pk#sk`` or absent;
- ``version`` is an integer ≥ -1.

And what sync derives from the command must be storable too: the data row and
the history item (which add ``cpk``/``csk``) are checked against the 400 KB item
limit here, at publish, rather than failing later in the stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import InterfaceError, InvalidKeyError, ItemTooLargeError
from ..core.items import DIRTY_FIELDS, PROJECTED_FIELDS, CommandItem, StoredValue
from ..core.keys import (
    KEY_SEPARATOR,
    VERSION_LATEST,
    add_version,
    make_id,
    type_of,
    validate_key,
    validate_part,
)
from ..store.codec import MAX_ITEM_BYTES, WireItem, item_size, to_wire, to_wire_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def check_version(version: object) -> int:
    """A base version: an integer ≥ -1 (0 creates, -1 means the latest)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise InterfaceError(f"version must be an integer, got {version!r}")
    if version < VERSION_LATEST:
        raise InterfaceError(f"version must be >= -1, got {version}")
    return version


def check_command_key(pk: str, sk: str, *, type_: str, tenant_code: str, code: str) -> None:
    """The key parts of one command, each valid and all agreeing with each other."""
    validate_key(pk, sk)
    validate_part("type", type_)
    validate_part("tenant code", tenant_code)
    validate_part("code", code)
    expected_pk = f"{type_}{KEY_SEPARATOR}{tenant_code}"
    if pk != expected_pk:
        what = "type" if type_of(pk) != type_ else "tenant code"
        raise InvalidKeyError(
            f"pk {pk!r} disagrees with its {what}: type {type_!r} and tenant code "
            f"{tenant_code!r} make pk {expected_pk!r}"
        )
    if sk.rpartition(KEY_SEPARATOR)[2] != code:
        raise InvalidKeyError(f"sk {sk!r} must end with '#{code}' (the command's code)")


def check_custom_id(pk: str, sk: str, id_: str | None) -> str:
    """The entity id: ``pk#sk``. A custom one must be exactly that (MBC's ``generateId``)."""
    expected = make_id(pk, sk)
    if id_ is not None and id_ != expected:
        raise InvalidKeyError(f"id {id_!r} must be {expected!r} (pk#sk) or omitted")
    return expected


def check_storable(command: CommandItem) -> WireItem:
    """The command, its data row and its history item all fit DynamoDB's item limit;
    returns the command in wire form, for the write.

    Values are checked on the way (:class:`~cqrs.core.errors.InvalidValueError`). The
    command is encoded once: the data row and history item are its projected attributes
    plus ``cpk``/``csk``, so their sizes are summed from the same encoded attributes.
    """
    wire = to_wire_item(command.to_item(), "command")
    sizes = {name: item_size({name: value}) for name, value in wire.items()}
    projected = sum(sizes.get(name, 0) for name in ("pk", *PROJECTED_FIELDS))
    keys = _text_size("cpk", command.pk) + _text_size("csk", command.sk)
    history_sk = add_version(command.base_sk, command.version)
    for what, size in (
        ("command", sum(sizes.values())),
        ("its data row", projected + keys + _text_size("sk", command.base_sk)),
        ("its history item", projected + keys + _text_size("sk", history_sk)),
    ):
        if size > MAX_ITEM_BYTES:
            raise ItemTooLargeError(
                f"command {command.pk} / {command.sk}: {what} would be about {size} "
                f"bytes; DynamoDB's item limit is {MAX_ITEM_BYTES}: keep large payloads in "
                "S3 and store a reference"
            )
    return wire


def _text_size(name: str, value: str) -> int:
    return item_size({name: {"S": value}})


def is_dirty(base: CommandItem, candidate: CommandItem) -> bool:
    """True when ``candidate`` changes any field MBC compares against ``base``.

    Compared as DynamoDB would store them (the wire form), not as Python values:
    ``0.1`` and ``Decimal("0.1")``, ``[1, 2]`` and ``(1, 2)`` are the same stored value.
    """
    return any(_stored(base.get(f), f) != _stored(candidate.get(f), f) for f in DIRTY_FIELDS)


def _stored(value: StoredValue, name: str) -> AttributeValueTypeDef | None:
    return None if value is None else to_wire(value, name)
