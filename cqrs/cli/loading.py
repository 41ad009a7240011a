"""Which app a command works on: ``--app``, or built from the options and the environment.

Nothing here needs the ``cli`` extra.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigurationError

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..core.settings import Settings


@dataclass(frozen=True)
class Target:
    """The options every data command takes: where the tables are, or the app itself."""

    command: str
    endpoint_url: str | None = None
    tables_dir: Path | None = None
    prefix: str | None = None
    app: str | None = None


def load_user_app(spec: str) -> Cqrs:
    """``load_app(spec)`` for ``--app``, importable from the current folder as a script's
    modules are (the command line owns its process, so it may extend ``sys.path``)."""
    from ..app import load_app

    if "" not in sys.path:
        sys.path.insert(0, "")
    return load_app(spec, source="--app")


def app_for(target: Target) -> Cqrs:
    """The app ``target`` names: ``--app``, else built from the options and environment.

    Refuses the embedded engine: a command's tables would vanish when it exits.
    """
    from ..app import Cqrs

    if target.app:
        app = load_user_app(target.app)
        refuse_embedded(target, app.settings)
        return app
    settings = settings_for(target)
    refuse_embedded(target, settings)
    listing = settings.tables_dir / "cqrs.json"
    if not listing.is_file():
        raise ConfigurationError(
            f"no cqrs.json in {settings.tables_dir}/: pass --tables-dir DIR "
            "(or set CQRS_TABLES_DIR) to the folder holding it"
        )
    return Cqrs(settings)


def settings_for(target: Target) -> Settings:
    """:class:`~cqrs.core.settings.Settings` from the environment, overridden by the options."""
    from ..core.settings import Settings

    overrides: dict[str, Any] = {
        "endpoint_url": target.endpoint_url,
        "tables_dir": target.tables_dir,
        "table_prefix": target.prefix,
    }
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def refuse_embedded(target: Target, settings: Settings) -> None:
    """Raise :class:`~cqrs.core.errors.ConfigurationError` if ``settings`` use the embedded
    engine, naming where it came from (option, ``--app`` or environment)."""
    if not settings.embedded:
        return
    if target.endpoint_url == "embedded":
        source = "--endpoint-url embedded"
    elif target.app:
        source = f"the embedded engine of --app {target.app}"
    else:
        source = "CQRS_ENDPOINT_URL=embedded"
    raise ConfigurationError(
        f"cqrs {target.command} cannot use {source}: the in-process engine's tables vanish "
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
