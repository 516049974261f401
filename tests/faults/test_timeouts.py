"""No run hangs: a stalled Khanza or a stalled website database ends the run within seconds (short test
timeouts), Failed with a message naming the database, and releases the Khanza write slot (Prefect global
concurrency limit) and the MariaDB named lock, so the next run takes them and finishes the work.

Real faults: the TCP fault proxy in front of MariaDB (tests/faults/proxy.py) and the same proxy in front of the
website's PostgreSQL or MariaDB (raw bytes, `RawProxy`), plus a SQLite file another writer keeps locked.
"""
from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from khanza.locks import lock_name
from tests.faults.helpers import assert_all_synced, completed_run, registrations, run_sync
from tests.faults.proxy import FaultProxy
from tests.support import KHANZA_TEST_DB

BOUND_SECONDS = 30  # every faulty run below must end well within this
WEBSITE_FAST = {"WEBSITE_CONNECT_TIMEOUT": 1, "WEBSITE_STATEMENT_TIMEOUT_SECONDS": 1}


class RawProxy(FaultProxy):
    """The fault proxy for any TCP protocol (here PostgreSQL's): bytes are forwarded as they come, held while
    stalled; the MySQL packet parsing (query counting, triggers) is left out."""

    def _from_client(self, link, data: bytes) -> None:
        self._hold_or_forward(link, data)


@pytest.fixture
def pg_proxy(website_url):
    """The raw fault proxy in front of the website's database server (PostgreSQL, or MariaDB)."""
    url = make_url(website_url)
    with RawProxy((url.host or "127.0.0.1", url.port or 5432), max_lifetime=240) as running:
        yield running


