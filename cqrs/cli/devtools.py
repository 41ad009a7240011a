"""``cqrs dev`` and ``cqrs show``: a local engine for development, and an entity inspector.

``cqrs dev`` starts moto's DynamoDB + DynamoDB Streams server on 127.0.0.1,
creates the tables and follows every stream through the synchronizer, so a
service pointed at it (``CQRS_ENDPOINT_URL``) sees its read model updated as
it would on AWS. ``cqrs show`` prints one entity's data row and its history,
with what changed from version to version (:func:`diff_versions`).

``cqrs.cli`` calls :func:`register` with its subparsers; each subcommand sets
``func``, a callable taking the parsed :class:`argparse.Namespace` and
returning the exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ..core.errors import ConfigurationError

if TYPE_CHECKING:
    from ..app import Cqrs, Entity
    from ..core.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
DEFAULT_INTERVAL = 0.25

Echo = Callable[[str], None]
AppFactory = Callable[[str], "Cqrs"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dev`` and ``show`` subcommands to ``subparsers``."""
    _add_dev(subparsers)
    _add_show(subparsers)


# -- cqrs dev ------------------------------------------------------------------------


def _add_dev(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "dev",
        help="run a local DynamoDB + Streams engine with the synchronizer following it",
        description="Start moto's server on 127.0.0.1, create every table and feed every "
        "stream through the synchronizer until Ctrl-C. Data lives in memory only.",
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 = any free port"
    )
    p.add_argument("--tables-dir", type=Path, metavar="DIR", help="folder holding cqrs.json")
    p.add_argument("--prefix", help="table name prefix, e.g. dev-shop- (default: none)")
    p.add_argument(
        "--app",
        help="module:attribute of your Cqrs app, to run its custom projections "
        "(it must build its settings from the environment, e.g. Cqrs.from_env())",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL,
        help=f"seconds between idle stream polls (default {DEFAULT_INTERVAL})",
    )
    p.add_argument("--verbose", action="store_true", help="log every request the engine serves")
    p.set_defaults(func=cmd_dev)


def cmd_dev(args: argparse.Namespace) -> int:
    """Run the local engine and follower until SIGINT/SIGTERM; return the exit code."""
    from .commands import stop_on_signals

    _configure_logging(args.verbose)
    settings = _settings(args.tables_dir, args.prefix)
    factory = _env_app_factory(args.app, args.tables_dir, args.prefix) if args.app else None
    stop = threading.Event()
    with stop_on_signals(stop):
        run_dev(
            settings,
            stop,
            port=args.port,
            interval=args.interval,
            app_factory=factory,
            verbose=args.verbose,
        )
    print("cqrs dev: stopped", flush=True)
    return 0


def run_dev(
    settings: Settings,
    stop: threading.Event,
    *,
    port: int = DEFAULT_PORT,
    ready: Callable[[str], None] | None = None,
    interval: float = DEFAULT_INTERVAL,
    app_factory: AppFactory | None = None,
    out: TextIO | None = None,
    verbose: bool = False,
) -> None:
    """Serve moto on ``127.0.0.1:port``, migrate, follow every stream until ``stop`` is set.

    ``settings`` give the tables and prefix (its endpoint is replaced by the
    server's). ``ready`` is called with the endpoint URL once tables exist and
    the follower starts. ``app_factory(endpoint)`` builds the app instead (for
    ``--app``). The server is stopped before returning, also on errors. The
    engine's per-request log (werkzeug) is silenced unless ``verbose``.
    """
    stream = out or sys.stdout
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)
    server, endpoint = start_engine(port)
    try:
        app = app_factory(endpoint) if app_factory else _app_on(settings, endpoint)
        app.migrate(echo=lambda line: print(f"  {line}", file=stream))
        print(dev_banner(app, endpoint, interval), file=stream, flush=True)
        if ready is not None:
            ready(endpoint)
        app.follower().follow(stop, interval=interval)
    finally:
        server.stop()


def start_engine(port: int, host: str = DEFAULT_HOST) -> tuple[Any, str]:
    """Start moto's server (atomic requests: :mod:`cqrs.testing.local_server`); return it, its URL.

    Fails fast with :class:`~cqrs.core.errors.ConfigurationError` when the port is
    taken (moto's server would otherwise wait forever for its thread).
    """
    try:
        from ..testing.local_server import LocalServer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "cqrs dev needs moto's server: pip install 'cqrs[embedded]'", cause=exc
        ) from exc
    if port:
        _check_port_free(host, port)
    server = LocalServer(port, ip_address=host)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def dev_banner(app: Cqrs, endpoint: str, interval: float) -> str:
    """What ``cqrs dev`` prints once ready: the endpoint and how to point a service at it."""
    s = app.settings
    tables = [d.name for d in app.schema.definitions()]
    prefix = s.table_prefix
    return "\n".join(
        [
            f"cqrs dev: DynamoDB + DynamoDB Streams (moto) at {endpoint}",
            f"  {len(tables)} table(s) in {s.region}, prefix {prefix!r}: {', '.join(tables)}",
            f"  following {len(app.streamed_tables())} stream(s) through the synchronizer "
            f"(polling every {interval:g} s when idle)",
            "",
            "Point a service at it:",
            f"  export CQRS_ENDPOINT_URL={endpoint}",
            f"  export CQRS_TABLE_PREFIX={prefix}",
            f"  export AWS_REGION={s.region}",
            "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local  # any values work",
            "",
            f"Inspect an entity: cqrs show <entity> <pk> <sk> --endpoint-url {endpoint}"
            + (f" --prefix {prefix}" if prefix else ""),
            "Data lives in memory only. Ctrl-C stops the engine and the follower.",
        ]
    )


