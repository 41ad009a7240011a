"""``cqrs template`` and ``cqrs package``: the deploy commands (typer).

:func:`register` adds them to the ``cqrs`` app; each returns its exit code
(errors: one line on stderr, exit 2 for bad options or configuration, 1 for
failures, as everywhere in ``cqrs``). Defaults come from
:class:`~cqrs.core.settings.Settings` (``CQRS_TABLE_PREFIX``, ``CQRS_TABLES_DIR``)
and ``CQRS_APP``, read when the command runs (settings, schema and template code
load then too, keeping ``cqrs --help`` quick).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ..cli.errors import OK, report_error
from ..cli.options import Prefix, TablesDir
from ..core.errors import CqrsError
from .objects import AttributesBucket
from .package import DEFAULT_PLATFORM, DEFAULT_PYTHON_VERSION
from .resources import HandlerSettings
from .sweep import DEFAULT_SCHEDULE

if TYPE_CHECKING:
    from .http_api import HttpApi
    from .template import TemplateFormat

DEFAULT_PACKAGE = Path("build/lambda.zip")
_DEFAULTS = HandlerSettings()


def register(app: typer.Typer) -> None:
    """Add ``template`` and ``package`` to ``app``."""
    app.command()(template)
    app.command()(package)


def _tunable(help: str) -> Any:
    return typer.Option(help=help, rich_help_panel="stream handler")


def _operations(help: str, *names: str, metavar: str | None = None) -> Any:
    return typer.Option(*names, help=help, metavar=metavar, rich_help_panel="operations")


Out = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="write to FILE instead of stdout", show_default=False),
]
AppSpec = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help="your Cqrs object, set as CQRS_APP (default: $CQRS_APP)",
        show_default=False,
    ),
]
Runtime = Annotated[str, typer.Option(help="Lambda runtime")]
FunctionName = Annotated[str, typer.Option(help="logical ID of the function")]
Architecture = Annotated[
    Literal["x86_64", "arm64"],
    typer.Option(help="x86_64 or arm64; `cqrs package --platform` must match"),
]
CodeUri = Annotated[str, typer.Option(help="the zip from `cqrs package`")]
Format = Annotated[
    Literal["json", "yaml"] | None,
    typer.Option("--format", help="output format (default: from --out, else json)"),
]
MemorySize = Annotated[int, _tunable("MB")]
Timeout = Annotated[int, _tunable("seconds")]
BatchSize = Annotated[
    int,
    _tunable(
        "records per invocation (up to): history is written 25 items per BatchWriteItem, "
        "handlers' data versions read 100 keys per BatchGetItem"
    ),
]
BatchingWindow = Annotated[
    int,
    _tunable(
        "MaximumBatchingWindowInSeconds: seconds Lambda may wait to fill a batch "
        "(fewer, fuller invocations; adds up to this much sync lag on a quiet stream)"
    ),
]
Parallelization = Annotated[
    int,
    _tunable(
        "ParallelizationFactor: concurrent batches per shard (1-10). Lambda keeps order "
        "per item and each command version is an item, so above 1 versions of an entity "
        "may be projected concurrently: still correct, with extra requests"
    ),
]
StreamViewType = Annotated[
    Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES"],
    _tunable(
        "view type of the consumed streams (command tables, tasks); the handler reads new "
        "images only. Changing it on a deployed stack replaces the streams and mappings"
    ),
]
RetryAttempts = Annotated[int, _tunable("retries of a failing batch")]
RecordAge = Annotated[
    int, _tunable("seconds before a failing record goes to the dead-letter queue")
]
RetentionDays = Annotated[int, _tunable("days the handler's logs are kept")]
SyncAttempts = Annotated[
    int,
    _tunable("failed attempts of a command before its entity is stuck (CQRS_SYNC_MAX_ATTEMPTS)"),
]
Notifications = Annotated[
    bool,
    _operations(
        "an SNS topic for command statuses and sync alarms, set as CQRS_SNS_TOPIC_ARN "
        "(one message per applied command)",
        "--notifications/--no-notifications",
    ),
]
SweepSchedule = Annotated[
    str,
    _operations(
        "EventBridge schedule of the task sweep (rate(...) or cron(...)); '' for none",
        "--sweep-schedule",
        metavar="EXPR",
    ),
]
SweepTenant = Annotated[
    list[str] | None,
    _operations(
        "a tenant to sweep (repeat it); default: every tenant with an unfinished task, "
        "found by a Scan of the tasks table",
        "--sweep-tenant",
        metavar="TENANT",
    ),
]
AttributesBucketName = Annotated[
    str | None,
    _operations(
        "an existing S3 bucket for large attributes (an MBC service's, say), instead of a "
        "new one; 'none' for no bucket (attributes then stay in DynamoDB)",
        "--attributes-bucket",
        metavar="NAME",
    ),
]
HttpHandler = Annotated[
    str | None,
    typer.Option(
        "--http",
        metavar="MODULE:ATTR",
        help="add an HTTP API with a JWT authorizer in front of this Mangum handler "
        "(e.g. examples.orders_api:handler); needs --jwt-issuer and --jwt-audience",
        rich_help_panel="HTTP service",
        show_default=False,
    ),
]
JwtIssuer = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="the JWT authorizer's issuer (https://cognito-idp.<region>.amazonaws.com/<pool>)",
        rich_help_panel="HTTP service",
        show_default=False,
    ),
]
JwtAudience = Annotated[
    list[str] | None,
    typer.Option(
        metavar="AUD",
        help="an audience the JWT authorizer accepts, e.g. an app client id (repeat it)",
        rich_help_panel="HTTP service",
        show_default=False,
    ),
]


def template(
    out: Out = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
    runtime: Runtime = "python3.12",
    function_name: FunctionName = "CqrsStreamHandler",
    architecture: Architecture = "x86_64",
    code_uri: CodeUri = str(DEFAULT_PACKAGE),
    fmt: Format = None,
    memory_size: MemorySize = _DEFAULTS.memory_size,
    timeout: Timeout = _DEFAULTS.timeout,
    batch_size: BatchSize = _DEFAULTS.batch_size,
    batching_window: BatchingWindow = _DEFAULTS.batching_window_seconds,
    parallelization_factor: Parallelization = _DEFAULTS.parallelization_factor,
    stream_view_type: StreamViewType = _DEFAULTS.stream_view_type,
    maximum_retry_attempts: RetryAttempts = _DEFAULTS.maximum_retry_attempts,
    maximum_record_age: RecordAge = _DEFAULTS.maximum_record_age_seconds,
    log_retention_days: RetentionDays = _DEFAULTS.log_retention_days,
    sync_max_attempts: SyncAttempts = _DEFAULTS.sync_max_attempts,
    notifications: Notifications = True,
    sweep_schedule: SweepSchedule = DEFAULT_SCHEDULE,
    sweep_tenant: SweepTenant = None,
    attributes_bucket: AttributesBucketName = None,
    http: HttpHandler = None,
    jwt_issuer: JwtIssuer = None,
    jwt_audience: JwtAudience = None,
) -> int:
    """Print the AWS SAM template for the tables and the stream handler.

    Every table of tables/cqrs.json, the stream handler Lambda, its event source mappings,
    dead-letter queue and least-privilege IAM policy; the notification topic, the bucket of
    large attributes, the scheduled task sweep and, with --http, an HTTP API.
    """
    from ..core.settings import Settings
    from ..schema.definitions import Schema
    from .template import dump_template, render_template

    try:
        settings = Settings()
        prefix = prefix if prefix is not None else settings.table_prefix
        schema = Schema.load(tables_dir or settings.tables_dir, prefix)
        rendered = render_template(
            schema, function_name=function_name, runtime=runtime, architecture=architecture,
            code_uri=code_uri,
            app=app_spec if app_spec is not None else os.environ.get("CQRS_APP") or None,
            memory_size=memory_size, timeout=timeout, batch_size=batch_size,
            batching_window_seconds=batching_window, stream_view_type=stream_view_type,
            parallelization_factor=parallelization_factor,
            maximum_retry_attempts=maximum_retry_attempts,
            maximum_record_age_seconds=maximum_record_age, log_retention_days=log_retention_days,
            sync_max_attempts=sync_max_attempts, notifications=notifications,
            sweep_schedule=sweep_schedule or None, sweep_tenants=sweep_tenant or (),
            http=_http_api(http, jwt_issuer, jwt_audience),
            attributes_bucket=_bucket(attributes_bucket),
        )  # fmt: skip
        text = dump_template(rendered, _template_format(fmt, out))
    except CqrsError as exc:
        return report_error(exc)
    return _write(text, out, f"{len(schema.definitions())} tables")


def _bucket(name: str | None) -> AttributesBucket | None:
    """``--attributes-bucket``: unset, a new bucket; ``none``, no bucket; else that one."""
    if name is None:
        return AttributesBucket()
    return None if name.lower() == "none" else AttributesBucket(existing=name)


def _write(text: str, out: Path | None, what: str) -> int:
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out} ({what})", file=sys.stderr)
    return OK


def package(
    out: Annotated[Path, typer.Option(metavar="FILE", help="where to write the zip")] = (
        DEFAULT_PACKAGE
    ),
    project_dir: Annotated[Path, typer.Option(metavar="DIR", help="project to install")] = Path(
        "."
    ),
    tables_dir: TablesDir = None,
    python_version: Annotated[
        str, typer.Option(metavar="X.Y", help="must match the template's --runtime")
    ] = DEFAULT_PYTHON_VERSION,
    platform: Annotated[
        str,
        typer.Option(help="wheel platform (manylinux2014_aarch64 for arm64)"),
    ] = DEFAULT_PLATFORM,
) -> int:
    """Build the Lambda zip: cqrs, your code, its dependencies and cqrs.json.

    pip-installs the project for the Lambda platform, drops what the runtime
    ships (boto3, botocore, ...), adds cqrs.json and writes a reproducible zip.
    """
    from ..core.settings import Settings
    from .package import build_package

    try:
        build_package(
            out,
            project_dir=project_dir,
            tables_dir=tables_dir or Settings().tables_dir,
            python_version=python_version,
            platform=platform,
        )
    except CqrsError as exc:
        return report_error(exc)
    return OK


def _http_api(
    handler: str | None, issuer: str | None, audience: list[str] | None
) -> HttpApi | None:
    """The HTTP service of ``--http``, ``--jwt-issuer`` and ``--jwt-audience``."""
    from ..core.errors import ConfigurationError
    from .http_api import HttpApi

    if handler is None:
        if issuer or audience:
            raise ConfigurationError("--jwt-issuer and --jwt-audience need --http")
        return None
    if not issuer or not audience:
        raise ConfigurationError(
            "--http needs --jwt-issuer and --jwt-audience: the HTTP API's JWT authorizer"
        )
    return HttpApi(handler, issuer, tuple(audience))


def _template_format(fmt: str | None, out: Path | None) -> TemplateFormat:
    if fmt == "yaml" or (fmt is None and out is not None and out.suffix in {".yaml", ".yml"}):
        return "yaml"
    return "json"
