"""The engine conformance cases on in-process moto (the engine ``cqrs_app`` runs on)."""

from __future__ import annotations

import pytest

from cqrs.testing.conformance import EngineConformance
from cqrs.testing.engine import Engine, shared_engine


class TestInProcessMoto(EngineConformance):
    """moto's in-process mock: returns the item of a failed condition, like DynamoDB."""

    @pytest.fixture
    def engine(self) -> Engine:
        return shared_engine(None)