def _settings(tables_dir: Path | None, prefix: str | None) -> Settings:
    from ..core.settings import Settings

    overrides: dict[str, Any] = {"tables_dir": tables_dir, "table_prefix": prefix}
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _app_on(settings: Settings, endpoint: str) -> Cqrs:
    from ..app import Cqrs

    return Cqrs(settings.model_copy(update={"endpoint_url": endpoint}))


def _env_app_factory(spec: str, tables_dir: Path | None, prefix: str | None) -> AppFactory:
    """Load the user's app with ``CQRS_ENDPOINT_URL`` (and the options) in the environment.

    The variables are set only while the app is imported and built (it reads its
    settings then), and the environment is restored right after.
    """

    def factory(endpoint: str) -> Cqrs:
        from unittest import mock

        from .commands import load_user_app

        env = {"CQRS_ENDPOINT_URL": endpoint}
        if tables_dir is not None:
            env["CQRS_TABLES_DIR"] = str(tables_dir)
        if prefix is not None:
            env["CQRS_TABLE_PREFIX"] = prefix
        with mock.patch.dict(os.environ, env):
            app = load_user_app(spec)
        if app.settings.endpoint_url != endpoint:
            raise ConfigurationError(
                f"{spec} uses endpoint {app.settings.endpoint_url!r}, not {endpoint}: build it "
                "with Cqrs.from_env() (or Settings()) so that CQRS_ENDPOINT_URL applies"
            )
        return app

    return factory


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port "
                "(0 = any free port)",
                cause=exc,
            ) from exc


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# -- cqrs show -----------------------------------------------------------------------


