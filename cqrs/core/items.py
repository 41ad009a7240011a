"""The stored items, typed: one form of a command, a data row and a history item.

A command item is the full state of an entity at one version. The data row and
each history item are derived from it (:meth:`CommandItem.data_row`,
:meth:`CommandItem.history_item`), except the creation fields (``createdAt``,
``createdBy``, ``createdIp``), which both keep from the entity's creation, as MBC's
projection does (:mod:`cqrs.sync.creation`); that is what makes projection idempotent
and replayable.

Inside the framework these are frozen dataclasses with snake_case fields; the
camelCase dicts DynamoDB (and MBC) store exist only at the storage gateway, through
:meth:`~CommandItem.from_item` and :meth:`~CommandItem.to_item`. Values are kept
exactly as stored (timestamps as the ISO text another writer wrote), so a projected
row equals the one MBC's own projection writes. Attributes another writer stored
that the framework does not model ride along in ``extra`` on commands.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeAlias, TypeVar

from .errors import CqrsError, InvalidEventError
from .keys import add_version, remove_version, split_version
from .large import AttributesRef

if TYPE_CHECKING:
    #: A value DynamoDB stores, as Python holds it: what the codec decodes (numbers as
    #: ``int``/``float``, sets of one kind) and what it accepts (``Decimal``, ``bytearray``).
    StoredValue: TypeAlias = (
        "bool | int | float | Decimal | str | bytes | bytearray | list[StoredValue]"
        " | dict[str, StoredValue] | set[str | int | float | Decimal | bytes] | None"
    )
else:
    # At run time only pydantic reads the alias (model fields holding stored values):
    # ``object`` lets every value through unvalidated, as the codec is the check.
    StoredValue = object

#: A stored item at the gateway: camelCase attribute names to stored values. The values
#: are left unnarrowed for ``cqrs.system.tasks``, which reads them unchecked in three
#: places; every other layer type-checks against ``dict[str, StoredValue]``, which this
#: becomes once those do.
Item = dict[str, Any]
#: An entity's ``attributes`` map.
Attributes = dict[str, StoredValue]
#: The type of an entity's attributes in typed records: its pydantic model, else a dict.
AttrT = TypeVar("AttrT")


_R = TypeVar("_R")
_M = TypeVar("_M", bound=Mapping[str, object])


def read_record(
    item: _M,
    build: Callable[[_M], _R],
    error: type[CqrsError],
    what: str,
) -> _R:
    """``build(item)``, a stored item's record; an attribute missing or of the wrong type
    raises ``error`` naming the item (``what``, pk and sk), the cause kept."""
    try:
        return build(item)
    except (KeyError, TypeError, ValueError) as exc:
        raise error(
            f"{what} {item.get('pk')!r} / {item.get('sk')!r} is malformed: {exc!r}", cause=exc
        ) from exc


def stored_int(value: StoredValue) -> int:
    """A stored number (or numeric text) as ``int``, as ``int(value)`` reads it."""
    if isinstance(value, (int, float, Decimal, str)):
        return int(value)
    raise TypeError(f"expected a stored number, got {value!r}")


def stored_str(value: StoredValue) -> str:
    """A stored string; anything else is a ``TypeError``."""
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a stored string, got {value!r}")


def optional_str(value: StoredValue) -> str | None:
    """A stored string, or ``None`` for an absent one."""
    return None if value is None else stored_str(value)


def stored_key(item: Mapping[str, StoredValue]) -> tuple[str, str]:
    """``(pk, sk)`` of a stored item."""
    return (stored_str(item["pk"]), stored_str(item["sk"]))


#: Fields compared by the "not dirty" check (MBC's list), in stored names.
DIRTY_FIELDS = ("id", "code", "name", "tenantCode", "type", "isDeleted", "seq", "ttl", "attributes")

#: Fields copied from a command to its data row (MBC's DataService.publish), stored names.
PROJECTED_FIELDS = (
    "id", "code", "name", "version", "tenantCode", "type", "isDeleted", "seq", "ttl",
    "attributes", "requestId", "createdAt", "createdBy", "createdIp",
    "updatedAt", "updatedBy", "updatedIp",
)  # fmt: skip

#: Audit fields whose first value wins on the data row, stored names.
CREATION_FIELDS = ("createdAt", "createdBy", "createdIp")

#: MBC's marker (``commands/enums/command-sync-mode.enum.ts``) on a command its writer
#: projected itself (``publishSync``, our ``publish_sync``): stream consumers skip it.
SYNC_MODE, SYNC_MODE_SYNC = "syncMode", "SYNC"


def is_sync_marked(item: Mapping[str, StoredValue] | None) -> bool:
    """Whether a stored command carries ``syncMode: "SYNC"``."""
    return item is not None and item.get(SYNC_MODE) == SYNC_MODE_SYNC


#: Set beside ``ttl`` (same value) when retention gave a superseded command version its
#: ``ttl`` (:mod:`cqrs.write.retention`): that ``ttl`` is not part of the entity's state.
RETAINED = "ttlRetention"


def is_retention_ttl(item: Mapping[str, StoredValue]) -> bool:
    """Whether a stored command's ``ttl`` was set by retention, not by its writer."""
    return item.get(RETAINED) is not None and item.get(RETAINED) == item.get("ttl")


EntityKey = tuple[str, str]  # (pk, base sk)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_NAMES: dict[type[_Stored], dict[str, str]] = {}


def _stored_names(cls: type[_Stored]) -> dict[str, str]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = {
            f.name: _camel(f.name) for f in fields(cls) if f.name not in ("extra", "wire")
        }
    return names


