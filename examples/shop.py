"""A small multi-tenant order service on the embedded engine.

Run it with ``make demo`` (or ``python -m examples.shop``). It creates the
tables, publishes orders for two tenants, shows a version conflict, drains the
command streams through the synchronizer and prints the read model.
Point it at another engine with ``CQRS_ENDPOINT_URL=http://127.0.0.1:8000``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from cqrs import (
    CommandInput,
    CommandPartialInput,
    Cqrs,
    InvokeContext,
    VersionConflictError,
)
from cqrs.core.records import Command

TABLES = Path(__file__).resolve().parent.parent / "tables"


class OrderLine(BaseModel):
    sku: str
    qty: int


class OrderAttributes(BaseModel):
    """Typed attributes: validated on publish, typed on read."""

    status: str = "open"
    lines: list[OrderLine] = []
    note: str | None = None
    priority: str = "normal"


class OrderAudit:
    """A custom projection: sees every order version once, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def up(self, command: Command[OrderAttributes]) -> None:
        self.seen.append(f"{command.tenant_code}/{command.code} v{command.version}")

    def down(self, command: Command[OrderAttributes]) -> None:
        self.seen.remove(f"{command.tenant_code}/{command.code} v{command.version}")


def order(tenant: str, code: str, version: int, **attributes: object) -> CommandInput:
    return CommandInput(
        pk=f"ORDER#{tenant}",
        sk=f"ORDER#{code}",
        code=code,
        name=f"Order {code}",
        tenant_code=tenant,
        type="ORDER",
        version=version,
        attributes=attributes,
    )


def main() -> None:
    app = Cqrs.from_env(
        endpoint_url=os.environ.get("CQRS_ENDPOINT_URL", "embedded"),
        tables_dir=os.environ.get("CQRS_TABLES_DIR", str(TABLES)),
        table_prefix=os.environ.get("CQRS_TABLE_PREFIX", "demo-shop-"),
    )
    print(f"== engine: {app.settings.endpoint_url or 'AWS'}; migrating tables")
    app.migrate(echo=lambda line: print("  " + line))

    audit = OrderAudit()
    orders = app.register("order", attributes=OrderAttributes, handlers=[audit])
    acme = InvokeContext(tenant_code="acme", user_id="alice", source_ip="127.0.0.1")
    globex = InvokeContext(tenant_code="globex", user_id="bob", source_ip="127.0.0.2")

    print("== publishing commands for two tenants")
    orders.commands.publish_async(order("acme", "A-1", 0, lines=[{"sku": "pen", "qty": 2}]), acme)
    orders.commands.publish_async(order("acme", "A-2", 0, lines=[{"sku": "ink", "qty": 1}]), acme)
    orders.commands.publish_async(order("globex", "G-1", 0, note="rush"), globex)
    v2 = orders.commands.publish_partial_update_async(
        CommandPartialInput(
            pk="ORDER#acme", sk="ORDER#A-1", version=1, attributes={"status": "paid"}
        ),
        acme,
    )
    print(f"  acme A-1 is at version {v2.version if v2 else '?'}")

    print("== a second writer based on the stale version 1 loses")
    try:
        orders.commands.publish_async(order("acme", "A-1", 1, note="late edit"), acme)
    except VersionConflictError as exc:
        print(f"  VersionConflictError: {exc} (expected={exc.expected}, actual={exc.actual})")

    behind = orders.data.get("ORDER#acme", "ORDER#A-1", context=acme)
    print(f"== before sync the read model is behind: {behind}")
    report = app.sync()
    print(f"== synced {report.records} stream record(s) in {report.batches} batch(es)")
    for tenant, ctx in (("acme", acme), ("globex", globex)):
        for row in orders.data.list_by_pk(f"ORDER#{tenant}", context=ctx).items:
            a = row.attributes
            print(
                f"  {tenant:<7} {row.code:<4} v{row.version} status={a.status:<5} "
                f"lines={[f'{line.sku}x{line.qty}' for line in a.lines]} note={a.note}"
            )
    print("== history of acme A-1")
    for h in orders.history.list("ORDER#acme", "ORDER#A-1", context=acme):
        print(f"  v{h.version} status={h.attributes.status} by {h.updated_by} at {h.updated_at}")
    found = orders.data.find_by_code("globex", "G-1", context=globex)
    print(f"== find_by_code('globex', 'G-1') -> {found.name if found else None}")
    print(f"== custom projection saw: {', '.join(audit.seen)}")


if __name__ == "__main__":
    main()
