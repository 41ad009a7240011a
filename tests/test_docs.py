"""The documentation site, the licence and the changelog.

The site (``mkdocs.yml``, ``docs/``) builds with ``--strict`` (any warning fails) with
the network cut off, documents every public name of ``cqrs``, loads nothing remote, and
its getting-started script prints what the page says it prints. ``make docs`` builds
the same site into ``build/site``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import cqrs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TIMEOUT = 300  # seconds; the build takes about 10

#: Runs mkdocs with every socket connection refused: the build must not need a network.
OFFLINE_MKDOCS = textwrap.dedent(
    """
    import socket, sys
    from mkdocs.__main__ import cli

    def refuse(self, address, *args, **kwargs):
        raise OSError(f"the docs build tried to connect to {address!r}")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = lambda address, *a, **k: refuse(None, address)
    sys.exit(cli(sys.argv[1:], prog_name="mkdocs"))
    """
)


# -- LICENSE and CHANGELOG -----------------------------------------------------------------


def test_license_is_mit_for_the_cqrs_authors() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert re.search(r"^Copyright \(c\) \d{4} cqrs authors$", text, re.MULTILINE)
    assert "Permission is hereby granted, free of charge" in text
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject


def test_changelog_keeps_a_changelog_and_names_the_current_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "Keep a Changelog" in text
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.MULTILINE)
    assert headings[0] == ("Unreleased", ""), "the Unreleased section comes first"
    versions = {name: rest for name, rest in headings}
    assert cqrs.__version__ in versions, f"no section for {cqrs.__version__}"
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", versions[cqrs.__version__])
    sections = set(re.findall(r"^### (\w+)$", text, re.MULTILINE))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


# -- mkdocs.yml ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    loaded: dict[str, Any] = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    return loaded


def _plugins(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in config.get("plugins", []):
        out.update(entry if isinstance(entry, dict) else {entry: {}})
    return out


def test_nothing_is_fetched_from_the_network(config: dict[str, Any]) -> None:
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] is False, "no Google Fonts"
    plugins = _plugins(config)
    assert not {"social", "material/social", "privacy", "material/privacy"} & set(plugins)
    python = plugins["mkdocstrings"]["handlers"]["python"]
    assert "import" not in python and "inventories" not in python, "no remote inventories"
    assert config["strict"] is True


def test_every_page_in_docs_is_in_the_nav(config: dict[str, Any]) -> None:
    def pages(nav: Any) -> set[str]:
        if isinstance(nav, str):
            return {nav}
        if isinstance(nav, list):
            return set().union(*(pages(n) for n in nav))
        if isinstance(nav, dict):
            return set().union(*(pages(v) for v in nav.values()))
        return set()

    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages(config["nav"]) == on_disk


# -- the reST → Markdown extension (docs/griffe_rst.py) --------------------------------------


@pytest.fixture(scope="module")
def rst() -> ModuleType:
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location("griffe_rst", DOCS / "griffe_rst.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roles_become_optional_cross_references(rst: ModuleType) -> None:
    paths = {
        "cqrs.core.errors.CqrsError": "cqrs.core.errors.CqrsError",
        "Cqrs.sync": "cqrs.app.Cqrs.sync",
        "TaskService.sweep": "cqrs.system.tasks.TaskService.sweep",
    }
    out = rst.convert(
        "See :class:`~cqrs.core.errors.CqrsError`, :meth:`Cqrs.sync`, :func:`helper()` "
        "and :meth:`the sweep <TaskService.sweep>`.",
        paths.get,  # the resolver: a role's target → its full path, or None
    )
    link = '<autoref identifier="{}" optional hover><code>{}</code></autoref>'
    assert link.format("cqrs.core.errors.CqrsError", "CqrsError") in out
    assert link.format("cqrs.app.Cqrs.sync", "Cqrs.sync") in out
    assert link.format("cqrs.system.tasks.TaskService.sweep", "the sweep") in out
    assert "<code>helper</code>" in out and "helper()" not in out  # unresolved: plain code
    assert ":class:" not in out and ":meth:" not in out and ":func:" not in out


def test_literal_blocks_become_fenced_code(rst: ModuleType) -> None:
    out = rst.convert("One item per task::\n\n    pk = 1\n      sk = 2\n\nAfter.")
    assert out.splitlines() == [
        "One item per task:",
        "",
        "```text",
        "pk = 1",
        "  sk = 2",
        "```",
        "",
        "After.",
    ]


def test_markdown_code_fences_are_left_alone(rst: ModuleType) -> None:
    text = "```python\nitems[::]  # :class:`X`\n====  ====\n- a\n  b::\n```"
    assert rst.convert(text) == text


def test_simple_tables_become_markdown_tables(rst: ModuleType) -> None:
    table = textwrap.dedent(
        """\
        =======  ==============
        ``{no}`` the counter
        ``{yy}`` two-digit year,
                 e.g. ``26``
        =======  ==============
        """
    )
    out = rst.convert(table)
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert rows == [
        "|  |  |",
        "|---|---|",
        "| ``{no}`` | the counter |",
        "| ``{yy}`` | two-digit year, e.g. ``26`` |",
    ]


def test_nested_lists_get_markdown_indentation(rst: ModuleType) -> None:
    out = rst.convert("- a\n  more a\n\n  - nested\n    more nested\n\nParagraph\n  kept")
    assert out.splitlines() == [
        "- a",
        "    more a",
        "",
        "    - nested",
        "        more nested",
        "",
        "Paragraph",
        "  kept",
    ]


# -- the build -------------------------------------------------------------------------------


def _inventory(site: Path) -> set[str]:
    """The object names in mkdocstrings' ``objects.inv`` (Sphinx inventory v2)."""
    header, _, body = (site / "objects.inv").read_bytes().partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2")
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_MKDOCS, "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "WARNING" not in log, log
    return out


