"""The privacy scan runs real flows under the session's one Prefect test harness."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield
