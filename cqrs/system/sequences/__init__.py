"""Atomic, formatted, rotating ID counters per tenant (business numbers like ``ORD-2026-000123``).

```python
ctx = InvokeContext(tenant_code="acme", user_id="u1")
n = app.sequences.next("acme", "ORD", rotate_by=RotateBy.YEARLY, fmt="ORD-{year}-{no:6}",
                       context=ctx)
n.formatted                                   # "ORD-2026-000123"
block = app.sequences.reserve("acme", "ORD", count=500, context=ctx)
```

Every call names a tenant and takes ``context``: the tenant's
:class:`~cqrs.core.context.InvokeContext`, or :data:`~cqrs.core.context.SYSTEM` for trusted
code acting on any tenant. Another tenant's context is a
:class:`~cqrs.core.errors.TenantMismatchError`, no context a
:class:`~cqrs.core.errors.MissingContextError`, both before any request.

Modules: :mod:`.formats` (templates), :mod:`.models` (numbers, blocks,
:class:`RotateBy`), :mod:`.periods` (time zone and fiscal year), :mod:`.records`
(the stored counter item, typed: the only module that spells its attribute names)
and :mod:`.service` (:class:`SequenceService`, ``app.sequences``). The errors
(:class:`InvalidSequenceFormatError`, :class:`InvalidSequenceItemError`) live in
:mod:`cqrs.core.errors` and are re-exported here.

Storage (the ``sequences`` system table)
----------------------------------------
One item per counter and period::

    pk = "SEQ#<tenantCode>"
    sk = "<typeCode>[#<code1>…#<code5>]#<rotateValue>"

The rotate value is part of the sort key, so a new period (year, fiscal year,
month, day) starts a new item and therefore a new counter at 1. Rotate values
are MBC's: ``none``, ``2026`` (yearly), ``2026`` (fiscal-yearly: the calendar
year the fiscal year starts in), ``202601`` (monthly), ``20260131`` (daily).
Yearly and fiscal-yearly values look alike, so do not use both rotations with
the same type code and codes.

Every number (and every block of :meth:`SequenceService.reserve`) costs exactly
**one** ``UpdateItem``::

    ADD seq :n  SET tenantCode = …, updatedAt = …, createdAt = if_not_exists(createdAt, …)
    ReturnValues = ALL_NEW

``ADD`` starts an absent counter from 0. There is no read-modify-write, so
concurrent callers never get the same number and the numbers of a period have no
gaps (unless a caller drops one it got). Alongside ``seq`` the item stores
``tenantCode``, ``typeCode``, ``codes``, ``rotateBy``, ``rotateValue``,
``createdAt`` (first issue), ``updatedAt`` and ``updatedBy`` (the context's
user; ``system`` for :data:`~cqrs.core.context.SYSTEM`).

Format templates
----------------
A template is text with ``{token}`` or ``{token:width}`` placeholders; write
``{{`` and ``}}`` for literal braces. ``width`` (1-32) zero-pads a numeric token
to at least that many digits; it never truncates. Tokens:

=================  ==========================================================
``{no}``           the counter; ``{no:6}`` → ``000123`` (required in every template)
``{year}``         four-digit year of ``issued_at`` (in the service time zone)
``{yy}``           two-digit year (``2026`` → ``26``)
``{month}``        month, two digits unless a width is given (``{month:1}`` → ``3``)
``{day}``          day of month, two digits unless a width is given
``{fiscal_year}``  the calendar year the fiscal year of ``issued_at`` starts in
``{type}``         the type code
``{code1}``…       the codes passed to the call (``{code1}`` … ``{code5}``)
``{prefix}``       the ``prefix`` argument (empty if not given)
``{postfix}``      the ``postfix`` argument (empty if not given)
=================  ==========================================================

Example: ``"{prefix}ORD-{year}-{no:6}{postfix}"`` → ``ORD-2026-000123``. The
default template is ``"{prefix}{no}{postfix}"``. Unknown tokens, malformed
braces, widths on text tokens, a missing ``{no}``, a ``{codeN}`` without an Nth
code, and a ``prefix``/``postfix`` argument the template does not use all raise
:class:`InvalidSequenceFormatError` before anything is written. So do tenant
codes, type codes and codes that break the key rules
(:class:`~cqrs.core.errors.InvalidKeyError`: empty, only whitespace, control
characters, ``#`` or ``@``).
"""

from __future__ import annotations

from ...core.errors import InvalidSequenceFormatError, InvalidSequenceItemError
from .formats import DEFAULT_FORMAT, MAX_CODES, SequenceFormat
from .models import RotateBy, SequenceBlock, SequenceNumber
from .periods import Calendar
from .service import MAX_RESERVE, SEQUENCE_PK_PREFIX, SequenceService

__all__ = [
    "DEFAULT_FORMAT",
    "MAX_CODES",
    "MAX_RESERVE",
    "SEQUENCE_PK_PREFIX",
    "Calendar",
    "InvalidSequenceFormatError",
    "InvalidSequenceItemError",
    "RotateBy",
    "SequenceBlock",
    "SequenceFormat",
    "SequenceNumber",
    "SequenceService",
]
