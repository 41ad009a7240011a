"""The Lambda zip: layout, exclusions and reproducibility (offline, with a fake installer).

``test_real_pip_build`` uses pip and the package registry; it runs only with
``CQRS_TEST_NETWORK=1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from cqrs.cli import main
from cqrs.core.errors import ConfigurationError
from cqrs.deploy import package as package_module
from cqrs.deploy.package import (
    InstallRequest,
    Printer,
    build_package,
    pip_install_command,
    pip_wheel_command,
)

REPO = Path(__file__).resolve().parents[1]
PROVIDED = ("boto3/", "botocore/", "s3transfer/", "jmespath/", "urllib3/", "dateutil/", "six.py")


def _dist(target: Path, name: str, files: dict[str, str]) -> None:
    """Install a fake distribution: its files plus a dist-info with a RECORD."""
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    dist_info = target / f"{name}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Name: {name}\nVersion: 1.0\n")
    record = [f"{p},sha256=x,1" for p in files]
    record += [f"{dist_info.name}/METADATA,,", f"{dist_info.name}/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")


def fake_installer(request: InstallRequest, echo: Printer) -> None:
    """Lay out what pip would: cqrs as from its wheel, dependencies, Lambda-provided ones."""
    shutil.copytree(
        REPO / "cqrs", request.target / "cqrs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "tables" / "templates", request.target / "cqrs/_tables/templates")
    _dist(request.target, "cqrs", {})
    _dist(request.target, "injector", {"injector/__init__.py": "", "injector/py.typed": ""})
    _dist(request.target, "boto3", {"boto3/__init__.py": "", "boto3/session.py": ""})
    _dist(request.target, "botocore", {"botocore/__init__.py": "", "botocore/data/x.json": "{}"})
    _dist(request.target, "s3transfer", {"s3transfer/__init__.py": ""})
    _dist(request.target, "urllib3", {"urllib3/__init__.py": ""})
    _dist(request.target, "python_dateutil", {"dateutil/__init__.py": ""})
    _dist(request.target, "six", {"six.py": ""})
    _dist(request.target, "jmespath", {"jmespath/__init__.py": "", "../bin/jp.py": ""})
    (request.target / "bin").mkdir(exist_ok=True)
    (request.target / "bin" / "jp.py").write_text("#!/usr/bin/env python\n")
    (request.target / "injector" / "__pycache__").mkdir()
    (request.target / "injector" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"")
    echo(f"fake install of {request.project_dir}")


def _build(tmp_path: Path, name: str = "lambda.zip") -> tuple[Path, list[str]]:
    messages: list[str] = []
    out = build_package(
        tmp_path / "build" / name,
        project_dir=REPO,
        tables_dir=REPO / "tables",
        installer=fake_installer,
        echo=messages.append,
    )
    return out, messages


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_zip_holds_cqrs_its_templates_and_the_tables(tmp_path: Path) -> None:
    out, _ = _build(tmp_path)
    names = _names(out)
    for required in (
        "cqrs/__init__.py",
        "cqrs/schema/definitions.py",
        "cqrs/deploy/template.py",
        "cqrs/_tables/templates/entity/command.json",
        "cqrs/_tables/templates/system/tasks.json",
        "injector/__init__.py",
        "tables/cqrs.json",
        "tables/templates/entity/data.json",
    ):
        assert required in names


def test_zip_drops_what_lambda_ships(tmp_path: Path) -> None:
    names = _names(_build(tmp_path)[0])
    for provided in PROVIDED:
        assert not [n for n in names if n.startswith(provided)], provided
    dist_infos = {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert dist_infos == {"cqrs-1.0.dist-info", "injector-1.0.dist-info"}
    assert not [n for n in names if n.startswith("bin/") or n.endswith(".pyc")]


def test_zip_is_reproducible(tmp_path: Path) -> None:
    first, _ = _build(tmp_path, "a.zip")
    second, _ = _build(tmp_path, "b.zip")
    assert first.read_bytes() == second.read_bytes()
    names = _names(first)
    assert names == sorted(names)
    with zipfile.ZipFile(first) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.testzip() is None


def test_progress_is_reported(tmp_path: Path) -> None:
    out, messages = _build(tmp_path)
    text = "\n".join(messages)
    assert "Python 3.12 on manylinux2014_x86_64" in text
    assert "boto3" in text and "python-dateutil" in text
    assert str(out) in messages[-1]


def test_a_package_without_cqrs_is_refused(tmp_path: Path) -> None:
    def installer(request: InstallRequest, echo: Printer) -> None:
        _dist(request.target, "injector", {"injector/__init__.py": ""})

    with pytest.raises(ConfigurationError, match="no cqrs/"):
        build_package(tmp_path / "x.zip", project_dir=REPO, installer=installer, echo=print)
    assert not (tmp_path / "x.zip").exists()


def test_a_tables_dir_without_cqrs_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cqrs\.json not found"):
        build_package(
            tmp_path / "x.zip",
            project_dir=REPO,
            tables_dir=tmp_path,
            installer=fake_installer,
            echo=print,
        )


def test_pip_commands_target_the_lambda_platform(tmp_path: Path) -> None:
    request = InstallRequest(REPO, tmp_path / "t", "3.12", "manylinux2014_aarch64")
    install = pip_install_command(request, tmp_path / "cqrs-0.1.0-py3-none-any.whl")
    assert install[:3] == [sys.executable, "-m", "pip"]
    for flag, value in (
        ("--target", str(tmp_path / "t")),
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.12"),
        ("--implementation", "cp"),
    ):
        assert install[install.index(flag) + 1] == value
    assert "--only-binary=:all:" in install
    assert install[-1].endswith(".whl")
    wheel = pip_wheel_command(REPO, tmp_path / "w")
    assert "--no-deps" in wheel and wheel[-1] == str(REPO)


def test_cli_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package_module, "pip_installer", fake_installer)
    monkeypatch.setenv("CQRS_TABLES_DIR", str(REPO / "tables"))
    out = tmp_path / "pkg.zip"
    assert main(["package", "--out", str(out), "--project-dir", str(REPO)]) == 0
    assert "tables/cqrs.json" in _names(out)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CQRS_TEST_NETWORK") != "1",
    reason="needs pip and the package registry: set CQRS_TEST_NETWORK=1",
)
def test_real_pip_build(tmp_path: Path) -> None:
    out = build_package(
        tmp_path / "lambda.zip", project_dir=REPO, tables_dir=REPO / "tables", echo=print
    )
    names = _names(out)
    assert "cqrs/_tables/templates/entity/command.json" in names
    assert "pydantic/__init__.py" in names
    assert [n for n in names if n.startswith("pydantic_core/") and "cpython-312" in n]
    assert [n for n in names if "x86_64-linux-gnu" in n]
    for provided in PROVIDED:
        assert not [n for n in names if n.startswith(provided)], provided
