"""Key helpers and key rules, with MBC CQRS Serverless semantics.

``#`` separates key parts, ``@`` separates the version: a command sort key is
``<base>@<version>``. ``pk = "<TYPE>#<tenantCode>"``; the tenant code is the
text after the last ``#`` of pk; ``id = pk + "#" + base sk``.

Rules enforced on every key a caller passes in (reads as well as writes), each
a :class:`~cqrs.core.errors.InvalidKeyError` before any request:

- a key part (type, tenant code, code) is a non-empty string, not only
  whitespace, without control characters, ``#`` or ``@``;
- pk is at most 2,048 bytes; a base sk leaves room for ``@<version>`` under
  DynamoDB's 1,024-byte sort-key limit; a code fits the ``code-index`` sort key;
- a version suffix is ``@`` followed by a positive integer (``@1``, ``@12``),
  nothing else.

Tenant codes are lowercase, as MBC CQRS Serverless >= 1.1 keeps them (its
``getUserContext`` lowercases the tenant; the common tenant is ``common``, no longer
``COMMON``). :func:`normalize_tenant_code` and :func:`normalize_pk` lowercase a tenant
code and the tenant part of a pk; inputs (:mod:`cqrs.core.inputs`), :func:`make_pk` and
:func:`check_tenant` (every tenant-scoped read and write) apply them, so ``ORDER#Acme``
and ``ORDER#acme`` name one key, ``ORDER#acme``. Stored keys are never rewritten: a
command written with a mixed-case tenant (by MBC < 1.1) is projected as it is.

Tenant scope: every tenant-scoped call takes ``context``, an
:class:`~cqrs.core.context.InvokeContext` (the tenant acting) or
:data:`~cqrs.core.context.SYSTEM` (trusted code acting across tenants, said out loud).
There is no silent third way: no context is a :class:`~cqrs.core.errors.MissingContextError`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import InvalidKeyError, MissingContextError, TenantMismatchError

if TYPE_CHECKING:
    from .context import Scope

KEY_SEPARATOR = "#"
VERSION_SEPARATOR = "@"
VERSION_FIRST = 0
VERSION_LATEST = -1
#: The common tenant's code (``TENANT#common``): lowercase since MBC 1.1, ``COMMON`` before.
COMMON_TENANT = "common"

MAX_PK_BYTES = 2048  # DynamoDB's partition-key limit
MAX_SK_BYTES = 1024  # DynamoDB's sort-key limit
#: Room kept in a base sort key for ``@<version>`` (up to ten digits).
VERSION_SUFFIX_BYTES = 11
MAX_BASE_SK_BYTES = MAX_SK_BYTES - VERSION_SUFFIX_BYTES
_CONTROL = frozenset(("Cc", "Cf", "Zl", "Zp"))


def add_version(sk: str, version: int) -> str:
    """Return the versioned sort key ``<base>@<version>``."""
    return f"{remove_version(sk)}{VERSION_SEPARATOR}{version}"


def remove_version(sk: str) -> str:
    """Return the base sort key, without any ``@<version>`` suffix."""
    base, sep, _ = sk.rpartition(VERSION_SEPARATOR)
    return base if sep else sk


def version_of(sk: str) -> int | None:
    """The version carried by a stored sort key, or ``None`` if it has none (lenient)."""
    _, sep, tail = sk.rpartition(VERSION_SEPARATOR)
    if not sep or not tail.isdigit():
        return None
    return int(tail)


def split_version(sk: str) -> tuple[str, int | None]:
    """``(base sk, version)`` of a sort key a caller passed; a malformed suffix
    (``@``, ``@abc``, ``@0``, ``@-1``, ``@01``) is an :class:`InvalidKeyError`."""
    if not isinstance(sk, str):
        raise InvalidKeyError(f"sk must be a string, got {type(sk).__name__}")
    base, sep, tail = sk.rpartition(VERSION_SEPARATOR)
    if not sep:
        return sk, None
    if not (tail.isascii() and tail.isdigit()) or tail.startswith("0"):
        raise InvalidKeyError(
            f"sk {sk!r} has a malformed version suffix {VERSION_SEPARATOR}{tail!r}: "
            "expected '@' and a positive integer, e.g. 'ORDER#A1@3'"
        )
    return base, int(tail)


def normalize_tenant_code(tenant_code: str) -> str:
    """A tenant code as MBC >= 1.1 keeps it: lowercase (JavaScript's ``toLowerCase``,
    nothing else changed). A value that is not a string is returned as it is, for the
    key rules to refuse."""
    return tenant_code.lower() if isinstance(tenant_code, str) else tenant_code


def normalize_pk(pk: str) -> str:
    """``pk`` with its tenant part (the text after its last ``#``) lowercased."""
    if not isinstance(pk, str):
        return pk
    head, sep, tenant = pk.rpartition(KEY_SEPARATOR)
    return f"{head}{sep}{tenant.lower()}" if sep else pk


def is_common_tenant(tenant_code: str, common: Iterable[str] = (COMMON_TENANT,)) -> bool:
    """Whether ``tenant_code`` is a common tenant (MBC's ``COMMON_TENANT_CODES``, default
    ``common``), compared lowercase: ``COMMON`` (MBC < 1.1) is the common tenant too."""
    return normalize_tenant_code(tenant_code) in {normalize_tenant_code(c) for c in common}


def tenant_of(pk: str) -> str:
    """The tenant code of a partition key: the text after its last ``#``."""
    return pk.rpartition(KEY_SEPARATOR)[2]


def type_of(pk: str) -> str:
    """The type of a partition key: the text before its first ``#``."""
    return pk.partition(KEY_SEPARATOR)[0]


def make_id(pk: str, sk: str) -> str:
    """The entity id MBC derives from its keys: ``pk#<base sk>``."""
    return f"{pk}{KEY_SEPARATOR}{remove_version(sk)}"


def make_pk(type_: str, tenant_code: str) -> str:
    """Build ``<TYPE>#<tenantCode>`` after validating both parts; the tenant code is
    lowercased (:func:`normalize_tenant_code`)."""
    validate_part("type", type_)
    tenant_code = validate_part("tenant code", normalize_tenant_code(tenant_code))
    return f"{type_}{KEY_SEPARATOR}{tenant_code}"


def make_sk(type_: str, code: str) -> str:
    """Build ``<TYPE>#<code>`` after validating both parts."""
    validate_part("type", type_)
    validate_part("code", code)
    return f"{type_}{KEY_SEPARATOR}{code}"


def validate_part(what: str, value: str, *, max_bytes: int = MAX_BASE_SK_BYTES) -> str:
    """Refuse an empty or whitespace-only key part, control characters, ``#``, ``@``,
    or a part longer than ``max_bytes`` in UTF-8."""
    if not isinstance(value, str) or not value:
        raise InvalidKeyError(f"{what} must be a non-empty string, got {value!r}")
    if not value.strip():
        raise InvalidKeyError(f"{what} must not be only whitespace, got {value!r}")
    for ch in (KEY_SEPARATOR, VERSION_SEPARATOR):
        if ch in value:
            raise InvalidKeyError(f"{what} {value!r} must not contain {ch!r}")
    if any(unicodedata.category(ch) in _CONTROL for ch in value):
        raise InvalidKeyError(f"{what} {value!r} must not contain control characters")
    size = len(value.encode())
    if size > max_bytes:
        raise InvalidKeyError(f"{what} is {size} bytes; at most {max_bytes} fit in a key")
    return value


def validate_pk(pk: str) -> None:
    """Check a partition key: ``<TYPE>#<tenant>``, every part valid, within 2,048 bytes."""
    if not isinstance(pk, str) or not pk.strip():
        raise InvalidKeyError("pk must be a non-empty string")
    if KEY_SEPARATOR not in pk:
        raise InvalidKeyError(f"pk {pk!r} must look like '<TYPE>#<tenantCode>'")
    if VERSION_SEPARATOR in pk:
        raise InvalidKeyError(f"pk {pk!r} must not contain '@'")
    if any(not part for part in pk.split(KEY_SEPARATOR)):
        raise InvalidKeyError(f"pk {pk!r} has an empty part between '#'")
    for part in pk.split(KEY_SEPARATOR):
        validate_part("pk part", part, max_bytes=MAX_PK_BYTES)
    if len(pk.encode()) > MAX_PK_BYTES:
        raise InvalidKeyError(f"pk is {len(pk.encode())} bytes; DynamoDB allows {MAX_PK_BYTES}")


def validate_key(pk: str, sk: str) -> None:
    """Check an entity key: pk ``<TYPE>#<tenant>``, base sk without ``@``, both within
    DynamoDB's key sizes, every part valid."""
    validate_pk(pk)
    if not isinstance(sk, str) or not sk.strip():
        raise InvalidKeyError("sk must be a non-empty string")
    if VERSION_SEPARATOR in sk:
        raise InvalidKeyError(f"sk {sk!r} must not contain '@' (pass the base sort key)")
    if any(not part for part in sk.split(KEY_SEPARATOR)):
        raise InvalidKeyError(f"key {pk!r} / {sk!r} has an empty part between '#'")
    for part in sk.split(KEY_SEPARATOR):
        validate_part("sk part", part)
    if len(sk.encode()) > MAX_BASE_SK_BYTES:
        raise InvalidKeyError(
            f"sk is {len(sk.encode())} bytes; with '@<version>' it must fit DynamoDB's "
            f"{MAX_SK_BYTES}-byte sort key, so at most {MAX_BASE_SK_BYTES}"
        )


def validate_versioned_key(pk: str, sk: str) -> tuple[str, int | None]:
    """Check a key whose sk may carry a version; returns ``(base sk, version)``."""
    base, version = split_version(sk)
    validate_key(pk, base)
    return base, version


def check_tenant(pk_or_tenant: str, context: Scope | None, *, is_pk: bool = True) -> str:
    """Refuse another tenant's key (or tenant code); return it normalised (the tenant
    lowercased, :func:`normalize_pk` / :func:`normalize_tenant_code`): the key to use.

    ``context`` is the acting tenant's :class:`~cqrs.core.context.InvokeContext`, or
    :data:`~cqrs.core.context.SYSTEM` for trusted code that may act on any tenant.
    Tenant codes are compared lowercase: ``Acme`` and ``acme`` are one tenant, as in
    MBC >= 1.1.
    """
    from .context import InvokeContext, SystemScope

    normalized = normalize_pk(pk_or_tenant) if is_pk else normalize_tenant_code(pk_or_tenant)
    if isinstance(context, SystemScope):
        return normalized
    if not isinstance(context, InvokeContext):
        raise MissingContextError(
            "this call is tenant-scoped: pass context=InvokeContext(tenant_code=...) "
            "for a tenant, or context=SYSTEM for trusted code acting on any tenant"
        )
    tenant = tenant_of(pk_or_tenant) if is_pk else pk_or_tenant
    if normalize_tenant_code(tenant) != normalize_tenant_code(context.tenant_code):
        raise TenantMismatchError(tenant, context.tenant_code)
    return normalized
