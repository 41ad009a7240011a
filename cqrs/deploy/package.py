"""Build the Lambda deployment zip: cqrs, the project's code, its dependencies, its tables.

:func:`build_package` installs a project (by default with pip, for the Lambda
platform: ``--platform manylinux2014_x86_64 --only-binary=:all:``) into a
staging folder, drops the distributions the Lambda Python runtime already ships
(boto3, botocore, s3transfer, jmespath, urllib3, python-dateutil, six), copies
the project's ``cqrs.json`` (and table templates, if any) to ``tables/``, and
writes a reproducible zip: sorted entries, fixed timestamps, fixed permissions.

The installer is injectable (:data:`Installer`) so the layout can be built and
tested without a package registry.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigurationError, OperationalError

#: Where the project's ``cqrs.json`` goes inside the zip (``CQRS_TABLES_DIR``).
PACKAGED_TABLES_DIR = "tables"
#: Where the cqrs wheel puts its bundled table templates.
BUNDLED_TEMPLATES_DIR = "cqrs/_tables/templates"
DEFAULT_PLATFORM = "manylinux2014_x86_64"
DEFAULT_PYTHON_VERSION = "3.12"
#: Distributions the Lambda Python runtime provides (normalized names).
LAMBDA_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
#: Lambda's limit on the unzipped size of a function and its layers.
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

Printer = Callable[[str], None]


@dataclass(frozen=True)
class InstallRequest:
    """What to install where: ``project_dir`` and its dependencies into ``target``."""

    project_dir: Path
    target: Path
    python_version: str
    platform: str


#: Installs ``request.project_dir`` and its runtime dependencies into ``request.target``.
Installer = Callable[[InstallRequest, Printer], None]


def build_package(
    out: Path,
    *,
    project_dir: Path,
    tables_dir: Path | None = None,
    python_version: str = DEFAULT_PYTHON_VERSION,
    platform: str = DEFAULT_PLATFORM,
    installer: Installer | None = None,
    echo: Printer = print,
) -> Path:
    """Build the Lambda zip at ``out`` and return its path.

    ``tables_dir`` (holding ``cqrs.json``) is copied to ``tables/`` in the zip,
    where the template's ``CQRS_TABLES_DIR`` points. ``installer`` defaults to
    :func:`pip_installer`, which needs the package registry. Raises
    :class:`~cqrs.core.errors.ConfigurationError` if the result lacks cqrs or its
    table templates or exceeds Lambda's size limit, and
    :class:`~cqrs.core.errors.OperationalError` if pip fails.
    """
    install = installer or pip_installer
    with tempfile.TemporaryDirectory(prefix="cqrs-package-") as tmp:
        staging = Path(tmp) / "package"
        staging.mkdir()
        echo(f"installing {project_dir} for Python {python_version} on {platform}")
        install(InstallRequest(Path(project_dir), staging, python_version, platform), echo)
        removed = remove_distributions(staging, LAMBDA_PROVIDED)
        if removed:
            echo(f"dropped (provided by the Lambda runtime): {', '.join(removed)}")
        _prune(staging)
        if tables_dir is not None:
            copy_tables(Path(tables_dir), staging / PACKAGED_TABLES_DIR)
            echo(f"added {tables_dir} as {PACKAGED_TABLES_DIR}/")
        _check_layout(staging)
        count, size = write_zip(staging, Path(out))
    if size > MAX_UNZIPPED_BYTES:
        raise ConfigurationError(
            f"{out} unzips to {size / 2**20:.1f} MiB, over Lambda's 250 MiB limit"
        )
    echo(f"wrote {out}: {count} files, {size / 2**20:.1f} MiB unzipped")
    return Path(out)


def pip_installer(request: InstallRequest, echo: Printer) -> None:
    """Install the project with pip for the Lambda platform (needs the registry).

    The project is first built into a wheel (pure Python; build isolation may
    fetch its build backend), then the wheel and its dependencies are installed
    with ``--only-binary=:all:`` for ``request.platform`` and ``request.python_version``.
    """
    with tempfile.TemporaryDirectory(prefix="cqrs-wheel-") as wheels:
        _run("pip wheel", pip_wheel_command(request.project_dir, Path(wheels)), echo)
        built = sorted(Path(wheels).glob("*.whl"))
        if len(built) != 1:
            raise OperationalError(f"expected one wheel from {request.project_dir}, got {built}")
        _run("pip install", pip_install_command(request, built[0]), echo)


def pip_wheel_command(project_dir: Path, wheel_dir: Path) -> list[str]:
    """The pip command building the project's own wheel (without dependencies)."""
    return [
        *_pip(),
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(wheel_dir),
        str(project_dir),
    ]


