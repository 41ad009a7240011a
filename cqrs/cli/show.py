"""``cqrs show``: one entity's data row and its history, with what changed per version."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import RenderableType
from rich.json import JSON
from rich.padding import Padding
from rich.text import Text

from .diff import diff_versions
from .errors import FAILURE, OK
from .loading import app_for
from .options import AppSpec, EndpointUrl, Prefix, TablesDir, target
from .render import Cell, change_text, emit, plain, table

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..app import Cqrs, EntityServices

#: Top-level fields that change with every version; shown as columns, not as changes.
VERSION_FIELDS = frozenset(
    {"sk", "version", "requestId", "updatedAt", "updatedBy", "updatedIp", "cpk", "csk", "source"}
)


def register(app: typer.Typer) -> None:
    """Add ``show`` to ``app``."""
    app.command()(show)


def show(
    entity: Annotated[
        str, typer.Argument(metavar="ENTITY", help="entity name, as in cqrs.json (e.g. order)")
    ],
    pk: Annotated[str, typer.Argument(metavar="PK", help="partition key, e.g. ORDER#acme")],
    sk: Annotated[
        str,
        typer.Argument(
            metavar="SK", help="base sort key, e.g. ORDER#A-1 (an @version suffix is ignored)"
        ),
    ],
    endpoint_url: EndpointUrl = None,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: AppSpec = None,
) -> int:
    """Print an entity's data row and history, with what changed per version.

    Versions only in the command table (not synchronized yet) are marked with *.
    Exits 1 if nothing at all is stored under the key.
    """
    from ..core.keys import remove_version

    app = app_for(target("show", endpoint_url, tables_dir, prefix, app_spec))
    base = remove_version(sk)
    view = load_entity_view(app.entity(entity), pk, base)
    emit([*entity_view(view), *_sync_state(app, entity, pk, base)])
    return OK if view.found else FAILURE


def _sync_state(app: Cqrs, entity: str, pk: str, sk: str) -> list[RenderableType]:
    """Why later versions are not synchronized, if sync keeps failing on this entity."""
    if "sync-failures" not in app.schema.system_tables:
        return []
    failure = app.sync_failures.get(entity, pk, sk)
    if failure is None:
        return []
    state = "STUCK" if failure.stuck else "retrying"
    lines: list[RenderableType] = [
        Text(
            f"sync {state} at version {failure.failed_version} after {failure.attempts} "
            f"attempt(s) since {failure.first_failed_at}: {failure.error}",
            style="bold red" if failure.stuck else "yellow",
        )
    ]
    if failure.stuck:
        lines.append(Text(f"  fix the cause, then: cqrs redrive {entity}"))
    return lines


@dataclass(frozen=True)
class VersionRow:
    """One version of an entity: from its history, or only in the command table."""

    version: int
    item: Mapping[str, object]
    synced: bool = True


@dataclass(frozen=True)
class EntityView:
    """What ``cqrs show`` prints about one entity."""

    entity: str
    pk: str
    sk: str
    data: Mapping[str, object] | None
    versions: Sequence[VersionRow] = field(default_factory=tuple)

    @property
    def found(self) -> bool:
        """True when a data row or any version exists."""
        return self.data is not None or bool(self.versions)


def load_entity_view(entity: EntityServices[Any], pk: str, sk: str) -> EntityView:
    """Read the data row, the history and any command versions not yet synchronized.

    An operator's view of any tenant's entity: every read is made as :data:`~cqrs.SYSTEM`.
    """
    from ..core.context import SYSTEM

    data = entity.data.get(pk, sk, include_deleted=True, consistent=True, context=SYSTEM)
    rows = [VersionRow(h.version, _dump(h)) for h in entity.history.list(pk, sk, context=SYSTEM)]
    last = rows[-1].version if rows else 0
    latest = entity.commands.latest_version(pk, sk, context=SYSTEM)
    for version in range(last + 1, latest + 1):
        command = entity.commands.get(pk, sk, version, context=SYSTEM)
        if command is not None:
            rows.append(VersionRow(version, _dump(command), synced=False))
    return EntityView(entity.name, pk, sk, _dump(data) if data is not None else None, rows)


def _dump(record: BaseModel) -> dict[str, object]:
    dumped: dict[str, object] = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def render_entity_view(view: EntityView) -> str:
    """The plain text of :func:`entity_view` (ends with a newline)."""
    return plain(*entity_view(view))


def entity_view(view: EntityView) -> list[RenderableType]:
    """What ``cqrs show`` prints: a title, the data row, then the history table."""
    title = Text(f"{view.entity}  {view.pk} / {view.sk}", style="bold")
    return [title, Text(""), *_data(view.data), Text(""), *_history(view.versions)]


def _data(data: Mapping[str, object] | None) -> list[RenderableType]:
    if data is None:
        return [Text("data: no row (never synchronized, or no such entity)", style="yellow")]
    deleted = " (deleted)" if data.get("isDeleted") else ""
    rows: list[list[RenderableType]] = [
        [Text(key, style="cyan"), Text(_plain(value))]
        for key, value in data.items()
        if key != "attributes"
    ]
    attributes = json.dumps(data.get("attributes", {}), ensure_ascii=False)
    rows.append([Text("attributes", style="cyan"), JSON(attributes, indent=2)])
    fields = table(["FIELD", "VALUE"], [], header=False)
    for row in rows:
        fields.add_row(*row)
    return [
        Text(f"data: version {data.get('version')}{deleted}", style="bold"),
        Padding(fields, (0, 0, 0, 2)),
    ]


def _history(versions: Sequence[VersionRow]) -> list[RenderableType]:
    if not versions:
        return [Text("history: no versions", style="yellow")]
    pending = sum(1 for v in versions if not v.synced)
    note = f", {pending} not synced" if pending else ""
    rows: list[list[Cell]] = []
    previous: Mapping[str, object] | None = None
    for row in versions:
        if previous is None:
            changes = Text("created", style="dim")
        else:
            found = diff_versions(previous, row.item, ignore=VERSION_FIELDS)
            changes = Text("\n").join(map(change_text, found)) if found else Text("(no change)")
        version = (
            Text(f"v{row.version}", style="bold")
            if row.synced
            else Text(f"v{row.version}*", style="bold yellow")
        )
        updated, by = str(row.item.get("updatedAt", "")), str(row.item.get("updatedBy", ""))
        rows.append([version, updated, by, changes])
        previous = row.item
    out: list[RenderableType] = [
        Text(f"history: {len(versions)} version(s){note}", style="bold"),
        table(["VERSION", "UPDATED AT", "BY", "CHANGES"], rows),
    ]
    if pending:
        out.append(
            Text("* only in the command table: run `cqrs sync` (or `cqrs dev`) to project it")
        )
    return out


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
