"""Shared fixtures: a real MariaDB (Khanza), real PostgreSQL and SQLite (website), one Prefect harness.
Plain helpers are in tests/support.py."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from khanza.db import make_engine as make_khanza_engine
from khanza.setup import DEMO_DATA, create_demo_database, run_sql_file
from tests.support import (KHANZA_TEST_DB, PG_ADMIN_URL, PG_TEST_DB, TRANSACTIONAL_TABLES, base_settings,
                           new_website_store, unavailable)


@pytest.fixture(scope="session")
def khanza_server():
    settings = base_settings()
    try:
        create_demo_database(settings, KHANZA_TEST_DB)
    except Exception as error:  # noqa: BLE001
        unavailable("MariaDB (Khanza)", error)
    return settings


@pytest.fixture
def khanza(khanza_server):
    """A Khanza test database reset to the demo master data for each test. Yields the engine."""
    engine = make_khanza_engine(khanza_server)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        for table in TRANSACTIONAL_TABLES:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
        run_sql_file(conn, DEMO_DATA)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_TEST_DB}).first()
            if not exists:
                conn.exec_driver_sql(f"CREATE DATABASE {PG_TEST_DB}")
    except Exception as error:  # noqa: BLE001
        unavailable("PostgreSQL (website)", error)
    finally:
        admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB


@pytest.fixture(params=["sqlite", "postgresql"])
def website_url(request, tmp_path):
    """A fresh website store, created from the shipped DDL, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    return new_website_store(request.getfixturevalue("postgres_url"), drop=True)


@pytest.fixture(scope="session")
def prefect_harness():
    """The one Prefect test harness of the session (~12 s to start). Every test in FLOW_FOLDERS runs
    under it (`_flow_tests_use_the_harness`); never start a second one (harnesses must not nest)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


FLOW_FOLDERS = {"flows", "faults", "privacy"}  # their tests run flows on the real Prefect engine


@pytest.fixture(autouse=True)
def _flow_tests_use_the_harness(request):
    if request.path.parent.name in FLOW_FOLDERS:
        request.getfixturevalue("prefect_harness")
