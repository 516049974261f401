"""Fault-injection tests: real MariaDB behind a TCP proxy that refuses, drops or stalls, real website stores
(SQLite and PostgreSQL) and the real Prefect engine under the session's one test harness.

Run with your own database names so parallel test sessions on one machine do not collide:
    KHANZA_TEST_DB=khanza_sync_faults PG_TEST_DB=khanza_sync_faults .venv/bin/python -m pytest tests/faults -q -x
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from khanza_sync.settings import Settings, load_settings
from tasks.resources import dispose_all
from tests.faults import helpers
from tests.faults.invariants import Audit, audit
from tests.faults.proxy import FaultProxy
from tests.support import KHANZA_TEST_DB, insert_registrations, set_flow_env
from website import store


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
    "KHANZA_LOCK_TIMEOUT_SECONDS": "2",  # below the read timeout (settings refuse otherwise)
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
        set_flow_env(monkeypatch, **env)
        return load_settings()

    def insert(self, regs: list[dict]) -> list[str]:
        """Put `regs` on the website, pending; returns their ids."""
        insert_registrations(self.website_url, regs)
        return [r["id"] for r in regs]

    def rows(self, ids=None) -> dict[str, dict]:
        return helpers.rows_by_id(self.web, ids)

    def make_due(self) -> None:
        helpers.make_due(self.web)

    def visits(self) -> int:
        """How many visits (reg_periksa rows) Khanza holds."""
        return helpers.visit_count(self.khanza)

    def ledger(self):
        return helpers.ledger_frame(self.khanza)

    def audit(self, ids, **kwargs) -> Audit:
        return audit(self.khanza, self.web, ids, **kwargs)


@pytest.fixture
def fault_env(monkeypatch, khanza, proxy, website_url):
    """The pipeline configured by environment, as in production, with Khanza behind the proxy."""
    set_flow_env(monkeypatch, KHANZA_DB_HOST="127.0.0.1", KHANZA_DB_PORT=proxy.port, KHANZA_DB_NAME=KHANZA_TEST_DB,
                 KHANZA_DB_USER=os.environ.get("KHANZA_DB_USER", "root"),
                 KHANZA_DB_PASSWORD=os.environ.get("KHANZA_DB_PASSWORD", ""), WEBSITE_DB_URL=website_url, **FAST)
    web = store.make_engine(website_url)
    yield FaultEnv(proxy=proxy, khanza=khanza, website_url=website_url, web=web)
    web.dispose()
    dispose_all()
    monkeypatch.undo()
