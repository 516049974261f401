"""Flow tests run on the real Prefect engine under the session's one test harness."""
from __future__ import annotations

import pytest

from tasks.resources import dispose_all
from tests.support import KHANZA_TEST_DB


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield


@pytest.fixture
def flow_env(monkeypatch, khanza, website_url):
    """Point the flows at the test databases. Flows read their settings from the environment once per run,
    as in production; the engines are closed afterwards so no pool outlives its test database."""
    monkeypatch.setenv("KHANZA_DB_NAME", KHANZA_TEST_DB)
    monkeypatch.setenv("WEBSITE_DB_URL", website_url)
    monkeypatch.setenv("KHANZA_RETRIES", "1")
    monkeypatch.setenv("KHANZA_RETRY_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("KHANZA_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("BOOKING_SAME_DAY_CUTOFF_HOUR", "")
    yield website_url
    dispose_all()
