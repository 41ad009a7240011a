"""The engine conformance cases on the moto server over HTTP (the ``moto_server`` fixture:
:class:`~cqrs.testing.local_server.LocalServer`, requests atomic).

With ``CQRS_TEST_ENDPOINT_URL`` set the ``moto_server`` fixture is that engine instead,
which ``test_conformance_engine.py`` covers: these are skipped then.
"""

from __future__ import annotations

import pytest

from cqrs.testing import external_engine
from cqrs.testing.conformance import EngineConformance
from cqrs.testing.engine import Engine, shared_engine

pytestmark = pytest.mark.skipif(
    external_engine() is not None,
    reason="CQRS_TEST_ENDPOINT_URL is set: test_conformance_engine.py runs on it",
)


class TestMotoServer(EngineConformance):
    """moto's server over HTTP, requests atomic: returns the item of a failed condition."""

    @pytest.fixture
    def engine(self, moto_server: str) -> Engine:
        return shared_engine(moto_server)
