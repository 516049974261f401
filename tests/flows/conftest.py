"""Flow tests run on the real Prefect engine under the session's one test harness."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield
