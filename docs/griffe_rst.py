"""A griffe extension for the API reference: cqrs's docstrings are written in reST, the
site renders Markdown. At build time (nothing in ``cqrs`` changes) each docstring gets:

- Sphinx roles (``:class:`~cqrs.core.errors.CqrsError```, ``:meth:`.sweep```, ``:mod:`.models```)
  as optional cross-references: a link where the target is documented, code otherwise;
- ``text::`` literal blocks as fenced code blocks;
- simple tables (``=====  =====``) as Markdown tables;
- nested lists indented the way Markdown wants them (4 spaces a level, reST uses 2);
- ``#:`` comments above an attribute as its docstring, as Sphinx reads them.

Loaded by ``mkdocs.yml`` (``extensions: [docs/griffe_rst.py]``); ``tests/test_docs.py``
checks it on examples.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import griffe

#: A role target (``X``, ``X.y``, ``.mod``, ``a.b.C``) → its full path, or ``None``.
Resolver: TypeAlias = Callable[[str], "str | None"]

ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|mod|data|attr|exc|obj|const):`(?P<target>[^`]+)`"
)
LIST_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s")
TABLE_BORDER = re.compile(r"^=+(?:\s+=+)+\s*$")


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is None and obj.is_attribute:
                comment = _comment_docstring(obj)
                if comment:
                    obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, parent=obj)
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, _resolver(obj))


def _comment_docstring(obj: griffe.Object) -> str | None:
    """The ``#:`` comment lines right above an attribute (Sphinx's attribute docstrings)."""
    lines = obj.module.lines
    if not obj.lineno or not lines:
        return None
    found: list[str] = []
    i = obj.lineno - 2  # the line above, 0-based
    while i >= 0 and lines[i].strip().startswith("#:"):
        found.insert(0, lines[i].strip()[2:].strip())
        i -= 1
    return "\n".join(found) or None


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            yield from _walk(member)


def _resolver(obj: griffe.Object) -> Resolver:
    def resolve(target: str) -> str | None:
        if target.startswith("."):
            package = obj.module if obj.module.is_init_module else obj.module.parent
            base = package.path if package is not None else obj.module.path
            dots = len(target) - len(target.lstrip("."))
            parts = base.split(".")
            if dots > 1:
                parts = parts[: len(parts) - (dots - 1)]
            return ".".join([*parts, target.lstrip(".")])
        head, _, rest = target.partition(".")
        scope: griffe.Object | None = obj
        while scope is not None:
            try:
                found = scope.resolve(head)
            except (griffe.NameResolutionError, AttributeError):
                scope = scope.parent
                continue
            return f"{found}.{rest}" if rest else found
        return target if "." in target else None

    return resolve


def convert(text: str, resolve: Resolver = lambda target: None) -> str:
    """The Markdown of the reST docstring ``text``; ``resolve(target)`` gives a role's path."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    in_list = False
    fence: str | None = None  # inside a Markdown code fence: copied as it is
    while i < len(lines):
        line = lines[i]
        marker = re.match(r"\s*(`{3,}|~{3,})", line)
        if fence is not None or marker:
            if fence is None and marker:
                fence = marker[1]
            elif fence is not None and line.strip() == fence:
                fence = None
            out.append(line)
            i += 1
            continue
        if TABLE_BORDER.match(line):
            table, i = _table(lines, i)
            out.extend(_inline(row, resolve) for row in table)
            continue
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.lstrip().startswith(".."):
            block, end = _literal_block(lines, i + 1)
            if block is not None:
                lead = stripped[:-2].rstrip()
                if lead.strip():  # "text::" → "text:", "text ::" → "text"
                    colon = "" if stripped[:-2].endswith(" ") else ":"
                    out.append(_inline(lead + colon, resolve))
                out.extend(["", "```text", *block, "```"])
                i = end
                continue
        if line.strip():
            indent = len(line) - len(line.lstrip())
            if indent == 0:
                in_list = bool(LIST_ITEM.match(line))
            elif in_list:
                line = " " * (indent * 2) + line.lstrip()
        out.append(_inline(line, resolve))
        i += 1
    return "\n".join(out)


def _inline(line: str, resolve: Resolver) -> str:
    def role(match: re.Match[str]) -> str:
        target = match["target"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", target)
        short = target.startswith("~")
        if explicit:
            title, target = explicit["title"], explicit["target"]
        target = target.lstrip("~")
        if target.endswith("()"):
            target = target[:-2]
        if not explicit:
            title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        code = f"<code>{html.escape(title)}</code>"
        path = resolve(target)
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional hover>{code}</autoref>'

    return ROLE.sub(role, line)


def _literal_block(lines: list[str], start: int) -> tuple[list[str] | None, int]:
    """The indented block after a ``::`` line (dedented), and the index after it."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == start or i >= len(lines) or not lines[i].startswith((" ", "\t")):
        return None, start
    end = i
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "\t"))):
        end += 1
    while end > i and not lines[end - 1].strip():
        end -= 1
    return textwrap.dedent("\n".join(lines[i:end])).splitlines(), end


def _table(lines: list[str], start: int) -> tuple[list[str], int]:
    """A simple reST table from ``lines[start]`` (its top border) as a Markdown table."""
    border = lines[start]
    columns = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]
    rows: list[list[str]] = []
    header: list[str] | None = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if TABLE_BORDER.match(line):
            following = i + 1 < len(lines) and lines[i + 1].strip()
            if header is None and rows and following:
                header, rows = rows[0], rows[1:]  # the header rule
                i += 1
                continue
            i += 1
            break
        if not line.strip():
            i += 1
            continue
        cells = [
            line[begin : (columns[n + 1][0] if n + 1 < len(columns) else len(line))].strip()
            for n, (begin, _) in enumerate(columns)
        ]
        if rows and not cells[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
        i += 1
    head = header or [""] * len(columns)
    table = [_row(head), "|" + "|".join("---" for _ in columns) + "|"]
    table += [_row(r) for r in rows]
    return ["", *table, ""], i


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
