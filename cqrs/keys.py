"""Key helpers with MBC CQRS Serverless semantics.

``#`` separates key parts, ``@`` separates the version: a command sort key is
``<base>@<version>``. ``pk = "<TYPE>#<tenantCode>"``; the tenant code is the
text after the last ``#`` of pk; ``id = pk + "#" + base sk``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InvalidKeyError, TenantMismatchError

if TYPE_CHECKING:
    from .models import InvokeContext

KEY_SEPARATOR = "#"
VERSION_SEPARATOR = "@"
VERSION_FIRST = 0
VERSION_LATEST = -1


def add_version(sk: str, version: int) -> str:
    """Return the versioned sort key ``<base>@<version>``."""
    return f"{remove_version(sk)}{VERSION_SEPARATOR}{version}"


def remove_version(sk: str) -> str:
    """Return the base sort key, without any ``@<version>`` suffix."""
    base, sep, _ = sk.rpartition(VERSION_SEPARATOR)
    return base if sep else sk


def version_of(sk: str) -> int | None:
    """The version carried by a sort key, or ``None`` if it has none."""
    _, sep, tail = sk.rpartition(VERSION_SEPARATOR)
    if not sep or not tail.isdigit():
        return None
    return int(tail)


def tenant_of(pk: str) -> str:
    """The tenant code of a partition key: the text after its last ``#``."""
    return pk.rpartition(KEY_SEPARATOR)[2]


def make_id(pk: str, sk: str) -> str:
    """The entity id MBC derives from its keys: ``pk#<base sk>``."""
    return f"{pk}{KEY_SEPARATOR}{remove_version(sk)}"


def make_pk(type_: str, tenant_code: str) -> str:
    """Build ``<TYPE>#<tenantCode>`` after validating both parts."""
    validate_part("type", type_)
    validate_part("tenant code", tenant_code)
    return f"{type_}{KEY_SEPARATOR}{tenant_code}"


def make_sk(type_: str, code: str) -> str:
    """Build ``<TYPE>#<code>`` after validating both parts."""
    validate_part("type", type_)
    validate_part("code", code)
    return f"{type_}{KEY_SEPARATOR}{code}"


def validate_part(what: str, value: str) -> str:
    """Reject an empty key part or one containing ``#`` or ``@``."""
    if not isinstance(value, str) or not value:
        raise InvalidKeyError(f"{what} must be a non-empty string, got {value!r}")
    for ch in (KEY_SEPARATOR, VERSION_SEPARATOR):
        if ch in value:
            raise InvalidKeyError(f"{what} {value!r} must not contain {ch!r}")
    return value


def validate_key(pk: str, sk: str) -> None:
    """Check an entity key: pk ``<TYPE>#<tenant>``, base sk without ``@``."""
    if not isinstance(pk, str) or not pk.strip():
        raise InvalidKeyError("pk must be a non-empty string")
    if not isinstance(sk, str) or not sk.strip():
        raise InvalidKeyError("sk must be a non-empty string")
    if KEY_SEPARATOR not in pk:
        raise InvalidKeyError(f"pk {pk!r} must look like '<TYPE>#<tenantCode>'")
    if VERSION_SEPARATOR in pk:
        raise InvalidKeyError(f"pk {pk!r} must not contain '@'")
    validate_part("tenant code", tenant_of(pk))
    if VERSION_SEPARATOR in sk:
        raise InvalidKeyError(f"sk {sk!r} must not contain '@' (pass the base sort key)")
    if any(not part for part in pk.split(KEY_SEPARATOR)) or any(
        not part for part in sk.split(KEY_SEPARATOR)
    ):
        raise InvalidKeyError(f"key {pk!r} / {sk!r} has an empty part between '#'")


def check_tenant(pk_or_tenant: str, context: InvokeContext | None, *, is_pk: bool = True) -> None:
    """Refuse another tenant's key (or tenant code) when a context is given; ``None``: trusted."""
    if context is None:
        return
    tenant = tenant_of(pk_or_tenant) if is_pk else pk_or_tenant
    if tenant != context.tenant_code:
        raise TenantMismatchError(tenant, context.tenant_code)
