"""The scheduled task sweep: ``cqrs.deploy.sweep.handler``, run by an EventBridge schedule.

:meth:`TaskService.sweep <cqrs.system.tasks.TaskService.sweep>` repairs one tenant's
stuck tasks (expired leases, lost stream records, unfinished fan-outs) and never runs
a task handler. This Lambda handler runs it for each tenant:

- the tenants the event names (``{"tenants": ["acme", "globex"]}``: the schedule's
  input when ``cqrs template --sweep-tenant`` lists them), or else
- every tenant with an unfinished task (CREATED, QUEUED, PROCESSING), found with one
  ``Scan`` of the tasks table filtered on status.

Cost: a scan reads the whole tasks table, and each tenant's sweep reads every task of
that tenant (a ``Query`` with a filter), so both cost read units in proportion to the
table's size, not to the number of stuck tasks. Keep finished tasks short-lived (TTL)
or name the tenants, and run the sweep every few minutes, not every few seconds.

``{"staleAfterSeconds": 300}`` in the event is passed on as ``stale_after``. The app
is the stream handler's (:func:`cqrs.aws.get_app`: ``CQRS_APP`` or the tables). A
tenant whose sweep fails does not stop the others; once every tenant had its turn the
invocation fails (:class:`~cqrs.core.errors.OperationalError`), so that Lambda's
``Errors`` metric and its retries of the asynchronous invocation see it. Sweeping
twice is harmless: every repair is a conditional write.

This module imports only the handler's needs (the app is built on first use).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import Cqrs

logger = logging.getLogger("cqrs.deploy.sweep")

#: The Lambda handler's import path.
HANDLER = "cqrs.deploy.sweep.handler"
#: The schedule's default: the task lease is 15 minutes (``lease_seconds`` 900), so a
#: crashed attempt is reclaimed at most 30 minutes after it started.
DEFAULT_SCHEDULE = "rate(15 minutes)"
DEFAULT_STALE_AFTER_SECONDS = 300


@dataclass
class SweepSummary:
    """What one scheduled sweep did, over every tenant it swept."""

    tenants: list[str]
    examined: int = 0
    writes: int = 0
    failed: dict[str, list[str]] = field(default_factory=dict)  # tenant -> its errors

    def as_dict(self) -> dict[str, object]:
        """The handler's JSON result."""
        return {
            "tenants": len(self.tenants),
            "examined": self.examined,
            "writes": self.writes,
            "failed": self.failed,
        }


def handler(event: Mapping[str, object] | None = None, context: object = None) -> dict[str, object]:
    """Lambda entry point of the schedule (``context``, Lambda's, is not used)."""
    from ..aws import get_app
    from ..core.errors import OperationalError

    summary = sweep(get_app(), event or {})
    logger.info("task sweep: %s", summary.as_dict())
    if summary.failed:
        raise OperationalError(
            f"task sweep failed for {len(summary.failed)} of {len(summary.tenants)} "
            f"tenant(s): {summary.failed}"
        )
    return summary.as_dict()


def sweep(app: Cqrs, event: Mapping[str, object]) -> SweepSummary:
    """Sweep the tenants ``event`` names, else every tenant with an unfinished task."""
    from ..core.context import SYSTEM

    named = _tenants(event)
    stale_after = _stale_after(event)
    summary = SweepSummary(named if named is not None else unfinished_tenants(app))
    for tenant in summary.tenants:
        try:
            report = app.tasks.sweep(tenant, stale_after=stale_after, context=SYSTEM)
        except Exception as exc:  # one tenant (a bad code, a denied table) never stops the rest
            logger.exception("task sweep of tenant %r failed", tenant)
            summary.failed[tenant] = [f"{type(exc).__name__}: {exc}"]
            continue
        summary.examined += report.examined
        summary.writes += report.writes
        if report.errors:
            summary.failed[tenant] = [f"{type(e).__name__}: {e}" for e in report.errors]
    return summary


def unfinished_tenants(app: Cqrs) -> list[str]:
    """Tenants with a CREATED, QUEUED or PROCESSING task: one filtered ``Scan``."""
    from ..store import one_of
    from ..system.tasks import TaskStatus
    from ..system.tasks.items import task_pk
    from ..system.tasks.records import Attr

    unfinished = (TaskStatus.CREATED, TaskStatus.QUEUED, TaskStatus.PROCESSING)
    table = app.schema.system_table("tasks")
    tenants: set[str] = set()
    for item in app.clients.store.scan(table, filter=one_of(Attr.STATUS, unfinished)):
        try:
            tenants.add(task_pk(str(item.get(Attr.PK)))[1])
        except Exception:
            logger.warning("tasks table item with a malformed pk %r skipped", item.get(Attr.PK))
    return sorted(tenants)


def _tenants(event: Mapping[str, object]) -> list[str] | None:
    tenants = event.get("tenants")
    if tenants is None:
        return None
    if isinstance(tenants, str) or not isinstance(tenants, Sequence):
        raise _bad_event(f"'tenants' must be a list of tenant codes, got {tenants!r}")
    if not all(isinstance(t, str) for t in tenants):
        raise _bad_event(f"'tenants' must be a list of tenant codes, got {tenants!r}")
    return [str(t) for t in tenants]


def _stale_after(event: Mapping[str, object]) -> float:
    value = event.get("staleAfterSeconds", DEFAULT_STALE_AFTER_SECONDS)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad_event(f"'staleAfterSeconds' must be a number >= 0, got {value!r}")
    return float(value)


def _bad_event(message: str) -> Exception:
    from ..core.errors import InvalidEventError

    return InvalidEventError(f"task sweep event: {message}")