def pip_install_command(request: InstallRequest, wheel: Path) -> list[str]:
    """The pip command installing ``wheel`` and its dependencies for the Lambda platform."""
    return [
        *_pip(),
        "install",
        "--target",
        str(request.target),
        "--platform",
        request.platform,
        "--implementation",
        "cp",
        "--python-version",
        request.python_version,
        "--only-binary=:all:",
        "--no-compile",
        "--upgrade",
        str(wheel),
    ]


def remove_distributions(site: Path, names: Iterable[str]) -> list[str]:
    """Delete the installed distributions ``names`` from ``site``; return those removed.

    Files are found through each distribution's ``RECORD``, so modules outside
    a same-named folder (``six.py``) go too.
    """
    wanted = {_normalize(n) for n in names}
    removed: list[str] = []
    for dist_info in sorted(site.glob("*.dist-info")):
        name = _normalize(dist_info.name.partition("-")[0])
        if name not in wanted:
            continue
        for path in _recorded_files(site, dist_info):
            path.unlink(missing_ok=True)
        shutil.rmtree(dist_info, ignore_errors=True)
        removed.append(name)
    _remove_empty_dirs(site)
    return removed


def copy_tables(tables_dir: Path, dest: Path) -> None:
    """Copy ``cqrs.json`` and any ``templates/**/*.json`` from ``tables_dir`` to ``dest``."""
    listing = tables_dir / "cqrs.json"
    if not listing.is_file():
        raise ConfigurationError(f"{listing} not found: point --tables-dir at the folder with it")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(listing, dest / "cqrs.json")
    for template in sorted((tables_dir / "templates").glob("**/*.json")):
        target = dest / template.relative_to(tables_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)


def write_zip(root: Path, out: Path) -> tuple[int, int]:
    """Zip every file under ``root`` reproducibly; return (file count, unzipped bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()
    )
    size = 0
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            data = path.read_bytes()
            archive.writestr(_zip_info(path.relative_to(root).as_posix(), path), data)
            size += len(data)
    os.replace(partial, out)
    return len(files), size


def _zip_info(arcname: str, path: Path) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the permission bits below are honoured
    mode = 0o755 if os.access(path, os.X_OK) else 0o644
    info.external_attr = (0o100000 | mode) << 16
    return info


def _check_layout(staging: Path) -> None:
    if not (staging / "cqrs" / "__init__.py").is_file():
        raise ConfigurationError(
            "the package has no cqrs/: the project must install the cqrs package"
        )
    bundled = staging / BUNDLED_TEMPLATES_DIR
    own = staging / PACKAGED_TABLES_DIR / "templates"
    if not bundled.is_dir() and not own.is_dir():
        raise ConfigurationError(
            f"the package has no table templates: expected {BUNDLED_TEMPLATES_DIR} "
            "(install cqrs from a wheel) or tables/templates in --tables-dir"
        )


def _prune(site: Path) -> None:
    # Console scripts (pip --target puts them in bin/) and bytecode are of no use in Lambda.
    shutil.rmtree(site / "bin", ignore_errors=True)
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    for compiled in site.rglob("*.pyc"):
        compiled.unlink(missing_ok=True)


def _recorded_files(site: Path, dist_info: Path) -> list[Path]:
    record = dist_info / "RECORD"
    if not record.is_file():
        return []
    root = site.resolve()
    paths = []
    with record.open(newline="") as rows:
        for row in csv.reader(rows):
            if not row or not row[0]:
                continue
            path = (site / row[0]).resolve()
            if path.is_relative_to(root) and path != root:
                paths.append(path)
    return paths


def _remove_empty_dirs(site: Path) -> None:
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def _run(label: str, command: Sequence[str], echo: Printer) -> None:
    echo("$ " + " ".join(command))
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise OperationalError(f"{label} failed with exit code {result.returncode}")