def proxied(url: str, proxy: FaultProxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def timed_run(**params):
    started = time.monotonic()
    state = run_sync(**params)
    return state, time.monotonic() - started


def failed_fast_as_stalled(fault_env, what: str):
    """A run against the stalled database `what`: it ends Failed within BOUND_SECONDS, its message says the
    database stalled (or did not answer), and it released the slot and the lock. Returns its final state."""
    state, elapsed = timed_run()
    assert elapsed < BOUND_SECONDS, f"{what} held the run for {elapsed:.0f}s"
    assert state.is_failed(), state.message
    assert "stalled" in state.message or "did not answer" in state.message, state.message
    assert_released(fault_env)
    return state


def assert_released(fault_env) -> None:
    """The write slot and the numbering lock are free again (a following run can take both)."""
    from prefect import get_client

    with fault_env.khanza.connect() as conn:
        assert conn.execute(text("SELECT IS_FREE_LOCK(:n)"), {"n": lock_name(KHANZA_TEST_DB)}).scalar() == 1
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(fault_env.settings.khanza_concurrency_limit)
        except ObjectNotFound:  # a run that failed before taking the slot never created the limit (first test)
            return
    assert limit.active_slots == 0


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_stalled_khanza_fails_fast_naming_khanza_and_releases(fault_env, monkeypatch):
    fault_env.configure(monkeypatch, KHANZA_RETRIES=1, KHANZA_RETRY_DELAY_SECONDS=0.1, KHANZA_CONNECT_TIMEOUT=1,
                        KHANZA_READ_TIMEOUT=2, KHANZA_WRITE_TIMEOUT=1, KHANZA_LOCK_TIMEOUT_SECONDS=1)
    ids = fault_env.insert(registrations(6, prefix="kstall"))
    # Khanza stalls in the middle of the batch, while the pipeline holds the lock and the write slot.
    fault_env.proxy.stall_at_query(1, 50, match=b"INSERT INTO reg_periksa")

    state = failed_fast_as_stalled(fault_env, "a stalled Khanza")
    assert "Khanza offline" in state.message and "Khanza database" in state.message, state.message

    fault_env.proxy.unstall()
    completed_run(fault_env)
    assert_all_synced(fault_env, ids, 6)


@pytest.mark.parametrize("website_url", ["postgresql", "mariadb"], indirect=True)
def test_stalled_website_fails_fast_naming_the_website(fault_env, monkeypatch, pg_proxy):
    fault_env.configure(monkeypatch, WEBSITE_DB_URL=proxied(fault_env.website_url, pg_proxy), **WEBSITE_FAST)
    ids = fault_env.insert(registrations(5, prefix="wstall"))
    pg_proxy.stall(50)  # the website's PostgreSQL accepts connections but answers nothing

    state = failed_fast_as_stalled(fault_env, "a stalled website database")
    assert state.message.startswith("website database"), state.message
    assert "Traceback" not in state.message

    pg_proxy.unstall()
    completed_run(fault_env, due=False)
    assert_all_synced(fault_env, ids, 5)


@pytest.mark.parametrize("website_url", ["postgresql", "mariadb"], indirect=True)
def test_website_stalling_after_khanza_committed(fault_env, monkeypatch, pg_proxy):
    """The website stalls while the batch is being loaded: the visits are in Khanza, the write-back cannot
    happen. The run fails naming the website; the next run writes the numbers back from the ledger."""
    fault_env.configure(monkeypatch, WEBSITE_DB_URL=proxied(fault_env.website_url, pg_proxy), **WEBSITE_FAST)
    ids = fault_env.insert(registrations(4, prefix="wlate"))
    fault_env.proxy.call_before_query(1, lambda: pg_proxy.stall(50), match=b"INSERT INTO reg_periksa")

    state, elapsed = timed_run()
    assert elapsed < BOUND_SECONDS + 10, f"a website stalled at write-back held the run for {elapsed:.0f}s"
    assert state.is_failed() and state.message.startswith("website database"), state.message
    assert fault_env.visits() == 4  # loaded, not written back
    assert_released(fault_env)

    pg_proxy.unstall()
    completed_run(fault_env)  # made due: their claim lease would otherwise hide them for CLAIM_LEASE_SECONDS
    assert_all_synced(fault_env, ids, 4)
    assert fault_env.visits() == 4  # repaired from the ledger, never loaded twice


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_locked_website_sqlite_fails_fast(fault_env, monkeypatch):
    fault_env.configure(monkeypatch, **WEBSITE_FAST)
    ids = fault_env.insert(registrations(3, prefix="locked"))
    holder = sqlite3.connect(make_url(fault_env.website_url).database, timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another writer (the website) keeps the write lock
    try:
        state, elapsed = timed_run()
    finally:
        holder.rollback()
        holder.close()
    assert elapsed < BOUND_SECONDS, f"a locked SQLite store held the run for {elapsed:.0f}s"
    assert state.is_failed(), state.message
    assert "website SQLite file" in state.message and "WEBSITE_STATEMENT_TIMEOUT_SECONDS=1" in state.message
    assert_released(fault_env)

    state = run_sync()
    assert state.is_completed(), state.message
    assert fault_env.audit(ids).synced == 3


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_flow_timeout_is_the_backstop(fault_env, monkeypatch):
    """Driver timeouts far too long (a misconfiguration): FLOW_TIMEOUT_SECONDS still ends the run, and the slot
    and the lock are released."""
    from flows.sync_registrations import sync_registrations

    fault_env.configure(monkeypatch, KHANZA_RETRIES=0, KHANZA_CONNECT_TIMEOUT=2, KHANZA_READ_TIMEOUT=60,
                        KHANZA_WRITE_TIMEOUT=60)
    fault_env.insert(registrations(2, prefix="backstop"))
    fault_env.proxy.stall_at_query(1, 50, match=b"INSERT INTO reg_periksa")
    started = time.monotonic()
    state = sync_registrations.with_options(timeout_seconds=4)(return_state=True)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS, f"the flow timeout let the run go on for {elapsed:.0f}s"
    assert state.is_failed() and "timeout" in state.message, state.message
    fault_env.proxy.unstall()
    time.sleep(0.5)  # the proxy closes the stalled server link once the client is gone
    assert_released(fault_env)
