"""What services pass in to publish: a full command, or a partial one.

Tenant codes are normalised here, at the input boundary, as MBC >= 1.1 does: the
``tenant_code`` and the tenant part of ``pk`` are lowercased (a custom ``id`` built
from the given pk follows it), so ``pk="ORDER#Acme", tenant_code="Acme"`` is stored as
``ORDER#acme`` / ``acme``. Assigning a field later normalises it too.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from .keys import KEY_SEPARATOR, VERSION_LATEST, normalize_pk, normalize_tenant_code
from .records import CamelModel


def _normalized_id(value: object, info: ValidationInfo) -> object:
    """A custom id ``<pk>#<sk>`` written with the tenant's original case follows its pk."""
    pk, sk = info.data.get("pk"), info.data.get("sk")
    if isinstance(value, str) and isinstance(pk, str) and isinstance(sk, str):
        suffix = f"{KEY_SEPARATOR}{sk}"
        if value.endswith(suffix) and normalize_pk(value[: -len(suffix)]) == pk:
            return f"{pk}{suffix}"
    return value


class CommandInput(CamelModel):
    """A full command: the complete new state of an entity.

    ``version`` is the version the change is based on: 0 creates, N > 0 requires
    version N to be the latest, -1 means "whatever is latest".
    """

    pk: str
    sk: str
    code: str
    name: str
    tenant_code: str
    type: str
    version: int = 0
    id: str | None = None
    is_deleted: bool | None = None
    seq: int | None = None
    ttl: int | None = None
    attributes: object = Field(default_factory=dict)
    source: str | None = None

    model_config = ConfigDict(validate_assignment=True)

    _pk = field_validator("pk")(normalize_pk)
    _tenant_code = field_validator("tenant_code")(normalize_tenant_code)
    _id = field_validator("id")(_normalized_id)


class CommandPartialInput(CamelModel):
    """A partial command: only the fields to change, deep-merged into the base.

    ``version`` is the base version (N > 0), or -1 (or 0, as MBC) for the latest.
    """

    pk: str
    sk: str
    version: int = VERSION_LATEST
    code: str | None = None
    name: str | None = None
    type: str | None = None
    is_deleted: bool | None = None
    seq: int | None = None
    ttl: int | None = None
    attributes: object = None
    source: str | None = None

    model_config = ConfigDict(validate_assignment=True)

    _pk = field_validator("pk")(normalize_pk)
