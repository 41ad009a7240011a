"""``cqrs dev``: a local DynamoDB + Streams engine with the synchronizer following it.

It starts moto's server on 127.0.0.1, creates the tables and follows every
stream through the synchronizer, so a service pointed at it
(``CQRS_ENDPOINT_URL``) sees its read model updated as it would on AWS. Each batch
of records it handles is printed as one short line.

Without ``--app`` the process has none of the service's handlers: commands are
projected into data and history (no custom projections), and tasks are left
QUEUED for a process that has their handlers (``TaskService.unhandled = "leave"``,
one warning per task type) instead of being failed with ``NoTaskHandlerError``
as Lambda would fail a task type nobody registered. With ``--app`` the user's app
runs as it would on Lambda.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from ..core.errors import ConfigurationError
from .errors import OK
from .loading import Target, load_user_app, settings_for, stop_on_signals
from .options import Prefix, TablesDir
from .progress import follow_printing

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..core.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
DEFAULT_INTERVAL = 0.25

AppFactory = Callable[[str], "Cqrs"]


def register(app: typer.Typer) -> None:
    """Add ``dev`` to ``app``."""
    app.command()(dev)


def dev(
    port: Annotated[
        int, typer.Option(metavar="PORT", help="port to listen on; 0 = any free port")
    ] = DEFAULT_PORT,
    tables_dir: TablesDir = None,
    prefix: Prefix = None,
    app_spec: Annotated[
        str | None,
        typer.Option(
            "--app",
            metavar="MODULE:ATTR",
            help="your Cqrs app, to run its custom projections (it must build its settings "
            "from the environment, e.g. Cqrs.from_env())",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(metavar="SECONDS", help="seconds between idle stream polls")
    ] = DEFAULT_INTERVAL,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="log every request the engine serves")
    ] = False,
) -> int:
    """Run a local DynamoDB + Streams engine with the synchronizer following it.

    Starts moto's server on 127.0.0.1, creates every table and feeds every stream
    through the synchronizer until Ctrl-C. Data lives in memory only. Without --app,
    tasks stay QUEUED (no handlers run here): pass --app to run them.
    """
    _configure_logging(verbose)
    settings = settings_for(Target("dev", tables_dir=tables_dir, prefix=prefix))
    factory = _env_app_factory(app_spec, tables_dir, prefix) if app_spec else None
    stop = threading.Event()
    with stop_on_signals(stop):
        run_dev(settings, stop, port=port, interval=interval, app_factory=factory, verbose=verbose)
    print("cqrs dev: stopped", flush=True)
    return OK


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
    server's); that app has no handlers, so it leaves tasks QUEUED. One line per
    batch handled is printed to ``out`` (stdout). ``ready`` is
    called with the endpoint URL once tables exist and the follower starts.
    ``app_factory(endpoint)`` builds the app instead (for ``--app``: its handlers
    run, and a task type it has no handler for fails, as on Lambda). The server is
    stopped before returning, also on errors. The engine's per-request log
    (werkzeug) is silenced unless ``verbose``.
    """
    stream = out or sys.stdout
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)
    server, endpoint = start_engine(port)
    try:
        app = app_factory(endpoint) if app_factory else _app_on(settings, endpoint)
        app.migrate(echo=lambda line: print(f"  {line}", file=stream))
        if app.clients.store.objects.ensure_bucket(app.settings.region):
            print(f"  created S3 bucket {app.settings.s3_bucket} (large attributes)", file=stream)
        banner = dev_banner(app, endpoint, interval, user_app=app_factory is not None)
        print(banner, file=stream, flush=True)
        if ready is not None:
            ready(endpoint)
        follow_printing(app, app.follower(), stop, interval, out=stream)
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


def dev_banner(app: Cqrs, endpoint: str, interval: float, *, user_app: bool = True) -> str:
    """What ``cqrs dev`` prints once ready: the endpoint and how to point a service at it.

    ``user_app``: the app is the user's (``--app``); if not, the banner says that no
    custom projection or task handler runs here.
    """
    s = app.settings
    tables = [d.name for d in app.schema.definitions()]
    prefix = s.table_prefix
    handlers = (
        []
        if user_app
        else [
            "  no --app: tasks stay QUEUED and custom projections don't run (none of your "
            "handlers are here); pass --app MODULE:ATTR to run them"
        ]
    )
    return "\n".join(
        [
            f"cqrs dev: DynamoDB + DynamoDB Streams (moto) at {endpoint}",
            f"  {len(tables)} table(s) in {s.region}, prefix {prefix!r}: {', '.join(tables)}",
            f"  following {len(app.streamed_tables())} stream(s) through the synchronizer "
            f"(polling every {interval:g} s when idle)",
            *handlers,
            "",
            "Point a service at it:",
            f"  export CQRS_ENDPOINT_URL={endpoint}",
            f"  export CQRS_TABLE_PREFIX={prefix}",
            f"  export AWS_REGION={s.region}",
            *(
                [f"  export CQRS_S3_BUCKET={s.s3_bucket}  # S3 at the same endpoint"]
                if s.s3_bucket
                else []
            ),
            "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local  # any values work",
            "",
            f"Inspect an entity: cqrs show <entity> <pk> <sk> --endpoint-url {endpoint}"
            + (f" --prefix {prefix}" if prefix else ""),
            "Data lives in memory only. Ctrl-C stops the engine and the follower.",
        ]
    )


def _app_on(settings: Settings, endpoint: str) -> Cqrs:
    """The app of ``cqrs dev`` without ``--app``: it has none of the service's handlers,
    so it leaves tasks QUEUED for a process that has them instead of failing them."""
    from ..app import Cqrs

    app = Cqrs(settings.model_copy(update={"endpoint_url": endpoint}))
    if "tasks" in app.schema.system_tables:
        app.tasks.unhandled = "leave"
    return app


def _env_app_factory(spec: str, tables_dir: Path | None, prefix: str | None) -> AppFactory:
    """Load the user's app with ``CQRS_ENDPOINT_URL`` (and the options) in the environment.

    The variables are set only while the app is imported and built (it reads its
    settings then), and the environment is restored right after.
    """

    def factory(endpoint: str) -> Cqrs:
        from unittest import mock

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
