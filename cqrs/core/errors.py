"""The error hierarchy, shaped like PEP 249's, named by what went wrong.

Every error the framework raises derives from :class:`CqrsError`, and every
class says whether retrying the same call can help (:attr:`CqrsError.retryable`):

- :class:`InterfaceError`: the input was wrong (bad key, value DynamoDB cannot
  store, item too large). Raised before anything is written; a retry fails the
  same way.
- :class:`IntegrityError`: the input was fine but conflicts with stored state
  (:class:`VersionConflictError`, :class:`TenantMismatchError`). Nothing written;
  re-read, then decide.
- :class:`OperationalError`: DynamoDB or the network failed. Two branches:

  - :class:`TransientError` (``retryable = True``): throttling, 5xx, transaction
    conflicts, timeouts, connection errors. Retrying the same call is safe.
  - :class:`PermanentError` (``retryable = False``): a missing table, denied
    access, a request DynamoDB refuses as invalid, a full item collection, or an
    error nobody classified. Retrying cannot cure it; fix the cause.

- :class:`ProgrammingError`: the framework was used wrongly (unknown entity,
  bad configuration, a missing context).

``cause`` keeps the original exception (botocore's, a handler's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .records import Command


class CqrsError(Exception):
    """Base class of every error raised by cqrs. ``cause`` keeps the original exception."""

    #: Whether retrying the same call can succeed.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause


def is_retryable(exc: BaseException) -> bool:
    """Whether retrying what raised ``exc`` can help (``False`` for anything unclassified)."""
    return isinstance(exc, CqrsError) and exc.retryable


# -- bad input ------------------------------------------------------------------------------


class InterfaceError(CqrsError, ValueError):
    """Invalid input. Raised before any write."""


class InvalidKeyError(InterfaceError):
    """A pk, sk, tenant code, code or type that breaks the key rules (empty, whitespace only,
    control characters, ``#``/``@`` misuse, parts that disagree, over DynamoDB's key size)."""


class InvalidAttributesError(InterfaceError):
    """``attributes`` (or another stored value) are invalid: against the entity's declared
    model, or as a value DynamoDB can store (see :class:`InvalidValueError`)."""


class InvalidValueError(InvalidAttributesError):
    """A value DynamoDB cannot store: an unsupported type, a map key that is not a string,
    nesting deeper than 32 levels, an empty set or a set of mixed types."""


class InvalidNumberError(InvalidValueError):
    """A number DynamoDB cannot store exactly: NaN, ±infinity, more than 38 significant
    digits, or a magnitude outside 1e-130 .. 9.99e125."""


class InvalidEventError(InterfaceError):
    """A Lambda or stream event (or one of its records) that does not have the expected shape."""


class ItemTooLargeError(InterfaceError):
    """The item (or an item derived from it: data row, history item) would exceed DynamoDB's
    400 KB item size limit."""


class InvalidClaimsError(InterfaceError):
    """A request's identity cannot be taken: no authorizer claims, no ``sub``, a
    ``custom:roles`` that is not a JSON list of ``{tenant, role}``, or no tenant at all
    (neither ``custom:tenant`` nor an ``x-tenant-code`` header). Raised before any write."""


# -- conflicts with stored state ------------------------------------------------------------


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


class TenantForbiddenError(TenantMismatchError):
    """The request selects a tenant (``x-tenant-code``) its user may not act on.

    MBC's rule (``RolesGuard.canOverrideTenant``): a user without a ``custom:tenant``
    claim may select a common tenant (``common``) or, with a cross-tenant role
    (``system_admin``) on it or on every tenant, any tenant. ``key_tenant`` is the tenant
    asked for, ``context_tenant`` the user's own (``""``: none), ``user_id`` the user.
    """

    def __init__(self, requested: str, user_tenant: str | None, user_id: str) -> None:
        super().__init__(requested, user_tenant or "")
        self.user_id = user_id
        own = f"tenant {user_tenant!r}" if user_tenant else "no tenant of their own"
        self.args = (
            f"user {user_id!r} ({own}) may not act on tenant {requested!r}: selecting a "
            "tenant with the x-tenant-code header needs a cross-tenant role (system_admin)",
        )


class NotFoundError(IntegrityError):
    """The base command a write depends on does not exist."""


class ConditionFailedError(IntegrityError):
    """A conditional write found the item in another state than the condition requires."""


# -- DynamoDB and the network -----------------------------------------------------------------


class OperationalError(CqrsError):
    """DynamoDB or the network failed; :attr:`retryable` says whether a retry can help."""


class TransientError(OperationalError):
    """A failure that passes: retrying the same call is safe and may succeed."""

    retryable: ClassVar[bool] = True


class ThrottledError(TransientError):
    """DynamoDB throttled the request after the SDK's own retries (throughput, request limit)."""


class ServiceUnavailableError(TransientError):
    """DynamoDB answered with a server error (HTTP 5xx, InternalServerError)."""


class TransactionConflictError(TransientError):
    """A transaction lost a race with another write to one of its items."""


class NetworkError(TransientError):
    """The request timed out or the connection failed: it may or may not have been applied."""


class ConcurrentUpdateError(TransientError):
    """An item kept changing under concurrent writers; a retry starts from its new state."""


class SyncTimeoutError(TransientError):
    """A command was not applied to the read model within the wait's timeout."""


class PermanentError(OperationalError):
    """A failure that retrying cannot cure: fix the cause first."""


class TableNotFoundError(PermanentError):
    """A table (or index) is missing: run ``cqrs migrate``."""


class AccessDeniedError(PermanentError):
    """The credentials are missing, invalid or not allowed to make the request (IAM)."""


class RequestRejectedError(PermanentError):
    """DynamoDB refused the request as invalid (``ValidationException``, serialization)."""


class ItemCollectionFullError(PermanentError):
    """An item collection (one partition key with a local index) reached 10 GB."""


class MissingAttributesObjectError(PermanentError):
    """The S3 object (or bucket) an item's ``attributes`` point to is gone
    (``NoSuchKey``, ``NoSuchBucket``): restore it, or repoint the item."""


class MissingCommandError(PermanentError):
    """A version needed to fill a gap is not in the command table (expired by TTL?)."""


class UnexpectedError(PermanentError):
    """An error nobody classified. Not presented as retryable: it counts as a failed attempt."""


class CommandNotAppliedError(OperationalError):
    """``publish_sync`` stored the command, but applying it to the read model failed.

    The command is in the log (``command``) and the synchronizer applies it from the
    stream, so do not publish it again (the retry would conflict with it). ``cause``
    says why the projection failed.
    """

    def __init__(self, message: str, *, command: Command[Any], cause: BaseException) -> None:
        super().__init__(message, cause=cause)
        self.command = command


# -- misuse -----------------------------------------------------------------------------------


class ProgrammingError(CqrsError):
    """The framework was used wrongly."""


class UnknownEntityError(ProgrammingError):
    """The entity is not listed in ``tables/cqrs.json``."""


class ConfigurationError(ProgrammingError):
    """Configuration is missing or invalid."""


class InvalidSettingsError(ConfigurationError):
    """Settings that cannot be taken (:class:`~cqrs.core.settings.Settings`): ``problems``
    lists ``(field, where, what)``, ``where`` being the environment variable or keyword
    the value came from."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"invalid {where}: {what}" for _, where, what in problems))
        self.problems = problems


class MissingContextError(ProgrammingError):
    """A tenant-scoped call got no context: pass ``context=InvokeContext(...)`` or ``SYSTEM``."""


# -- tasks and sequences (re-exported by cqrs.system.tasks and cqrs.system.sequences) ---------


class PermanentTaskError(Exception):
    """Raise from a task handler to fail the task now, without using its remaining attempts.

    The one error here that is not a :class:`CqrsError`, on purpose: handlers raise it
    like any ``Exception`` (any arguments, no ``cause`` keyword), and it never reaches a
    caller of cqrs. The task service catches it and stores it as the task's error; it
    raises it itself, to the same end, for a stored input that no longer validates and a
    result that cannot be stored. Never retried (:func:`is_retryable` is ``False``).
    """


class InvalidTaskInputError(InvalidValueError):
    """A task input, sub-task input, progress or result that cannot be taken: it does not
    validate against the handler's ``input_model``, is not JSON-able, or is a value
    DynamoDB cannot store (``cause`` keeps the codec's or pydantic's error)."""


class InvalidTaskItemError(InterfaceError):
    """A stored task item (or a stream image of one) without an attribute every task has,
    with one of the wrong type, or with a status this version does not know."""


class TaskLeaseLostError(IntegrityError):
    """The attempt lost its lease: the task was reclaimed, so this worker must stop."""


class TaskLeaseExpiredError(OperationalError):
    """Stored as a task's error when an attempt's lease expired before it finished."""


class NoTaskHandlerError(ProgrammingError):
    """Stored as a task's error when no handler is registered for its task type."""


class SubtaskFailedError(IntegrityError):
    """Stored as a parent task's error when at least one of its sub-tasks failed."""


class InvalidSequenceFormatError(InterfaceError):
    """A sequence format template is malformed or uses an unknown token."""


class InvalidSequenceItemError(InterfaceError):
    """A stored sequence counter item without an attribute every counter has, or with one
    of the wrong type."""
