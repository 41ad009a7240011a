"""Format templates: ``{token}`` / ``{token:width}`` placeholders, parsed and validated once.

See :mod:`cqrs.system.sequences` for the tokens. Anything malformed is an
:class:`~cqrs.core.errors.InvalidSequenceFormatError` naming the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ...core.errors import InvalidSequenceFormatError

DEFAULT_FORMAT = "{prefix}{no}{postfix}"
MAX_CODES = 5
_MAX_WIDTH = 32

#: Numeric tokens and their default widths.
NUMERIC_TOKENS: dict[str, int] = {
    "no": 1,
    "year": 4,
    "yy": 2,
    "month": 2,
    "day": 2,
    "fiscal_year": 4,
}
TEXT_TOKENS = frozenset(
    {"type", "prefix", "postfix", *(f"code{i}" for i in range(1, MAX_CODES + 1))}
)
_PLACEHOLDER = re.compile(r"([a-z_][a-z0-9_]*)(?::([0-9]+))?")


@dataclass(frozen=True)
class FormatToken:
    """One placeholder: the token's name and its width (``None``: the default)."""

    name: str
    width: int | None


Segment = str | FormatToken


@dataclass(frozen=True)
class SequenceFormat:
    """A parsed, validated format template (see :mod:`cqrs.system.sequences` for the syntax).

    Build one with :meth:`parse`; it raises :class:`InvalidSequenceFormatError`
    for anything malformed.
    """

    template: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, template: str) -> SequenceFormat:
        """Parse and validate ``template``."""
        if not isinstance(template, str):
            raise InvalidSequenceFormatError(
                f"format must be a string, got {type(template).__name__}"
            )
        return _parse(template)

    @property
    def tokens(self) -> frozenset[str]:
        """Names of the tokens the template uses."""
        return frozenset(s.name for s in self.segments if isinstance(s, FormatToken))

    def render(self, values: dict[str, str | int]) -> str:
        """Substitute ``values`` (every used token must be present)."""
        out: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                out.append(segment)
                continue
            value = values[segment.name]
            if isinstance(value, int):
                width = segment.width or NUMERIC_TOKENS[segment.name]
                out.append(f"{value:0{width}d}")
            else:
                out.append(value)
        return "".join(out)


@lru_cache(maxsize=256)
def _parse(template: str) -> SequenceFormat:
    segments: list[Segment] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch in "{}" and template.startswith(ch * 2, i):
            literal.append(ch)
            i += 2
        elif ch == "}":
            raise InvalidSequenceFormatError(
                f"format {template!r}: unmatched '}}' at position {i} (write '}}}}' for a brace)"
            )
        elif ch != "{":
            literal.append(ch)
            i += 1
        else:
            end = template.find("}", i + 1)
            if end < 0:
                raise InvalidSequenceFormatError(
                    f"format {template!r}: unclosed '{{' at position {i} (write '{{{{' for a brace)"
                )
            if literal:
                segments.append("".join(literal))
                literal = []
            segments.append(_token(template, template[i + 1 : end], i))
            i = end + 1
    if literal:
        segments.append("".join(literal))
    parsed = SequenceFormat(template, tuple(segments))
    if "no" not in parsed.tokens:
        raise InvalidSequenceFormatError(
            f"format {template!r} has no {{no}} token: every id it makes would be the same"
        )
    return parsed


def _token(template: str, body: str, position: int) -> FormatToken:
    """The token of the placeholder ``{body}`` found at ``position`` of ``template``."""
    match = _PLACEHOLDER.fullmatch(body)
    if match is None:
        raise InvalidSequenceFormatError(
            f"format {template!r}: bad placeholder {{{body}}} at position {position}; "
            "expected {token} or {token:width}"
        )
    name, width_text = match.group(1), match.group(2)
    if name not in NUMERIC_TOKENS and name not in TEXT_TOKENS:
        known = ", ".join(sorted([*NUMERIC_TOKENS, *TEXT_TOKENS]))
        raise InvalidSequenceFormatError(
            f"format {template!r}: unknown token {{{name}}} (known: {known})"
        )
    if width_text is None:
        return FormatToken(name, None)
    if name not in NUMERIC_TOKENS:
        raise InvalidSequenceFormatError(
            f"format {template!r}: {{{name}}} is text and takes no width"
        )
    width = int(width_text)
    if not 1 <= width <= _MAX_WIDTH:
        raise InvalidSequenceFormatError(
            f"format {template!r}: width of {{{name}}} must be 1..{_MAX_WIDTH}, got {width}"
        )
    return FormatToken(name, width)
