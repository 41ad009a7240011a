"""The ``cqrs`` command line: migrate, sync, and the deployment helpers.

Errors are one line on stderr, ``cqrs: error: <what went wrong and what to do>``.
Exit codes: 0 success, 1 a runtime failure (DynamoDB unreachable, tables missing,
stuck entities, any other :class:`~cqrs.core.errors.CqrsError`), 2 a usage error (bad
arguments or options, invalid settings, a bad ``--app``, an unknown entity, the
embedded engine where its data would vanish), 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

from ..core.errors import ConfigurationError, CqrsError, NetworkError, UnknownEntityError

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..core.settings import Settings

#: Exit codes.
OK, FAILURE, USAGE, INTERRUPTED = 0, 1, 2, 130

#: What each option overrides, for messages about invalid settings.
_OPTIONS = {
    "endpoint_url": "--endpoint-url / CQRS_ENDPOINT_URL",
    "tables_dir": "--tables-dir / CQRS_TABLES_DIR",
    "table_prefix": "--prefix / CQRS_TABLE_PREFIX",
    "region": "AWS_REGION",
    "time_zone": "CQRS_TIME_ZONE",
    "fiscal_start_month": "CQRS_FISCAL_START_MONTH",
    "sns_topic_arn": "CQRS_SNS_TOPIC_ARN",
    "sync_max_attempts": "CQRS_SYNC_MAX_ATTEMPTS",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` on one line and exit with :data:`USAGE`."""
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- errors ------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` on a single line: lines after a ``:`` continue it, others join with ``;``."""
    out = ""
    for line in (part.strip() for part in text.splitlines()):
        if line:
            out += line if not out else (" " if out.endswith(":") else "; ") + line
    return out


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the command was called wrongly (exit 2) rather than failed."""
    from pydantic import ValidationError

    return isinstance(exc, ConfigurationError | UnknownEntityError | ValidationError)


def report_error(exc: BaseException) -> int:
    """Print ``exc`` as one ``cqrs: error:`` line on stderr; return its exit code."""
    from pydantic import ValidationError

    message = settings_problem(exc) if isinstance(exc, ValidationError) else str(exc)
    if isinstance(exc, NetworkError):
        message += (
            " (is DynamoDB reachable? check --endpoint-url / CQRS_ENDPOINT_URL; "
            "`cqrs dev` runs a local engine)"
        )
    print(f"cqrs: error: {one_line(message)}", file=sys.stderr)
    return USAGE if is_usage_error(exc) else FAILURE


def settings_problem(exc: BaseException) -> str:
    """What is wrong in the settings of a pydantic ``ValidationError``, naming the option."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        where = _OPTIONS.get(field, field)
        problems.append(f"invalid {where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems) or str(exc)


# -- the app -----------------------------------------------------------------------


def load_user_app(spec: str) -> Cqrs:
    """``load_app(spec)`` for ``--app``, importable from the current folder as a script's
    modules are (the command line owns its process, so it may extend ``sys.path``)."""
    from ..app import load_app

    if "" not in sys.path:
        sys.path.insert(0, "")
    return load_app(spec, source="--app")


def _app(args: argparse.Namespace) -> Cqrs:
    """The app a command works on: ``--app``, else built from the options and environment.

    Refuses the embedded engine: a command's tables would vanish when it exits.
    """
    from ..app import Cqrs

    if getattr(args, "app", None):
        app = load_user_app(args.app)
        _refuse_embedded(args, app.settings)
        return app
    settings = _settings(args)
    _refuse_embedded(args, settings)
    listing = settings.tables_dir / "cqrs.json"
    if not listing.is_file():
        raise ConfigurationError(
            f"no cqrs.json in {settings.tables_dir}/: pass --tables-dir DIR "
            "(or set CQRS_TABLES_DIR) to the folder holding it"
        )
    return Cqrs(settings)


def _settings(args: argparse.Namespace) -> Settings:
    from ..core.settings import Settings

    overrides = {
        k: v
        for k, v in {
            "endpoint_url": getattr(args, "endpoint_url", None),
            "tables_dir": getattr(args, "tables_dir", None),
            "table_prefix": getattr(args, "prefix", None),
        }.items()
        if v is not None
    }
    return Settings(**overrides)


def _refuse_embedded(args: argparse.Namespace, settings: Settings) -> None:
    if not settings.embedded:
        return
    if getattr(args, "endpoint_url", None) == "embedded":
        source = "--endpoint-url embedded"
    elif getattr(args, "app", None):
        source = f"the embedded engine of --app {args.app}"
    else:
        source = "CQRS_ENDPOINT_URL=embedded"
    raise ConfigurationError(
        f"cqrs {args.command} cannot use {source}: the in-process engine's tables vanish "
        "when this command exits; run `cqrs dev` (a local engine that lives as long as it "
        "runs) and pass the --endpoint-url it prints"
    )


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM set ``stop``; the previous handlers come back after."""
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", help="DynamoDB endpoint URL, e.g. the one `cqrs dev` prints")
    p.add_argument("--tables-dir", type=Path, help="folder holding cqrs.json (default: tables)")
    p.add_argument("--prefix", help="table name prefix, e.g. dev-shop-")
    p.add_argument("--app", help="module:attribute of your Cqrs app (instead of the options)")


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create missing tables and fix drift, then run pending data migrations; print each step."""
    import traceback

    from ..system.data_migrations import MigrationFailedError, default_directory, run_migrations

    app = _app(args)
    changes = app.migrate(dry_run=args.dry_run, echo=print)
    verb = "would change" if args.dry_run else "changed"
    print(f"migrate: {verb} {len(changes)} thing(s) across {len(app.schema.definitions())} tables")
    directory = args.migrations_dir or default_directory(app.settings.tables_dir)
    try:
        run_migrations(app, directory, dry_run=args.dry_run, echo=print)
    except MigrationFailedError as exc:
        if exc.cause is not None:
            traceback.print_exception(exc.cause, file=sys.stderr)
        print(f"cqrs: error: {one_line(str(exc))}", file=sys.stderr)
        return FAILURE
    return OK


def cmd_sync(args: argparse.Namespace) -> int:
    """Feed every streamed table's new records through the synchronizer."""
    from ..sync.follower import FileCheckpoints

    app = _app(args)
    checkpoints = FileCheckpoints(args.checkpoints) if args.checkpoints else None
    follower = app.follower(checkpoints=checkpoints)
    if not args.follow:
        report = follower.drain()
        print(
            f"sync: {report.records} record(s) in {report.batches} batch(es), "
            f"{report.failed} failed"
        )
        return 1 if report.failed else 0
    stop = threading.Event()
    print(f"sync: following {len(app.streamed_tables())} stream(s); Ctrl-C to stop", flush=True)
    with stop_on_signals(stop):
        follower.follow(stop, interval=args.interval)
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Recompute an entity's data and history from its command table."""
    app = _app(args)
    app.schema.entity_tables(args.entity)  # unknown entity → UnknownEntityError, before anything
    last = [-1]

    def progress(phase: str, done: int, total: int) -> None:
        if total and done * 20 // total != last[0]:  # every 5%
            last[0] = done * 20 // total
            print(f"\r  {phase}: {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        report = app.rebuild(args.entity, prune=args.prune, dry_run=args.dry_run, progress=progress)
    finally:
        if last[0] >= 0:  # end the progress line (an error goes on a line of its own)
            print("", file=sys.stderr)
    verb = "would write" if args.dry_run else "wrote"
    print(
        f"rebuild {args.entity}: {report.commands} command(s), {report.entities} entit(ies); "
        f"{verb} {report.data_written} data row(s) and {report.history_written} history item(s)"
    )
    if report.skipped_newer:
        print(f"  {report.skipped_newer} data row(s) were already ahead of the log (left alone)")
    for table, pk, sk in report.orphans:
        action = "deleted" if args.prune and not args.dry_run else "not in the log (use --prune)"
        print(f"  orphan {table} {pk} / {sk}: {action}")
    return 0


def cmd_stuck(args: argparse.Namespace) -> int:
    """List entities whose sync keeps failing (stuck, or still being retried)."""
    app = _app(args)
    failures = app.sync_failures.failing(args.entity, tenant_code=args.tenant)
    for f in failures:
        state = "STUCK" if f.stuck else "retrying"
        waiting = f.waiting_through - f.failed_version
        print(
            f"{state:8} {f.entity} {f.pk} / {f.sk}: version {f.failed_version} failed "
            f"{f.attempts}x since {f.first_failed_at} (data at {f.data_version}, "
            f"{waiting} version(s) waiting): {f.error}"
        )
    stuck = sum(1 for f in failures if f.stuck)
    rejected = _print_rejected(app, args.entity)
    print(f"stuck: {stuck} stuck, {len(failures) - stuck} retrying, {rejected} rejected record(s)")
    return 1 if stuck or rejected else 0


def _print_rejected(app: Cqrs, entity: str | None) -> int:
    """List the stream records sync rejected (of ``entity``'s command table, if given)."""
    table = app.schema.entity_tables(entity).command if entity else None
    kept = app.sync_failures.rejected_records.list(table)
    for r in kept:
        where = f"{r.pk} / {r.sk}" if r.pk or r.sk else "(no key)"
        print(
            f"REJECTED {r.table or '-'} record {r.sequence_number or '-'} {where} "
            f"at {r.rejected_at}: {r.reason}"
        )
    return len(kept)


def cmd_redrive(args: argparse.Namespace) -> int:
    """Re-apply stuck entities from their data version, once the cause is fixed."""
    if not args.app and not args.without_handlers:
        print(
            "cqrs: error: redrive runs your DataSyncHandlers: pass --app module:attribute "
            "(or --without-handlers if the entity has none)",
            file=sys.stderr,
        )
        return 2
    app = _app(args)
    results = app.sync_failures.redrive(args.entity, pk=args.pk, sk=args.sk)
    for r in results:
        f = r.failure
        if r.ok:
            print(f"redriven {f.pk} / {f.sk}: applied through version {r.applied_through}")
        else:
            print(f"still failing {f.pk} / {f.sk} at version {f.failed_version}: {r.error}")
    failed = sum(1 for r in results if not r.ok)
    print(f"redrive {args.entity}: {len(results) - failed} redriven, {failed} still failing")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cqrs`` command."""
    from .. import __version__

    parser = _Parser(
        prog="cqrs",
        description="CQRS and event sourcing on DynamoDB: tables, sync, and local tools.",
    )
    parser.add_argument("--version", action="version", version=f"cqrs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "migrate", help="create/update every table defined in tables/, then run data migrations"
    )
    _add_common(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print table changes and pending migrations; change and run nothing",
    )
    p.add_argument(
        "--migrations-dir",
        type=Path,
        help="folder of NNNN_name.py data migrations (default: migrations/ beside the tables dir)",
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("sync", help="feed table streams through the synchronizer")
    _add_common(p)
    p.add_argument("--follow", action="store_true", help="keep following until Ctrl-C")
    p.add_argument("--interval", type=float, default=0.25, help="seconds between idle polls")
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=Path(".cqrs/checkpoints.json"),
        help="checkpoint file (per stream ARN and shard)",
    )
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("rebuild", help="recompute an entity's data and history from its commands")
    p.add_argument("entity", help="entity name, as listed in cqrs.json")
    _add_common(p)
    p.add_argument(
        "--prune", action="store_true", help="delete rows the command log does not imply"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would change, change nothing"
    )
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("stuck", help="list entities whose sync keeps failing (exit 1 if stuck)")
    p.add_argument("entity", nargs="?", help="entity name (default: every entity)")
    p.add_argument("--tenant", help="only this tenant code")
    _add_common(p)
    p.set_defaults(func=cmd_stuck)

    p = sub.add_parser("redrive", help="re-apply stuck entities once the cause is fixed")
    p.add_argument("entity", help="entity name, as listed in cqrs.json")
    p.add_argument("--pk", help="only entities with this pk")
    p.add_argument("--sk", help="only the entity with this sk (with --pk)")
    p.add_argument(
        "--without-handlers",
        action="store_true",
        help="redrive with no DataSyncHandlers (only when the entity has none)",
    )
    _add_common(p)
    p.set_defaults(func=cmd_redrive)

    from ..deploy.cli import register as register_deploy
    from .devtools import register as register_devtools

    plain = cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub)
    register_deploy(plain)
    register_devtools(plain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cqrs`` console script; returns the exit code (see the module)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (OK if exc.code is None else USAGE)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("cqrs: interrupted", file=sys.stderr)
        return INTERRUPTED
    except CqrsError as exc:
        return report_error(exc)
    except Exception as exc:
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):  # settings from options or the environment
            return report_error(exc)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
