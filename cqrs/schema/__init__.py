"""Which tables exist (:mod:`.definitions`) and bringing DynamoDB in line (:mod:`.provision`)."""

from __future__ import annotations

from .definitions import (
    CODE_INDEX,
    ENTITY_TABLE_KINDS,
    EntityTableKind,
    EntityTables,
    Schema,
    TableDefinition,
)

__all__ = [
    "CODE_INDEX",
    "ENTITY_TABLE_KINDS",
    "EntityTableKind",
    "EntityTables",
    "Schema",
    "TableDefinition",
]
