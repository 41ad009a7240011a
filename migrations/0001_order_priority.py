"""Give every order attributes.priority = "normal" when it has none.

Orders now carry a priority (optional, default "normal", in the attributes
model); code deployed with it writes one on every new order. This backfills the
orders written before: one partial-update command per order missing it, so the
command log stays the truth and each order's history shows the new version.
Orders that already have a priority (any value) are left alone, which makes the
migration idempotent: a run that crashed half way can simply be rerun.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cqrs import CommandPartialInput, VersionConflictError
from cqrs.core.keys import tenant_of
from cqrs.system.data_migrations import MigrationContext

ENTITY = "order"
DEFAULT_PRIORITY = "normal"


def up(ctx: MigrationContext) -> None:
    """Backfill ``priority`` on every order of every tenant."""
    updated = kept = 0
    rows = ctx.scan_data(ENTITY)  # every tenant: a paginated Scan of order-data
    for row in ctx.progress(rows, total=ctx.estimate_rows(ENTITY), label="order priority"):
        if _has_priority(row):
            kept += 1
        elif ctx.dry_run or _backfill(ctx, row):
            updated += 1
        else:
            kept += 1  # a newer command already carried a priority
    verb = "would set" if ctx.dry_run else "set"
    ctx.echo(f"  {verb} priority on {updated} order(s); {kept} already had one")


def _has_priority(item: Mapping[str, Any]) -> bool:
    return "priority" in (item.get("attributes") or {})


def _backfill(ctx: MigrationContext, row: Mapping[str, Any]) -> bool:
    """Publish ``priority`` on top of the version the row shows; True if a command was written.

    Basing the command on the row's version (not -1, "whatever is latest") means
    a newer command the data row does not show yet -- say one that set
    priority "high" -- makes this write fail with a version conflict instead of
    overwriting it. Then the latest command decides.
    """
    pk, sk = row["pk"], row["sk"]
    commands = ctx.app.entity(ENTITY).commands
    current: Mapping[str, Any] | None = row
    while current is not None and not _has_priority(current):
        try:
            written = commands.publish_partial_update_async(
                CommandPartialInput(
                    pk=pk,
                    sk=sk,
                    version=int(current["version"]),
                    attributes={"priority": DEFAULT_PRIORITY},
                ),
                ctx.invoke_context(tenant_of(pk)),
            )
            if written is None:  # "not dirty": the attributes model dropped the new field
                raise RuntimeError(
                    f"{pk} / {sk}: publishing priority changed nothing; add "
                    f'`priority: str = "{DEFAULT_PRIORITY}"` to the order attributes model first'
                )
            return True
        except VersionConflictError:
            current = ctx.latest_command(ENTITY, pk, sk)  # the row was behind the log
    return False
