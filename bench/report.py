"""Markdown output: one section (a table plus notes) per benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Section:
    """One benchmark's result table."""

    title: str
    headers: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The section as markdown: a heading, a table, then the notes as a list."""
        lines = [f"### {self.title}", "", _row(self.headers), _row(["---"] * len(self.headers))]
        lines += [_row(r) for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render(header: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole report."""
    return "\n".join(["\n".join(header) + "\n", *(s.markdown() for s in sections)])


def per(n: float, count: int, digits: int = 2) -> str:
    """``n / count`` formatted."""
    return f"{n / count:.{digits}f}"


def ops(by_op: dict[str, float], count: int) -> str:
    """``PutItem 1.00, UpdateItem 1.00`` (per command), largest first."""
    items = sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{op} {n / count:.2f}" for op, n in items if n) or "—"
