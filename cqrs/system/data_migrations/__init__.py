"""Versioned data migrations: ordered Python files applied once each, recorded in DynamoDB.

Schema evolution in an event-sourced store goes: add the attribute as optional
with a default, deploy the code that writes it, then *backfill* the existing
entities through commands (so the command log stays the truth and history
shows the change). A backfill is a migration::

    migrations/
      0001_order_priority.py
      0002_cat_owner.py

Each file has a module docstring (its description) and ``def up(ctx) -> None``.
Files are ordered by their numeric prefix; ``_helpers.py``-style files (leading
underscore) and non-Python files are ignored; any other ``.py`` file that does
not look like ``0001_short_name.py``, two files with the same number, a file
without a docstring or without ``up`` are a :class:`~cqrs.core.errors.ConfigurationError`
raised before anything runs.

:func:`run_migrations` reads the ids already applied from the ``<prefix>migrations``
table (one Query), then runs every other migration in order. After one
succeeds it is recorded (``{pk: "MIGRATION", sk: id, name, description,
appliedAt, durationMs}``, written only if absent). A migration that raises is
not recorded and stops the run: later ones do not run, and the next run starts
again at the failed one. Migrations must therefore be idempotent — a crash in
the middle of a backfill leaves it half done, and the rerun does it again.

Two runners at once: there is no lock. Both may run the same pending migration
(harmless when it is idempotent, as it must be anyway); the record is written
with ``attribute_not_exists(sk)``, so only the first to finish records it, and
the other stops with :class:`MigrationConflictError` instead of racing on
through the rest. Run migrations from one place (the deploy pipeline) to avoid
the duplicated work.

The package: :mod:`.discovery` (finding and validating files),
:mod:`.ledger` (the ``migrations`` table), :mod:`.context` (what ``up(ctx)``
gets), :mod:`.progress` (progress bars: a protocol and a plain default) and
:mod:`.runner` (:func:`run_migrations`). Everything public is
importable from ``cqrs.system.data_migrations``.
"""

from __future__ import annotations

from .context import Echo, MigrationContext
from .discovery import Migration, check_renames, discover
from .ledger import MIGRATION_PK, MIGRATIONS_TABLE, applied_ids, record
from .progress import LineProgress, ProgressBar, ProgressBars, line_progress, track
from .runner import (
    AppliedMigration,
    MigrationConflictError,
    MigrationFailedError,
    MigrationReport,
    default_directory,
    run_migrations,
)

__all__ = [
    "MIGRATIONS_TABLE",
    "MIGRATION_PK",
    "AppliedMigration",
    "Echo",
    "LineProgress",
    "Migration",
    "MigrationConflictError",
    "MigrationContext",
    "MigrationFailedError",
    "MigrationReport",
    "ProgressBar",
    "ProgressBars",
    "applied_ids",
    "check_renames",
    "default_directory",
    "discover",
    "line_progress",
    "record",
    "run_migrations",
    "track",
]
