"""Options several commands share, as ``Annotated`` types for typer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .loading import Target

EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        metavar="URL",
        help="DynamoDB endpoint URL, e.g. the one `cqrs dev` prints (default: "
        "$CQRS_ENDPOINT_URL, else AWS)",
        show_default=False,
    ),
]
TablesDir = Annotated[
    Path | None,
    typer.Option(
        "--tables-dir",
        metavar="DIR",
        help="folder holding cqrs.json (default: $CQRS_TABLES_DIR or ./tables)",
        show_default=False,
    ),
]
Prefix = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        metavar="PREFIX",
        help="table name prefix, e.g. dev-shop- (default: $CQRS_TABLE_PREFIX)",
        show_default=False,
    ),
]
AppSpec = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help="your Cqrs app (instead of the options above)",
        show_default=False,
    ),
]
Entity = Annotated[str, typer.Argument(metavar="ENTITY", help="entity name, as in cqrs.json")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="report what would change; change nothing")]


def target(
    command: str,
    endpoint_url: str | None,
    tables_dir: Path | None,
    prefix: str | None,
    app: str | None,
) -> Target:
    """The :class:`~cqrs.cli.loading.Target` of the common options."""
    return Target(command, endpoint_url=endpoint_url, tables_dir=tables_dir, prefix=prefix, app=app)
