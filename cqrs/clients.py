"""boto3 clients for DynamoDB and DynamoDB Streams, and error translation.

Clients are injectable: pass your own (with your retry config, credentials or
instrumentation) or let :func:`make_clients` build them from settings. With
``CQRS_ENDPOINT_URL=embedded`` the in-process moto engine is started first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import CqrsError, OperationalError, TableNotFoundError, ThrottledError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

    from .settings import Settings

_THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}


@dataclass(frozen=True)
class Clients:
    """The two boto3 clients the framework uses."""

    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient


_embedded_mock: Any = None


def start_embedded() -> None:
    """Start the in-process moto engine once per process (idempotent)."""
    global _embedded_mock
    if _embedded_mock is not None:
        return
    try:
        from moto import mock_aws
    except ImportError as exc:  # pragma: no cover - depends on the install
        from .errors import ConfigurationError

        raise ConfigurationError(
            "CQRS_ENDPOINT_URL=embedded needs moto: pip install 'cqrs[embedded]'", cause=exc
        ) from exc
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # botocore >= 1.44.4 otherwise sends account-id endpoints that in-process
        # moto answers with "Not yet implemented" for DescribeStream.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        os.environ.setdefault(var, value)
    _embedded_mock = mock_aws()
    _embedded_mock.start()


def make_clients(settings: Settings) -> Clients:
    """Build clients for the configured endpoint (AWS, embedded moto, or a URL)."""
    import boto3
    from botocore.config import Config

    endpoint = settings.endpoint_url
    if settings.embedded:
        start_embedded()
        endpoint = None
    elif endpoint:
        # Local engines accept any credentials; don't make users configure them.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session(region_name=settings.region)
    return Clients(
        dynamodb=session.client("dynamodb", endpoint_url=endpoint, config=config),
        streams=session.client("dynamodbstreams", endpoint_url=endpoint, config=config),
    )


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, else ``None``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def translate(exc: Exception, what: str) -> CqrsError:
    """Map a botocore error onto the framework's hierarchy, keeping it as ``cause``."""
    if isinstance(exc, CqrsError):
        return exc
    code = error_code(exc)
    if code == "ResourceNotFoundException":
        return TableNotFoundError(f"{what}: table not found (run `cqrs migrate`)", cause=exc)
    if code in _THROTTLING:
        return ThrottledError(f"{what}: throttled by DynamoDB ({code})", cause=exc)
    return OperationalError(f"{what}: {code or type(exc).__name__}: {exc}", cause=exc)


@contextmanager
def dynamo_errors(what: str) -> Iterator[None]:
    """Translate botocore errors raised inside the block (keeps ``cause``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, what) from exc
