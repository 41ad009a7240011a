"""OpenTelemetry spans around sync, when the process uses OpenTelemetry; no-ops otherwise.

The synchronizer opens a ``cqrs.batch`` span per batch and a ``cqrs.project`` span per
command table projected in it (``cqrs.consume`` for other tables, e.g. tasks), with
the counts as attributes and an event per entity that failed (its key and version).
Spans go to the tracer ``opentelemetry.trace.get_tracer("cqrs")``.

``opentelemetry-api`` is never a dependency and never imported here: spans are opened
only once ``opentelemetry.trace`` is already loaded (by your tracer provider's setup,
or the OpenTelemetry Lambda layer), so a process without OpenTelemetry pays one
dictionary lookup per span and no import on its cold start. Without an SDK tracer
provider, OpenTelemetry's own spans are non-recording no-ops.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: Attribute values OpenTelemetry accepts (``None`` values are left out).
AttributeValue = str | int | float | bool | None


class _NoSpan:
    """What :func:`span` yields without OpenTelemetry: every call does nothing."""

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: object) -> None:
        return None

    def add_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None:
        return None


NO_SPAN: Any = _NoSpan()


def enabled() -> bool:
    """True when ``opentelemetry.trace`` is loaded in this process."""
    return sys.modules.get("opentelemetry.trace") is not None


@contextmanager
def span(name: str, **attributes: AttributeValue) -> Iterator[Any]:
    """A span named ``name`` (current span as parent) with ``attributes``; ``NO_SPAN``
    when OpenTelemetry is not in use. An exception escaping is recorded on the span."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        yield NO_SPAN
        return
    tracer = trace.get_tracer("cqrs")
    clean = {k: v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, attributes=clean) as current:
        yield current


def set_attributes(current: Any, **attributes: AttributeValue) -> None:
    """Set ``attributes`` on ``current`` (a span from :func:`span`) if it records."""
    if current is NO_SPAN or not current.is_recording():
        return
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key, value)


def add_event(current: Any, name: str, **attributes: AttributeValue) -> None:
    """Add the event ``name`` with ``attributes`` to ``current`` if it records."""
    if current is NO_SPAN or not current.is_recording():
        return
    current.add_event(name, {k: v for k, v in attributes.items() if v is not None})
