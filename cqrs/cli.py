"""The ``cqrs`` command line: migrate, sync, and the deployment helpers."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .errors import CqrsError


def _app(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .app import Cqrs, load_app
    from .settings import Settings

    if getattr(args, "app", None):
        return load_app(args.app)
    overrides = {
        k: v
        for k, v in {
            "endpoint_url": getattr(args, "endpoint_url", None),
            "tables_dir": getattr(args, "tables_dir", None),
            "table_prefix": getattr(args, "prefix", None),
        }.items()
        if v is not None
    }
    return Cqrs(Settings(**overrides))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", help="DynamoDB endpoint ('embedded' for in-process moto)")
    p.add_argument("--tables-dir", type=Path, help="folder holding cqrs.json (default: tables)")
    p.add_argument("--prefix", help="table name prefix, e.g. dev-shop-")
    p.add_argument("--app", help="module:attribute of your Cqrs app (instead of the options)")


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create missing tables and fix drift, then run pending data migrations; print each step."""
    import traceback

    from .data_migrations import MigrationFailedError, default_directory, run_migrations

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
        print(f"cqrs: error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Feed every streamed table's new records through the synchronizer."""
    from .stream_reader import FileCheckpoints

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
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"sync: following {len(app.streamed_tables())} stream(s); Ctrl-C to stop", flush=True)
    follower.follow(stop, interval=args.interval)
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Recompute an entity's data and history from its command table."""
    app = _app(args)
    last = [-1]

    def progress(phase: str, done: int, total: int) -> None:
        if total and done * 20 // total != last[0]:  # every 5%
            last[0] = done * 20 // total
            print(f"\r  {phase}: {done}/{total}", end="", file=sys.stderr, flush=True)

    report = app.rebuild(args.entity, prune=args.prune, dry_run=args.dry_run, progress=progress)
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
    print(f"stuck: {stuck} stuck, {len(failures) - stuck} retrying")
    return 1 if stuck else 0


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
    parser = argparse.ArgumentParser(prog="cqrs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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

    from .deploy.cli import register as register_deploy
    from .devtools import register as register_devtools

    register_deploy(sub)
    register_devtools(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cqrs`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CqrsError as exc:
        print(f"cqrs: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