def _add_show(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .commands import _add_common

    p = subparsers.add_parser(
        "show",
        help="print an entity's data row and its history, with what changed per version",
        description="Print the data row of one entity and every version in its history, "
        "each with the attributes it changed; versions still only in the command table "
        "(not yet synchronized) are marked.",
    )
    p.add_argument("entity", help="entity name, as listed in cqrs.json (e.g. order)")
    p.add_argument("pk", help="partition key, e.g. ORDER#acme")
    p.add_argument("sk", help="base sort key, e.g. ORDER#A-1 (an @version suffix is ignored)")
    _add_common(p)
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    """Print one entity; exit 1 if nothing at all is stored under its key."""
    from ..core.keys import remove_version
    from .commands import _app

    build: Callable[[argparse.Namespace], Cqrs] = _app
    app = build(args)
    view = load_entity_view(app.entity(args.entity), args.pk, remove_version(args.sk))
    sys.stdout.write(render_entity_view(view))
    if "sync-failures" in app.schema.system_tables:  # why later versions are not synced
        failure = app.sync_failures.get(args.entity, args.pk, remove_version(args.sk))
        if failure is not None:
            state = "STUCK" if failure.stuck else "retrying"
            print(
                f"sync {state} at version {failure.failed_version} after {failure.attempts} "
                f"attempt(s) since {failure.first_failed_at}: {failure.error}"
                + (f"\n  fix the cause, then: cqrs redrive {args.entity}" if failure.stuck else "")
            )
    return 0 if view.found else 1


#: Top-level fields that change with every version; shown as columns, not as changes.
VERSION_FIELDS = frozenset(
    {"sk", "version", "requestId", "updatedAt", "updatedBy", "updatedIp", "cpk", "csk", "source"}
)


@dataclass(frozen=True)
class VersionRow:
    """One version of an entity: from its history, or only in the command table."""

    version: int
    item: Mapping[str, Any]
    synced: bool = True


@dataclass(frozen=True)
class EntityView:
    """What ``cqrs show`` prints about one entity."""

    entity: str
    pk: str
    sk: str
    data: Mapping[str, Any] | None
    versions: Sequence[VersionRow] = field(default_factory=tuple)

    @property
    def found(self) -> bool:
        """True when a data row or any version exists."""
        return self.data is not None or bool(self.versions)


def load_entity_view(entity: Entity[Any], pk: str, sk: str) -> EntityView:
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


def _dump(record: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def render_entity_view(view: EntityView) -> str:
    """The human-readable text of :class:`EntityView` (ends with a newline)."""
    lines = [f"{view.entity}  {view.pk} / {view.sk}", ""]
    lines += _render_data(view.data)
    lines.append("")
    lines += _render_history(view.versions)
    return "\n".join(lines) + "\n"


def _render_data(data: Mapping[str, Any] | None) -> list[str]:
    if data is None:
        return ["data: no row (never synchronized, or no such entity)"]
    deleted = " (deleted)" if data.get("isDeleted") else ""
    lines = [f"data: version {data.get('version')}{deleted}"]
    fields = [(k, _plain(v)) for k, v in data.items() if k != "attributes"]
    attributes = json.dumps(data.get("attributes", {}), indent=2, ensure_ascii=False)
    fields.append(("attributes", attributes))
    width = max(len(k) for k, _ in fields)
    for key, text in fields:
        first, *rest = text.splitlines() or [""]
        lines.append(f"  {key:<{width}}  {first}")
        lines += [f"  {'':<{width}}  {line}" for line in rest]
    return lines


def _render_history(versions: Sequence[VersionRow]) -> list[str]:
    if not versions:
        return ["history: no versions"]
    pending = sum(1 for v in versions if not v.synced)
    note = f", {pending} not synced" if pending else ""
    lines = [f"history: {len(versions)} version(s){note}"]
    rows: list[list[str]] = []
    previous: Mapping[str, Any] | None = None
    for row in versions:
        if previous is None:
            changes = ["created"]
        else:
            found = diff_versions(previous, row.item, ignore=VERSION_FIELDS)
            changes = [str(c) for c in found] or ["(no change)"]
        mark = "" if row.synced else "*"
        updated = str(row.item.get("updatedAt", ""))
        by = str(row.item.get("updatedBy", ""))
        rows.append([f"v{row.version}{mark}", updated, by, "\n".join(changes)])
        previous = row.item
    lines += render_table(["VERSION", "UPDATED AT", "BY", "CHANGES"], rows)
    if pending:
        lines.append("* only in the command table: run `cqrs sync` (or `cqrs dev`) to project it")
    return lines


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns; a cell may hold several lines (continued below it)."""
    split = [[cell.splitlines() or [""] for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in split:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(headers)]
    for row in split:
        for depth in range(max(len(cell) for cell in row)):
            out.append(line([cell[depth] if depth < len(cell) else "" for cell in row]))
    return out


# -- diff ----------------------------------------------------------------------------

ChangeKind = Literal["added", "removed", "changed"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE_LIMIT = 60


@dataclass(frozen=True)
class Change:
    """One difference between two versions, at a dotted path like ``attributes.lines[0].qty``.

    ``before`` is ``None`` for ``added``, ``after`` is ``None`` for ``removed``.
    """

    path: str
    kind: ChangeKind
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {_format_value(self.after)}"
        if self.kind == "removed":
            return f"- {self.path}: {_format_value(self.before)}"
        return f"{self.path}: {_format_value(self.before)} → {_format_value(self.after)}"


def diff_versions(
    before: Mapping[str, Any], after: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> list[Change]:
    """What changed from ``before`` to ``after``: nested mappings by key, lists by position.

    ``ignore`` names top-level keys to leave out (e.g. ``version``, ``updatedAt``).
    Values of different types always differ (``True`` is not ``1``); ``1`` equals
    ``1.0`` (DynamoDB numbers).
    """
    kept_before = {k: v for k, v in before.items() if k not in ignore}
    kept_after = {k: v for k, v in after.items() if k not in ignore}
    return list(_diff_mapping("", kept_before, kept_after))


def _diff(path: str, before: Any, after: Any) -> Iterator[Change]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        yield from _diff_mapping(path, before, after)
    elif isinstance(before, list) and isinstance(after, list):
        yield from _diff_list(path, before, after)
    elif not _same(before, after):
        yield Change(path, "changed", before, after)


def _diff_mapping(
    path: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Iterator[Change]:
    for key in [*before, *(k for k in after if k not in before)]:
        sub = _key_path(path, str(key))
        if key not in after:
            yield Change(sub, "removed", before=before[key])
        elif key not in before:
            yield Change(sub, "added", after=after[key])
        else:
            yield from _diff(sub, before[key], after[key])


def _diff_list(path: str, before: list[Any], after: list[Any]) -> Iterator[Change]:
    for i in range(max(len(before), len(after))):
        sub = f"{path}[{i}]"
        if i >= len(after):
            yield Change(sub, "removed", before=before[i])
        elif i >= len(before):
            yield Change(sub, "added", after=after[i])
        else:
            yield from _diff(sub, before[i], after[i])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    return bool(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key_path(path: str, key: str) -> str:
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _format_value(value: Any, limit: int | None = _VALUE_LIMIT) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text
