"""Fault-injection tests: real MariaDB behind a TCP proxy that refuses, drops or stalls, real website stores
(SQLite and PostgreSQL) and the real Prefect engine under the session's one test harness.

Run with your own database names so parallel test sessions on one machine do not collide:
    KHANZA_TEST_DB=khanza_sync_faults PG_TEST_DB=khanza_sync_faults PYTHONPATH=. .venv/bin/python -m pytest tests/faults -q -x
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from khanza_sync.settings import Settings, load_settings
from tests.support import KHANZA_TEST_DB
from tests.faults.proxy import FaultProxy
from website import store


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    """Flow tests run on the real Prefect engine under the session's one test harness."""
    yield


@pytest.fixture
def proxy():
    """A fault proxy in front of the real MariaDB; stopped (and its connections reset) after the test."""
    upstream = (os.environ.get("KHANZA_DB_HOST", "127.0.0.1"), int(os.environ.get("KHANZA_DB_PORT", "3306")))
    with FaultProxy(upstream, max_lifetime=240) as running:
        yield running


# Short everything: retries, backoff, timeouts, so faults show up in seconds and no run can hang.
FAST = {
    "KHANZA_RETRIES": "3",
    "KHANZA_RETRY_DELAY_SECONDS": "0.2",
    "KHANZA_CONNECT_TIMEOUT": "2",
    "KHANZA_READ_TIMEOUT": "3",
    "KHANZA_WRITE_TIMEOUT": "3",
    "KHANZA_LOCK_TIMEOUT_SECONDS": "10",
    "CLAIM_LEASE_SECONDS": "60",
}


@dataclass
class FaultEnv:
    """What a fault test needs: the pipeline's settings (pointing at the proxy), the website store, and a
    direct Khanza engine for checking (never through the proxy)."""

    proxy: FaultProxy
    khanza: Engine
    website_url: str
    web: Engine

    @property
    def settings(self) -> Settings:
        return load_settings()

    def configure(self, monkeypatch, **env) -> Settings:
        """Change pipeline settings (as env vars) for the rest of the test."""
        for key, value in env.items():
            monkeypatch.setenv(key.upper(), str(value))
        reset_pipeline_caches()
        return load_settings()


def reset_pipeline_caches() -> None:
    from tasks import resources

    resources.dispose_all()


@pytest.fixture
def fault_env(monkeypatch, khanza, proxy, website_url):
    """The pipeline configured by environment, as in production, with Khanza behind the proxy."""
    monkeypatch.setenv("KHANZA_DB_HOST", "127.0.0.1")
    monkeypatch.setenv("KHANZA_DB_PORT", str(proxy.port))
    monkeypatch.setenv("KHANZA_DB_NAME", KHANZA_TEST_DB)
    monkeypatch.setenv("KHANZA_DB_USER", os.environ.get("KHANZA_DB_USER", "root"))
    monkeypatch.setenv("KHANZA_DB_PASSWORD", os.environ.get("KHANZA_DB_PASSWORD", ""))
    monkeypatch.setenv("WEBSITE_DB_URL", website_url)
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    reset_pipeline_caches()
    web = store.make_engine(website_url)
    yield FaultEnv(proxy=proxy, khanza=khanza, website_url=website_url, web=web)
    web.dispose()
    reset_pipeline_caches()
    monkeypatch.undo()
