"""The error hierarchy, shaped like PEP 249's.

Every error the framework raises derives from :class:`CqrsError`. Branches say
*whose* fault it is, so callers can catch broadly or precisely:

- :class:`InterfaceError`: the input was wrong (bad key, bad attributes). Raised
  before anything is written; retrying the same call fails the same way.
- :class:`IntegrityError`: the input was fine but conflicts with stored state
  (:class:`VersionConflictError`, :class:`TenantMismatchError`). Nothing written.
- :class:`OperationalError`: DynamoDB or the network failed (throttling, missing
  tables, timeouts). Safe to retry; ``cause`` keeps the botocore exception.
- :class:`ProgrammingError`: the framework was used wrongly (unknown entity,
  bad configuration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Command


class CqrsError(Exception):
    """Base class of every error raised by cqrs. ``cause`` keeps the original exception."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause


class InterfaceError(CqrsError, ValueError):
    """Invalid input. Raised before any write."""


class InvalidKeyError(InterfaceError):
    """A pk, sk, tenant code or code that breaks the key rules (empty, ``#``/``@`` misuse)."""


class InvalidAttributesError(InterfaceError):
    """``attributes`` failed validation against the entity's declared model."""


class InvalidEventError(InterfaceError):
    """A Lambda or stream event that does not have the expected shape."""


class ItemTooLargeError(InterfaceError):
    """The item would exceed DynamoDB's 400 KB item size limit."""


class IntegrityError(CqrsError):
    """The input conflicts with the stored state. Nothing was written."""


class VersionConflictError(IntegrityError):
    """Optimistic locking failed: the base version is stale or another writer won.

    ``expected`` is the version the caller based its change on; ``actual`` is the
    latest version found (``None`` if it could not be determined).
    """

    def __init__(
        self,
        pk: str,
        sk: str,
        expected: int,
        actual: int | None,
        *,
        cause: BaseException | None = None,
    ) -> None:
        self.pk, self.sk, self.expected, self.actual = pk, sk, expected, actual
        super().__init__(
            f"version conflict on {pk} / {sk}: based on version {expected}, "
            f"latest is {actual if actual is not None else 'unknown'}",
            cause=cause,
        )


class TenantMismatchError(IntegrityError):
    """A key belongs to a different tenant than the invoking context."""

    def __init__(self, key_tenant: str, context_tenant: str) -> None:
        self.key_tenant, self.context_tenant = key_tenant, context_tenant
        super().__init__(
            f"key belongs to tenant {key_tenant!r} but the context is tenant {context_tenant!r}"
        )


class NotFoundError(IntegrityError):
    """The base command a write depends on does not exist."""


class OperationalError(CqrsError):
    """DynamoDB or the network failed. Safe to retry."""


class CommandNotAppliedError(OperationalError):
    """``publish_sync`` stored the command, but applying it to the read model failed.

    The command is in the log (``command``) and the synchronizer applies it from the
    stream, so do not publish it again (the retry would conflict with it). ``cause``
    says why the projection failed.
    """

    def __init__(self, message: str, *, command: Command[Any], cause: BaseException) -> None:
        super().__init__(message, cause=cause)
        self.command = command


class TableNotFoundError(OperationalError):
    """A table is missing: run ``cqrs migrate``."""


class SyncTimeoutError(OperationalError):
    """A command was not applied to the read model within the wait's timeout."""


class ThrottledError(OperationalError):
    """DynamoDB throttled the request after the SDK's own retries."""


class ProgrammingError(CqrsError):
    """The framework was used wrongly."""


class UnknownEntityError(ProgrammingError):
    """The entity is not listed in ``tables/cqrs.json``."""


class ConfigurationError(ProgrammingError):
    """Configuration is missing or invalid."""