@dataclass(frozen=True)
class _Stored:
    """Fields every stored entity item has (command, data row, history item)."""

    pk: str
    sk: str
    version: int
    id: str | None = None
    code: str | None = None
    name: str | None = None
    tenant_code: str | None = None
    type: str | None = None
    is_deleted: bool | None = None
    seq: int | float | None = None
    ttl: int | float | None = None
    #: The map, or where it is kept when large (:mod:`cqrs.core.large`): a pointer read
    #: from a stream image or a projection's read stays one, and is written back as is.
    attributes: Attributes | AttributesRef | None = None
    request_id: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    created_ip: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    updated_ip: str | None = None

    _TYPES: ClassVar[dict[str, tuple[builtins.type, ...]]] = {
        "pk": (str,), "sk": (str,), "version": (int,), "id": (str,), "code": (str,),
        "name": (str,), "tenant_code": (str,), "type": (str,), "is_deleted": (bool,),
        "seq": (int, float), "ttl": (int, float), "attributes": (dict, AttributesRef),
        "request_id": (str,), "source": (str,), "cpk": (str,), "csk": (str,),
        "created_at": (str,), "created_by": (str,), "created_ip": (str,),
        "updated_at": (str,), "updated_by": (str,), "updated_ip": (str,),
    }  # fmt: skip

    @classmethod
    def stored_names(cls) -> dict[str, str]:
        """``{python name: stored name}`` of the modelled fields."""
        return _stored_names(cls)

    @classmethod
    def from_item(cls, item: Mapping[str, StoredValue]) -> Self:
        """Read a stored item; a modelled field of the wrong type is an
        :class:`~cqrs.core.errors.InvalidEventError` (the item is not what it claims)."""
        names = cls.stored_names()
        # The constructor's keyword arguments, each checked against ``_TYPES`` below.
        values: dict[str, Any] = {}
        for python, stored in names.items():
            value: StoredValue | AttributesRef = item.get(stored)
            if value is None:
                continue
            if python == "attributes" and isinstance(value, str):
                value = AttributesRef.parse(value)  # MBC's S3 pointer, else InvalidEventError
            kinds = _Stored._TYPES.get(python, (object,))
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                wanted = " or ".join(k.__name__ for k in kinds)
                raise InvalidEventError(f"{stored!r} must be {wanted}, got {value!r}")
            values[python] = value
        for required in ("pk", "sk", "version"):
            if required not in values:
                raise InvalidEventError(f"a stored item needs {names[required]!r}")
        if cls is CommandItem:
            known = set(names.values())
            values["extra"] = {k: v for k, v in item.items() if k not in known}
            if is_retention_ttl(item):  # retention's, not the entity's: not projected
                values.pop("ttl", None)
        return cls(**values)

    def to_item(self) -> Item:
        """The stored form: camelCase names, ``None`` fields left out."""
        out: Item = {}
        for python, stored in type(self).stored_names().items():
            value = getattr(self, python)
            if value is not None:
                out[stored] = value.uri if isinstance(value, AttributesRef) else value
        extra = getattr(self, "extra", None)
        if extra:
            out = {**extra, **out}
        return out

    def get(self, stored_name: str) -> StoredValue:
        """A field by its stored (camelCase) name, ``None`` when absent."""
        python = _STORED_TO_PYTHON.get(stored_name)
        value = getattr(self, python) if python is not None else None
        return value.uri if isinstance(value, AttributesRef) else value

    @property
    def base_sk(self) -> str:
        """The sort key without ``@version``."""
        return remove_version(self.sk)

    @property
    def key(self) -> EntityKey:
        """``(pk, base sk)``: which entity this item belongs to."""
        return (self.pk, self.base_sk)


@dataclass(frozen=True)
class CommandItem(_Stored):
    """One command version as stored in ``<entity>-command`` (``sk`` is ``<base>@<version>``).

    ``extra`` holds attributes another writer stored that the framework does not model.
    """

    source: str | None = None
    extra: Mapping[str, StoredValue] = field(default_factory=dict)
    #: The DynamoDB JSON the command was decoded from, when the item says so (a stream
    #: image, ``cqrs.store.codec.decode_image``): the history write reuses it. Not an
    #: init field, so ``replace`` drops it: a changed command never carries a stale one.
    wire: Mapping[str, Any] | None = field(default=None, init=False, compare=False, repr=False)

    @classmethod
    def from_item(cls, item: Mapping[str, StoredValue]) -> Self:
        """Read a stored command; its ``@version`` must agree with ``version``."""
        command = super().from_item(item)
        if not is_retention_ttl(item):  # the image's ttl is retention's: never project it
            object.__setattr__(command, "wire", getattr(item, "wire", None))
        _, suffix = split_version(command.sk)
        if suffix != command.version:
            raise InvalidEventError(
                f"command 'version' {command.version} disagrees with its sk {command.sk!r}"
            )
        return command

    def data_row(self) -> DataItem:
        """The data row this command projects to: base sort key, ``cpk``/``csk`` = its keys."""
        values = {p: getattr(self, p) for p in _PROJECTED_PYTHON}
        return DataItem(pk=self.pk, sk=self.base_sk, cpk=self.pk, csk=self.sk, **values)

    def history_item(self) -> DataItem:
        """The history item of this version: the data row, keyed ``<base sk>@<version>``."""
        return replace(self.data_row(), sk=add_version(self.base_sk, self.version))


@dataclass(frozen=True)
class DataItem(_Stored):
    """A data row (``<entity>-data``, bare sk) or history item (``<entity>-history``,
    ``<base>@<version>``): the state after ``version``, with the command's keys."""

    cpk: str | None = None
    csk: str | None = None


_PROJECTED_PYTHON = tuple(p for p, s in _stored_names(_Stored).items() if s in PROJECTED_FIELDS)
_STORED_TO_PYTHON = {s: p for cls in (CommandItem, DataItem) for p, s in cls.stored_names().items()}
