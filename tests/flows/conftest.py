"""Flow tests run on the real Prefect engine under the session's one test harness (tests/conftest.py)."""
from __future__ import annotations

import pytest

from tasks.resources import dispose_all
from tests.support import KHANZA_TEST_DB, set_flow_env


@pytest.fixture
def flow_env(monkeypatch, khanza, website_url):
    """Point the flows at the test databases. Flows read their settings from the environment once per run,
    as in production; the engines are closed afterwards so no pool outlives its test database."""
    set_flow_env(monkeypatch, KHANZA_DB_NAME=KHANZA_TEST_DB, WEBSITE_DB_URL=website_url, KHANZA_RETRIES=1,
                 KHANZA_RETRY_DELAY_SECONDS=0.1, KHANZA_CONNECT_TIMEOUT=2, BOOKING_SAME_DAY_CUTOFF_HOUR="")
    yield website_url
    dispose_all()
