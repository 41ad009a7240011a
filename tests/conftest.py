"""Shared fixtures: the cqrs pytest plugin (installed via entry point) plus test tables."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURE_TABLES = Path(__file__).parent / "fixtures" / "tables"


@pytest.fixture
def cqrs_tables_dir() -> Path:
    """Test entities: order and cat. Only cqrs.json, as an MBC project has it: the
    table templates come from the package."""
    return FIXTURE_TABLES
