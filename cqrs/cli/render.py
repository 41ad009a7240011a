"""Tables and styled text with rich: in colour on a terminal, plain text otherwise.

Plain text (pipes, files, CI logs) is never wrapped and has no trailing spaces, so
each table row stays one greppable line.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from .diff import Change, format_value

#: Width of plain text: wide enough that no cell wraps.
PLAIN_WIDTH = 10_000

Cell = str | Text


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) of the moment; markup and highlighting off."""
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False)


def emit(renderables: Sequence[RenderableType], out: Console | None = None) -> None:
    """Print ``renderables`` one below the other: styled on a terminal, else :func:`plain`."""
    out = out if out is not None else console()
    if out.is_terminal:
        out.print(Group(*renderables))
    else:
        out.file.write(plain(*renderables))
        out.file.flush()


def plain(*renderables: RenderableType, width: int = PLAIN_WIDTH) -> str:
    """The text of ``renderables`` without styles, lines right-stripped, ending in ``\\n``."""
    buffer = io.StringIO()
    Console(
        file=buffer, width=width, color_system=None, highlight=False, markup=False, emoji=False
    ).print(Group(*renderables))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, header: bool = True) -> Table:
    """Left-aligned columns two spaces apart, no borders; a cell may hold several lines."""
    grid = Table(
        box=None,
        show_header=header,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold",
    )
    for name in headers:
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return grid


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """The plain lines of :func:`table`; a multi-line cell continues below itself."""
    return plain(table(headers, rows)).splitlines()


def change_text(change: Change) -> Text:
    """``str(change)``, coloured: additions green, removals red, old → new values."""
    if change.kind == "added":
        return Text(str(change), style="green")
    if change.kind == "removed":
        return Text(str(change), style="red")
    return Text.assemble(
        f"{change.path}: ",
        (format_value(change.before), "red"),
        " → ",
        (format_value(change.after), "green"),
    )