@pytest.mark.slow
def test_the_site_builds_strict_and_offline(site: Path) -> None:
    assert (site / "index.html").is_file()
    for page in ("getting-started", "concepts", "reference/app", "reference/tasks"):
        assert (site / page / "index.html").is_file(), page


@pytest.mark.slow
def test_every_public_name_is_documented(site: Path) -> None:
    documented = _inventory(site)
    missing = []
    for name, module in cqrs._EXPORTS.items():
        value = getattr(cqrs, name)
        candidates = {f"cqrs.{module}.{name}"}
        qualname = getattr(value, "__qualname__", None)
        if qualname and getattr(value, "__module__", "").startswith("cqrs"):
            candidates.add(f"{value.__module__}.{qualname}")
        if not candidates & documented:
            missing.append(f"{name} (::: cqrs.{module})")
    assert missing == [], "add these modules to a page of docs/reference/"


@pytest.mark.slow
def test_pages_load_nothing_remote_and_show_no_rest(site: Path) -> None:
    remote = re.compile(r"<(?:link|script|img)\b[^>]*\b(?:href|src)=\"(?:https?:)?//", re.I)
    for page in site.rglob("*.html"):
        html = page.read_text()
        assert not remote.search(html), f"{page}: loads a remote asset"
        text = re.sub(r"<pre[\s\S]*?</pre>", "", html)  # code may show anything
        assert not re.search(r":(?:class|meth|func|mod|data|attr):`", text), f"{page}: a reST role"


@pytest.mark.slow
def test_the_getting_started_script_prints_what_the_page_says(tmp_path: Path) -> None:
    pytest.importorskip("moto", reason="the embedded extra is not installed")
    page = (DOCS / "getting-started.md").read_text()
    first = page.index("## A first service")
    script = re.search(r"```python\n(.*?)```", page[first:], re.DOTALL)
    shown = re.search(r"```text\n(.*?)```", page[first:], re.DOTALL)
    assert script and shown
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "cqrs.json").write_text('{"tables": ["order"]}')
    (tmp_path / "app.py").write_text(script[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CQRS_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        env={**env, "CQRS_ENDPOINT_URL": "embedded"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown[1]
