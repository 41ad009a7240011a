"""The HTTP service of the SAM template: an API Gateway HTTP API with a JWT authorizer in
front of a function serving an ASGI app through Mangum (``examples/orders_api.py``).

Only rendered when asked for (``render_template(..., http=HttpApi(...))``, ``cqrs
template --http MODULE:ATTR --jwt-issuer URL --jwt-audience AUD``):

- an ``AWS::Serverless::HttpApi`` whose default authorizer is a JWT authorizer (issuer,
  audiences; the token from ``Authorization``), so every route, the OpenAPI page
  included, needs a valid token. API Gateway verifies it and hands the claims to the
  function in ``requestContext.authorizer.jwt.claims``, where
  :meth:`cqrs.core.context.InvokeContext.from_event` reads them;
- the function (handler ``module.attribute``), its log group, and a least-privilege
  policy: the entities' command tables (publish and read commands), data tables and
  their ``code-index`` (read), history tables (read). No stream, task, sequence or
  sync-failure access: the stream handler projects what the service publishes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigurationError
from ..schema.definitions import TableDefinition
from .iam import table_statements
from .resources import check_logical_id, log_group, logging_config

#: DynamoDB actions of an HTTP service over the entities, per table kind.
HTTP_TABLE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    # UpdateItem: the retention ttl on a superseded version, and publish_sync handing a
    # command it could not project back to the stream (removing its syncMode marker).
    "command": (
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ),
    "data": ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"),
    "history": ("dynamodb:GetItem", "dynamodb:Query"),
}

#: API Gateway's integration timeout is 30 seconds; the function gives up a little earlier.
MAX_TIMEOUT = 29

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ISSUER = re.compile(r"^https://[^\s/]+(/\S*)?$")


@dataclass(frozen=True)
class HttpApi:
    """The HTTP service's options.

    ``handler`` is the ASGI app's Mangum handler as ``module:attribute``
    (``examples.orders_api:handler``); ``jwt_issuer`` the token issuer (``https://...``,
    e.g. ``https://cognito-idp.<region>.amazonaws.com/<user pool id>``), ``jwt_audience``
    the accepted audiences (a Cognito app client id). ``function_name`` is the function's
    logical ID; the API is ``<function_name>Api``.
    """

    handler: str
    jwt_issuer: str
    jwt_audience: Sequence[str]
    function_name: str = "CqrsHttpHandler"
    memory_size: int = 512
    timeout: int = MAX_TIMEOUT

    def check(self) -> None:
        """Refuse options CloudFormation or API Gateway would refuse (ConfigurationError)."""
        check_logical_id(self.function_name)
        check_logical_id(self.api)
        if not _SPEC.match(self.handler):
            raise ConfigurationError(
                f"the HTTP handler must look like module:attribute, got {self.handler!r}"
            )
        if not _ISSUER.match(self.jwt_issuer):
            raise ConfigurationError(
                f"the JWT issuer must be an https URL, got {self.jwt_issuer!r}"
            )
        if isinstance(self.jwt_audience, str) or not self.jwt_audience:
            raise ConfigurationError("the JWT authorizer needs a list of at least one audience")
        if not all(isinstance(a, str) and a.strip() for a in self.jwt_audience):
            raise ConfigurationError(f"JWT audiences must be non-empty, got {self.jwt_audience!r}")
        if not 128 <= self.memory_size <= 10240:
            raise ConfigurationError(f"memory_size must be 128-10240, got {self.memory_size}")
        if not 1 <= self.timeout <= MAX_TIMEOUT:
            raise ConfigurationError(f"timeout must be 1-{MAX_TIMEOUT} s, got {self.timeout}")

    @property
    def api(self) -> str:
        """The HTTP API's logical ID."""
        return f"{self.function_name}Api"

    @property
    def lambda_handler(self) -> str:
        """``module:attribute`` as Lambda names it: ``module.attribute``."""
        return self.handler.replace(":", ".")


def http_resources(
    http: HttpApi,
    tables: Mapping[str, TableDefinition],
    function: Mapping[str, Any],
    variables: Mapping[str, Any],
    log_retention_days: int,
    statements: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The API, the function and its log group. ``function`` holds the stream handler's
    ``Runtime``, ``CodeUri`` and ``Architectures``; ``variables`` its app settings;
    ``statements`` access beyond the tables (the bucket of large attributes)."""
    authorizer = {
        "IdentitySource": "$request.header.Authorization",
        "JwtConfiguration": {"issuer": http.jwt_issuer, "audience": list(http.jwt_audience)},
    }
    statements = [*table_statements(tables, HTTP_TABLE_ACTIONS), *statements]
    return {
        http.api: {
            "Type": "AWS::Serverless::HttpApi",
            # No request reaches the function before its log group exists (Lambda would
            # create the group itself, and then CloudFormation could not).
            "DependsOn": [f"{http.function_name}LogGroup"],
            "Properties": {
                "Description": "cqrs HTTP service (JWT authorizer on every route)",
                "Auth": {"Authorizers": {"Jwt": authorizer}, "DefaultAuthorizer": "Jwt"},
            },
        },
        f"{http.function_name}LogGroup": log_group(http.function_name, log_retention_days),
        http.function_name: {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Description": "cqrs HTTP service (ASGI through Mangum)",
                "Handler": http.lambda_handler,
                **{k: function[k] for k in ("Runtime", "CodeUri", "Architectures")},
                "MemorySize": http.memory_size,
                "Timeout": http.timeout,
                "LoggingConfig": logging_config(),
                "Environment": {"Variables": dict(variables)},
                "Policies": [{"Version": "2012-10-17", "Statement": statements}],
                "Events": {"Api": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": http.api}}}},
            },
        },
    }


def http_outputs(http: HttpApi) -> dict[str, Any]:
    """The API's URL and the function's ARN."""
    return {
        "HttpApiUrl": {
            "Description": "Base URL of the HTTP service (send a bearer token)",
            "Value": {
                "Fn::Sub": f"https://${{{http.api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/"
            },
        },
        "HttpHandlerArn": {
            "Description": "ARN of the HTTP service's function",
            "Value": {"Fn::GetAtt": [http.function_name, "Arn"]},
        },
    }
