"""Retention of superseded command versions: a ``ttl`` on version N-1 once N is written.

MBC's ``CommandService.updateTtl`` (``commands/command.service.ts``) gives the previous
version of a command the epoch second ``now + days * 86400``, ``days`` read by
``TtlService`` (``commands/ttl.service.ts``) from its master data table
(``<prefix>master-data``, ``pk = MASTER#<tenant>``, ``sk = TTL#<command table>``,
``attributes.days``); no row, no TTL. :class:`Retention` does the same when configured:
``default_days`` (``CQRS_COMMAND_TTL_DAYS``) for every command table, and MBC's row, when
``master_data_table`` is set (``CQRS_COMMAND_TTL_MASTER_DATA=1``), wins for its tenant
and table. Unconfigured, nothing is read or written.

Unlike MBC, the version keeps a ``ttl`` of its own (the entity's state), and the ``ttl``
written is marked (:data:`~cqrs.core.items.RETAINED`) so it is never read back as state:
history, gap filling, rebuild and ``duplicate`` ignore it. Costs, per publish of a version
≥ 2: one conditional ``UpdateItem`` (+ one ``GetItem`` of the master data row when it is
read). Retention is best effort: a failure is logged, the publish stands.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from ..core.errors import CqrsError
from ..core.items import RETAINED, CommandItem
from ..core.keys import add_version, tenant_of
from ..store import Conflict, Update, absent, present

if TYPE_CHECKING:
    from ..core.settings import Settings
    from ..store import Store

logger = logging.getLogger("cqrs.write.retention")

SECONDS_PER_DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Retention:
    """How long a superseded command version is kept (``None`` days: for ever)."""

    default_days: float | None = None
    #: MBC's master data table (``<prefix>master-data``); ``None``: its rows are not read.
    master_data_table: str | None = None
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Retention | None:
        """The retention ``settings`` configure, ``None`` when they configure none."""
        if settings is None:
            return None
        master = settings.table_prefix + "master-data" if settings.command_ttl_master_data else None
        if settings.command_ttl_days is None and master is None:
            return None
        return cls(settings.command_ttl_days, master)

    def days(self, store: Store, command_table: str, pk: str) -> float | None:
        """Days to keep a superseded version of ``pk`` in ``command_table``: MBC's master
        data row for the tenant and table when it is read and says so, else the default."""
        if self.master_data_table is not None:
            key = {"pk": f"MASTER#{tenant_of(pk)}", "sk": f"TTL#{command_table}"}
            row = store.get(self.master_data_table, key, attributes=("attributes",))
            attributes = row.get("attributes") if row else None
            if isinstance(attributes, dict) and attributes.get("days") is not None:
                return _positive(attributes["days"], key)
        return self.default_days

    def expires_at(self, days: float) -> int:
        """The ``ttl`` (epoch seconds) ``days`` from now, as MBC's ``calculateUnixTime``."""
        return math.floor(self.clock()) + math.floor(days * SECONDS_PER_DAY)

    def retire(self, store: Store, command_table: str, command: CommandItem) -> int | None:
        """Give the version before ``command`` its ``ttl``; returns it (``None``: none set).

        The version is left as it is when it is gone (expired already) or has a ``ttl`` of
        its own. Errors are logged, never raised: the publish has succeeded.
        """
        if command.version < 2:
            return None
        try:
            days = self.days(store, command_table, command.pk)
            if days is None:
                return None
            ttl = self.expires_at(days)
            key = {"pk": command.pk, "sk": add_version(command.base_sk, command.version - 1)}
            update = Update().set({"ttl": ttl, RETAINED: ttl})
            kept = present("pk") & absent("ttl")  # gone already, or a ttl of its own
            found = store.update(command_table, key, update, condition=kept)
        except CqrsError as exc:
            logger.warning("could not set the ttl of %s / %s: %s", command.pk, command.sk, exc)
            return None
        return None if isinstance(found, Conflict) else ttl


def _positive(value: object, key: object) -> float | None:
    """MBC's ``+days``: a positive number (or numeric text); anything else: no TTL."""
    try:
        days = float(value) if isinstance(value, (int, float, Decimal, str)) else math.nan
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        logger.warning("ignoring TTL days %r of %s: not a positive number", value, key)
        return None
    return days
