"""Follow-mode tests: the follow loop (khanza_sync/follow.py) and its hourly flow on the real Prefect engine
(the session's one harness), real MariaDB (optionally behind the fault proxy of tests/faults) and website
stores on SQLite (polling), PostgreSQL with the notification trigger (LISTEN) and without it (polling), and
MariaDB (polling: MySQL has no NOTIFY).

Run with private database names when other sessions test at the same time:
    CI=true KHANZA_TEST_DB=ks_follow PG_TEST_DB=ks_follow .venv/bin/python -m pytest -q tests/follow
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from khanza_sync import follow
from khanza_sync.settings import load_settings
from tasks.resources import dispose_all, open_resources
from tests.faults.invariants import Audit, audit
from tests.support import KHANZA_TEST_DB, insert_registrations, new_website_store, set_flow_env
from website import store

# Short everything, as the fault tests: faults show in seconds and nothing can hang.
FAST = {"KHANZA_RETRIES": "1", "KHANZA_RETRY_DELAY_SECONDS": "0.2", "KHANZA_CONNECT_TIMEOUT": "2",
        "KHANZA_READ_TIMEOUT": "5", "KHANZA_WRITE_TIMEOUT": "5", "KHANZA_LOCK_TIMEOUT_SECONDS": "4",
        "CLAIM_LEASE_SECONDS": "60", "BOOKING_SAME_DAY_CUTOFF_HOUR": "", "FOLLOW_POLL_SECONDS": "0.2"}
DROP_TRIGGER = ("DROP TRIGGER IF EXISTS online_registrations_notify ON online_registrations",
                "DROP FUNCTION IF EXISTS online_registrations_notify()")


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    """Every follow test runs flows or tasks on the real Prefect engine."""
    follow.STOP.clear()
    yield
    follow.STOP.clear()


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-no-trigger", "mariadb"])
def follow_store(request, tmp_path) -> str:
    """A fresh website store: SQLite (poll), PostgreSQL with the trigger (LISTEN), PostgreSQL made from the
    DDL without the trigger (poll), MariaDB (poll)."""
    if request.param == "sqlite":
        return new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    if request.param == "mariadb":
        return new_website_store(request.getfixturevalue("mysql_website_url"), drop=True)
    url = new_website_store(request.getfixturevalue("postgres_url"), drop=True)
    if request.param == "postgresql-no-trigger":
        engine = store.make_engine(url)
        with engine.begin() as conn:
            for stmt in DROP_TRIGGER:
                conn.exec_driver_sql(stmt)
        engine.dispose()
    return url


@pytest.fixture
def pg_store(postgres_url) -> str:
    return new_website_store(postgres_url, drop=True)


@dataclass
class FollowEnv:
    khanza: Engine  # direct, for checking
    website_url: str
    web: Engine

    def insert(self, regs: list[dict]) -> list[str]:
        insert_registrations(self.website_url, regs)
        return [r["id"] for r in regs]

    def rows(self, ids=None):
        return store.fetch_rows(self.web, ids).set_index("id")

    def wait_synced(self, ids, timeout: float = 20.0) -> float:
        """Seconds until every row of `ids` left pending (fails after `timeout`)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if (self.rows(ids)["status"] != "pending").all():
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"still pending after {timeout} s: {self.rows(ids)['status'].value_counts().to_dict()}")

    def wait_for(self, condition, timeout: float = 20.0, what: str = "condition") -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} not reached within {timeout} s")

    def audit(self, ids) -> Audit:
        return audit(self.khanza, self.web, ids)


def configure(monkeypatch, website_url: str, khanza_port: int | None = None, **env) -> None:
    set_flow_env(monkeypatch, KHANZA_DB_HOST=os.environ.get("KHANZA_DB_HOST", "127.0.0.1"),
                 KHANZA_DB_PORT=khanza_port or int(os.environ.get("KHANZA_DB_PORT", "3306")),
                 KHANZA_DB_NAME=KHANZA_TEST_DB, KHANZA_DB_USER=os.environ.get("KHANZA_DB_USER", "root"),
                 KHANZA_DB_PASSWORD=os.environ.get("KHANZA_DB_PASSWORD", ""), WEBSITE_DB_URL=website_url,
                 **{**FAST, **env})


@pytest.fixture
def follow_env(monkeypatch, tmp_path, khanza, follow_store):
    configure(monkeypatch, follow_store)
    monkeypatch.chdir(tmp_path)
    web = store.make_engine(follow_store)
    yield FollowEnv(khanza, follow_store, web)
    web.dispose()
    dispose_all()


@contextmanager
def in_thread(run, name: str, stop: threading.Event, what: str):
    """`run` in a daemon thread `name` for the body of the with-block; on exit `stop` is set and the thread
    must end within 30 seconds (`what` names it in the failure)."""
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), f"{what} did not stop"


@contextmanager
def following(max_seconds: float = 60, **kwargs):
    """The plain follow loop (khanza_sync/follow.py) in a thread, on the settings in the environment; yields a
    dict that gets `stats` when it ends. Stopped (and joined) on exit."""
    stop, out = threading.Event(), {}

    def run():
        out["stats"] = follow.follow(open_resources(load_settings()), stop=stop,
                                     until=time.monotonic() + max_seconds, **kwargs)

    with in_thread(run, "follow", stop, "the follow loop"):
        yield out


@contextmanager
def following_flow(seconds: int = 60, **params):
    """The hourly flow (flows/follow_registrations.py) in a thread, ended early through follow.STOP as
    `khanza-sync follow` does on SIGTERM; yields a dict that gets the final `state`."""
    from flows.follow_registrations import follow_registrations

    out = {}

    def run():
        out["state"] = follow_registrations(seconds=seconds, return_state=True, **params)

    with in_thread(run, "follow-flow", follow.STOP, "the follow flow"):
        yield out


# Every logger whose records reach the output: the root (pytest, libraries), Prefect's (they need not
# propagate to the root) and the project's (shipped to the flow run's logs).
OUTPUT_LOGGERS = ("", "prefect", "khanza_sync", "khanza", "website", "tasks", "flows")


class LogRecords(logging.Handler):
    """Every log record of OUTPUT_LOGGERS while active (at record level: what any handler would print)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> "LogRecords":
        for name in OUTPUT_LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        for name in OUTPUT_LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def has(self, logger: str, text: str) -> bool:
        return any(r.name == logger and text in r.getMessage() for r in self.records)

    def tracebacks(self) -> list[str]:
        """Records that would print a traceback (exc_info, stack_info, or one in the message itself)."""
        return [f"{r.name}: {r.getMessage()[:300]}" for r in self.records
                if r.exc_info or r.stack_info or "Traceback" in r.getMessage()]
