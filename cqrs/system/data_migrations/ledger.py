"""The ``<prefix>migrations`` table: which migrations are applied, and recording one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...store.expressions import absent, equals

if TYPE_CHECKING:
    from ...app import Cqrs
    from ...core.items import Item
    from .discovery import Migration

#: Name of the system table holding the applied migrations (``<prefix>migrations``).
MIGRATIONS_TABLE = "migrations"
#: Partition key of every migration record.
MIGRATION_PK = "MIGRATION"


def applied_ids(app: Cqrs) -> list[str]:
    """Ids recorded in ``<prefix>migrations``, sorted (one Query per MB of records).

    A missing table raises :class:`~cqrs.core.errors.TableNotFoundError`.
    """
    table = app.schema.system_table(MIGRATIONS_TABLE)
    items = app.clients.store.query(
        table, equals("pk", MIGRATION_PK), consistent=True, attributes=("sk",)
    )
    return sorted(str(item["sk"]) for item in items)


def record(app: Cqrs, migration: Migration, applied_at: str, duration_ms: int) -> bool:
    """Record ``migration`` as applied; ``False`` if another runner already did.

    The record is written only if absent, so the first runner to finish keeps its own.
    """
    item: Item = {
        "pk": MIGRATION_PK,
        "sk": migration.id,
        "name": migration.name,
        "description": migration.description,
        "appliedAt": applied_at,
        "durationMs": duration_ms,
    }
    table = app.schema.system_table(MIGRATIONS_TABLE)
    return app.clients.store.put(table, item, condition=absent("sk")) is None
