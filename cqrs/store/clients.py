"""boto3 clients for DynamoDB and DynamoDB Streams (S3 and SNS), built from settings.

Clients are injectable: pass your own (with your retry config, credentials or
instrumentation) or let :func:`make_clients` build them. With
``CQRS_ENDPOINT_URL=embedded`` the in-process moto engine is started first.

Nothing here changes the process environment: local engines (embedded moto, a
moto server, DynamoDB Local) get explicit placeholder credentials on the client
when none are configured, instead of variables written into ``os.environ``.

Clients built here skip botocore's parameter validation (``parameter_validation=False``):
the framework builds every request they make, and what could be wrong in one, the
values, is checked by the gateway's codec (:mod:`~cqrs.store.codec`) before the
request; botocore's walk over every request against the service model otherwise
costs about three times the CPU of serializing it (0.24 ms against 0.08 ms for a
command ``PutItem`` of 20 attributes). A client you pass yourself keeps its
own configuration; a request you make on :attr:`Clients.dynamodb` directly goes
unvalidated to the service, which refuses what is malformed (``ValidationException``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client

    from ..core.settings import Settings
    from . import Store
    from .objects import AttributeObjects

#: Credentials local engines accept; used only when none are configured.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the framework uses, and the storage gateway over them.

    ``objects``: S3, where large attributes are kept (:mod:`cqrs.store.objects`); ``None``
    lets :class:`~cqrs.app.Cqrs` build it from its settings.
    """

    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient
    objects: AttributeObjects | None = None

    @cached_property
    def store(self) -> Store:
        """The :class:`~cqrs.store.Store` over :attr:`dynamodb` and :attr:`objects`."""
        from . import Store

        return Store(self.dynamodb, objects=self.objects)


#: moto's started ``mock_aws`` (``None`` until :func:`start_embedded`).
_embedded_mock: object = None


def start_embedded() -> None:
    """Start the in-process moto engine once per process (idempotent).

    moto is told not to patch credential variables; the clients get explicit ones.
    """
    global _embedded_mock
    if _embedded_mock is not None:
        return
    try:
        from moto import mock_aws
    except ImportError as exc:  # pragma: no cover - depends on the install
        from ..core.errors import ConfigurationError

        raise ConfigurationError(
            "CQRS_ENDPOINT_URL=embedded needs moto: pip install 'cqrs[embedded]'", cause=exc
        ) from exc
    mock = mock_aws(config={"core": {"mock_credentials": False, "reset_boto3_session": False}})
    mock.start()
    _embedded_mock = mock


def client_options(settings: Settings, endpoint: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``session.client(...)``: endpoint, retries, local credentials."""
    from botocore.config import Config

    endpoint = endpoint if endpoint is not None else settings.endpoint_url
    options: dict[str, Any] = {}
    local = settings.embedded or bool(endpoint)
    if settings.embedded:
        start_embedded()
        endpoint = None
    if local and not os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(LOCAL_CREDENTIALS)
    # botocore >= 1.44.4 otherwise builds account-id endpoints that local engines
    # (in-process moto) answer with "Not yet implemented" for DescribeStream.
    mode: Literal["disabled"] | None = "disabled" if local else None
    options["config"] = Config(
        retries={"mode": "standard", "max_attempts": 5},
        account_id_endpoint_mode=mode,
        parameter_validation=False,  # the framework builds the requests; the codec checks values
    )
    options["endpoint_url"] = endpoint
    return options


def make_clients(settings: Settings) -> Clients:
    """Build clients for the configured endpoint (AWS, embedded moto, or a URL)."""
    import boto3

    options = client_options(settings)
    session = boto3.session.Session(region_name=settings.region)
    return Clients(
        dynamodb=session.client("dynamodb", **options),
        streams=session.client("dynamodbstreams", **options),
        objects=attribute_objects(settings, session),
    )


def with_objects(clients: Clients, settings: Settings) -> Clients:
    """``clients``, given S3 for large attributes from ``settings`` if they have none."""
    if clients.objects is not None:
        return clients
    return replace(clients, objects=attribute_objects(settings))


def attribute_objects(
    settings: Settings,
    session: boto3.session.Session | None = None,
    credentials: Mapping[str, str] | None = None,
) -> AttributeObjects:
    """S3 for large attributes as ``settings`` configure it: ``CQRS_S3_BUCKET`` and
    ``CQRS_ATTRIBUTE_LIMIT_SIZE``; the client (``CQRS_S3_ENDPOINT_URL``, else the
    DynamoDB endpoint) is built on first use, so a cold start without large attributes
    does not pay for it. ``credentials``: keyword arguments that override the client's."""
    from .objects import AttributeObjects

    def client() -> S3Client:
        import boto3
        from botocore.config import Config

        options = {**client_options(settings, settings.s3_endpoint_url), **(credentials or {})}
        if options["endpoint_url"]:  # local engines serve buckets by path, as MBC asks
            options["config"] = options["config"].merge(Config(s3={"addressing_style": "path"}))
        own = session or boto3.session.Session(region_name=settings.region)
        return own.client("s3", **options)

    return AttributeObjects(client, bucket=settings.s3_bucket, limit=settings.attribute_limit_size)
