"""The engine conformance cases on ``CQRS_TEST_ENDPOINT_URL`` (CI: DynamoDB Local).

Marked ``engine``, so CI's DynamoDB Local run (``pytest -m engine``) includes them;
skipped when the variable is not set.
"""

from __future__ import annotations

import pytest

from cqrs.testing import ENGINE_ENV, external_engine
from cqrs.testing.conformance import EngineConformance
from cqrs.testing.engine import Engine, shared_engine

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(external_engine() is None, reason=f"{ENGINE_ENV} is not set"),
]


class TestExternalEngine(EngineConformance):
    """Any engine: DynamoDB Local sends no item back for a failed condition, and CI's
    build (2020) refuses empty strings."""

    conflict_returns_item = None
    stores_empty_strings = False

    @pytest.fixture
    def engine(self) -> Engine:
        endpoint = external_engine()
        assert endpoint is not None
        return shared_engine(endpoint)
