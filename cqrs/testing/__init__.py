"""Testing kit: the pytest plugin (:mod:`.plugin`, fixtures ``cqrs_app``, ``drain``,
``server_app`` …), fault injection (:mod:`.faults`) and the atomic local moto server
(:mod:`.local_server`)."""

from __future__ import annotations

from .plugin import (
    ENGINE_ENV,
    REGION,
    RequestCounter,
    clear_table,
    counting,
    external_engine,
    free_port,
    make_test_app,
    migrated_app,
    stream_records,
    table_items,
)

__all__ = [
    "ENGINE_ENV",
    "REGION",
    "RequestCounter",
    "clear_table",
    "counting",
    "external_engine",
    "free_port",
    "make_test_app",
    "migrated_app",
    "stream_records",
    "table_items",
]
