"""``cqrs template`` and ``cqrs package``: the deploy subcommands.

``cqrs.cli`` calls :func:`register` with its subparsers; each subcommand sets
``func``, a callable taking the parsed :class:`argparse.Namespace` and
returning the exit code (errors: one line on stderr, exit 2 for bad options
or configuration, 1 for failures, as everywhere in ``cqrs``). Defaults come
from :class:`~cqrs.core.settings.Settings` (``CQRS_TABLE_PREFIX``, ``CQRS_TABLES_DIR``)
and ``CQRS_APP``, read when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.errors import CqrsError
from ..core.settings import Settings
from ..schema.definitions import Schema
from .package import DEFAULT_PLATFORM, DEFAULT_PYTHON_VERSION, build_package
from .template import ARCHITECTURES, HandlerSettings, TemplateFormat, dump_template, render_template

DEFAULT_PACKAGE = Path("build/lambda.zip")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``template`` and ``package`` subcommands to ``subparsers``."""
    _add_template(subparsers)
    _add_package(subparsers)


def run_template(args: argparse.Namespace) -> int:
    """Render the SAM template to ``--out`` or stdout; return the exit code."""
    try:
        settings = Settings()
        prefix = args.prefix if args.prefix is not None else settings.table_prefix
        schema = Schema.load(args.tables_dir or settings.tables_dir, prefix)
        template = render_template(
            schema,
            function_name=args.function_name,
            runtime=args.runtime,
            architecture=args.architecture,
            code_uri=args.code_uri,
            app=args.app if args.app is not None else os.environ.get("CQRS_APP") or None,
            memory_size=args.memory_size,
            timeout=args.timeout,
            batch_size=args.batch_size,
            maximum_retry_attempts=args.maximum_retry_attempts,
            maximum_record_age_seconds=args.maximum_record_age,
            log_retention_days=args.log_retention_days,
            sync_max_attempts=args.sync_max_attempts,
        )
        text = dump_template(template, _template_format(args.format, args.out))
    except CqrsError as exc:
        return _fail(exc)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(schema.definitions())} tables)", file=sys.stderr)
    return 0


def run_package(args: argparse.Namespace) -> int:
    """Build the Lambda zip; return the exit code."""
    try:
        tables_dir = args.tables_dir or Settings().tables_dir
        build_package(
            args.out,
            project_dir=args.project_dir,
            tables_dir=tables_dir,
            python_version=args.python_version,
            platform=args.platform,
        )
    except CqrsError as exc:
        return _fail(exc)
    return 0


def _add_template(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "template",
        help="print the AWS SAM template for the tables and the stream handler",
        description="Render an AWS SAM template: every table of tables/cqrs.json, the "
        "stream handler Lambda, its event source mappings, dead-letter queue and IAM policy.",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    _add_tables_dir(parser)
    parser.add_argument("--prefix", help="table name prefix (default: $CQRS_TABLE_PREFIX)")
    parser.add_argument(
        "--app", help="module:attribute of your Cqrs object, set as CQRS_APP (default: $CQRS_APP)"
    )
    parser.add_argument("--runtime", default="python3.12", help="Lambda runtime (python3.12)")
    parser.add_argument(
        "--function-name", default="CqrsStreamHandler", help="logical ID of the function"
    )
    parser.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        default="x86_64",
        help="x86_64 (default) or arm64; `cqrs package --platform` must match",
    )
    parser.add_argument(
        "--code-uri", default=str(DEFAULT_PACKAGE), help="the zip from `cqrs package`"
    )
    parser.add_argument(
        "--format", choices=["json", "yaml"], help="output format (default: from --out, else json)"
    )
    _add_tunables(parser)
    parser.set_defaults(func=run_template)


def _add_tunables(parser: argparse.ArgumentParser) -> None:
    defaults = HandlerSettings()
    group = parser.add_argument_group("stream handler")
    group.add_argument("--memory-size", type=int, default=defaults.memory_size, help="MB")
    group.add_argument("--timeout", type=int, default=defaults.timeout, help="seconds")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size)
    group.add_argument(
        "--maximum-retry-attempts", type=int, default=defaults.maximum_retry_attempts
    )
    group.add_argument(
        "--maximum-record-age",
        type=int,
        default=defaults.maximum_record_age_seconds,
        help="seconds before a failing record goes to the dead-letter queue",
    )
    group.add_argument("--log-retention-days", type=int, default=defaults.log_retention_days)
    group.add_argument(
        "--sync-max-attempts",
        type=int,
        default=defaults.sync_max_attempts,
        help="failed attempts of a command before its entity is stuck (CQRS_SYNC_MAX_ATTEMPTS)",
    )


def _add_package(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "package",
        help="build the Lambda zip (cqrs, your code, its dependencies, cqrs.json)",
        description="pip-install the project for the Lambda platform, drop what the "
        "runtime ships (boto3, botocore, ...), add cqrs.json and write a reproducible zip.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        default=DEFAULT_PACKAGE,
        help=f"default: {DEFAULT_PACKAGE}",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        metavar="DIR",
        default=Path("."),
        help="project to install (default: .)",
    )
    _add_tables_dir(parser)
    parser.add_argument(
        "--python-version",
        default=DEFAULT_PYTHON_VERSION,
        help=f"must match the template's --runtime (default: {DEFAULT_PYTHON_VERSION})",
    )
    parser.add_argument(
        "--platform",
        default=DEFAULT_PLATFORM,
        help=f"wheel platform (default: {DEFAULT_PLATFORM}; manylinux2014_aarch64 for arm64)",
    )
    parser.set_defaults(func=run_package)


def _add_tables_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tables-dir",
        type=Path,
        metavar="DIR",
        help="folder holding cqrs.json (default: $CQRS_TABLES_DIR or ./tables)",
    )


def _template_format(fmt: str | None, out: Path | None) -> TemplateFormat:
    if fmt == "yaml" or (fmt is None and out is not None and out.suffix in {".yaml", ".yml"}):
        return "yaml"
    return "json"


def _fail(exc: CqrsError) -> int:
    """One ``cqrs: error:`` line; 2 for bad options or configuration, else 1 (as ``cqrs``)."""
    from ..cli.commands import report_error

    return report_error(exc)
