"""botocore errors → the framework's hierarchy, by AWS error code, keeping the cause.

The README's "Errors" table is this module in prose. The rule: an error is
called retryable (:class:`~cqrs.core.errors.TransientError`) only when retrying the
same request can succeed; everything else, including codes nobody listed, is
permanent, so a stream never retries forever what no retry can cure.
"""

from __future__ import annotations

from ..core.errors import (
    AccessDeniedError,
    ConditionFailedError,
    ConfigurationError,
    CqrsError,
    InvalidKeyError,
    ItemCollectionFullError,
    ItemTooLargeError,
    MissingAttributesObjectError,
    NetworkError,
    RequestRejectedError,
    ServiceUnavailableError,
    TableNotFoundError,
    ThrottledError,
    TransactionConflictError,
    TransientError,
    UnexpectedError,
)

#: AWS error code → error class. Codes of DynamoDB, DynamoDB Streams and S3, and the common
#: ones.
BY_CODE: dict[str, type[CqrsError]] = {
    # transient: the same request can succeed later
    "ThrottlingException": ThrottledError,
    "ProvisionedThroughputExceededException": ThrottledError,
    "RequestLimitExceeded": ThrottledError,
    "LimitExceededException": ThrottledError,
    "InternalServerError": ServiceUnavailableError,
    "InternalFailure": ServiceUnavailableError,
    "ServiceUnavailable": ServiceUnavailableError,
    "ServiceUnavailableException": ServiceUnavailableError,
    "InvalidEndpointException": ServiceUnavailableError,
    "ResourceInUseException": ServiceUnavailableError,  # the table is being created or updated
    "TransactionConflictException": TransactionConflictError,
    "TransactionInProgressException": TransactionConflictError,
    "ReplicatedWriteConflictException": TransactionConflictError,
    "RequestTimeout": NetworkError,
    "RequestTimeoutException": NetworkError,
    "ExpiredIteratorException": NetworkError,  # a stream iterator went stale: get a new one
    # permanent: fix the cause first
    "ResourceNotFoundException": TableNotFoundError,
    "TrimmedDataAccessException": TableNotFoundError,
    "ItemCollectionSizeLimitExceededException": ItemCollectionFullError,
    "ValidationException": RequestRejectedError,
    "SerializationException": RequestRejectedError,
    "IdempotentParameterMismatchException": RequestRejectedError,
    "ConditionalCheckFailedException": ConditionFailedError,
    "AccessDeniedException": AccessDeniedError,
    "UnrecognizedClientException": AccessDeniedError,
    "InvalidSignatureException": AccessDeniedError,
    "IncompleteSignature": AccessDeniedError,
    "IncompleteSignatureException": AccessDeniedError,
    "MissingAuthenticationToken": AccessDeniedError,
    "MissingAuthenticationTokenException": AccessDeniedError,
    "ExpiredTokenException": AccessDeniedError,
    "InvalidClientTokenId": AccessDeniedError,
    "NotAuthorized": AccessDeniedError,
    # S3, where large attributes are kept (cqrs.store.objects)
    "SlowDown": ThrottledError,
    "InternalError": ServiceUnavailableError,
    "NoSuchKey": MissingAttributesObjectError,
    "NoSuchBucket": MissingAttributesObjectError,
    "AccessDenied": AccessDeniedError,
}

_ADVICE: dict[type[CqrsError], str] = {
    ThrottledError: "throttled by DynamoDB (retry is safe)",
    ServiceUnavailableError: "DynamoDB server error (retry is safe)",
    TransactionConflictError: "transaction conflict (retry is safe)",
    TableNotFoundError: "table or stream not found (run `cqrs migrate`)",
    AccessDeniedError: "access denied (check credentials and IAM permissions)",
    RequestRejectedError: "DynamoDB refused the request as invalid",
    ItemCollectionFullError: "the item collection reached its 10 GB limit",
    MissingAttributesObjectError: "the S3 object or bucket of the item's attributes is missing",
}


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, else ``None``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    return 0


def classify(exc: BaseException, what: str) -> CqrsError:
    """The framework error for ``exc`` raised while doing ``what`` (``cause`` keeps it)."""
    if isinstance(exc, CqrsError):
        return exc
    code = error_code(exc)
    if code is not None:
        return _from_code(exc, code, what)
    return _from_botocore(exc, what)


def _from_code(exc: BaseException, code: str, what: str) -> CqrsError:
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message") or exc)
    if code == "ValidationException":
        lowered = message.lower()
        if "item size" in lowered or ("exceeds the maximum" in lowered and "size" in lowered):
            return ItemTooLargeError(f"{what}: {message}", cause=exc)
        if "key" in lowered and "size" in lowered:
            return InvalidKeyError(f"{what}: {message}", cause=exc)
    cls = BY_CODE.get(code)
    if cls is None:
        cls = ServiceUnavailableError if _status(exc) >= 500 else UnexpectedError
    advice = _ADVICE.get(cls)
    detail = f"{advice}: {code}: {message}" if advice else f"{code}: {message}"
    return cls(f"{what}: {detail}", cause=exc)


def _from_botocore(exc: BaseException, what: str) -> CqrsError:
    from botocore import exceptions as b

    cls: type[CqrsError]
    transient: tuple[type[Exception], ...] = (
        b.ConnectionError,
        b.HTTPClientError,
        b.ResponseStreamingError,
        b.IncompleteReadError,
    )
    if isinstance(exc, transient):
        cls = NetworkError
    elif isinstance(
        exc,
        (b.NoCredentialsError, b.PartialCredentialsError, b.CredentialRetrievalError,
         b.TokenRetrievalError, b.NoAuthTokenError),
    ):  # fmt: skip
        cls = AccessDeniedError
    elif isinstance(exc, (b.NoRegionError, b.InvalidRegionError, b.UnknownEndpointError)):
        cls = ConfigurationError
    elif isinstance(exc, b.ParamValidationError):
        cls = RequestRejectedError
    else:
        cls = UnexpectedError
    return cls(f"{what}: {type(exc).__name__}: {exc}", cause=exc)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (botocore's or ours) is worth retrying as is."""
    return isinstance(classify(exc, ""), TransientError)
