"""Shared fixtures: a real MariaDB (Khanza), real PostgreSQL and SQLite (website), one Prefect harness.
The servers are the project's own (khanza_sync/localdb.py: started here on demand when ./dev test has not),
never the machine's; what the fixtures drop or empty carries Khanza Sync's marker (khanza_sync/ownership.py).
Plain helpers are in tests/support.py."""
from __future__ import annotations

import base64
import os
import pickle

import pytest

from khanza.db import make_engine as make_khanza_engine
from khanza.setup import DEMO_DATA, create_demo_database, run_sql_file
from khanza_sync import localdb, ownership
from tests.support import (KHANZA_TEST_DB, PG_ADMIN_URL, PG_TEST_DB, PRIVATE, TRANSACTIONAL_TABLES, base_settings,
                           ensure_mysql_website_database, new_website_store, unavailable)


@pytest.fixture(scope="session")
def private_servers():
    """The project's own MariaDB and PostgreSQL, started if the tests point at them and they are down."""
    if os.environ["KHANZA_DB_PORT"] == str(PRIVATE.mariadb_port) or PG_ADMIN_URL == PRIVATE.postgres_admin_url:
        try:
            localdb.start()
        except localdb.LocalDbError as error:
            unavailable("the project's private database servers", error)
    return PRIVATE


@pytest.fixture(scope="session")
def khanza_server(private_servers):
    settings = base_settings()
    try:
        create_demo_database(settings, KHANZA_TEST_DB, purpose="test Khanza database")
    except Exception as error:  # noqa: BLE001  (a refusal, ownership.NotOwned, is not an Exception: it errors)
        unavailable("MariaDB (Khanza)", error)
    return settings


@pytest.fixture
def khanza(khanza_server):
    """A Khanza test database reset to the demo master data for each test. Yields the engine."""
    engine = make_khanza_engine(khanza_server)
    with engine.begin() as conn:
        ownership.require_mariadb_owned(conn, KHANZA_TEST_DB)
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        for table in TRANSACTIONAL_TABLES:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
        run_sql_file(conn, DEMO_DATA)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url(private_servers):
    """The PostgreSQL test database: created and marked when absent, refused when it exists unmarked."""
    try:
        return ownership.ensure_postgres_database(PG_ADMIN_URL, PG_TEST_DB, "test website database")
    except Exception as error:  # noqa: BLE001  (a refusal, ownership.NotOwned, is not an Exception: it errors)
        unavailable("PostgreSQL (website)", error)


@pytest.fixture(scope="session")
def mysql_website_url(private_servers):
    """The MySQL/MariaDB website test database: a second database (utf8mb4) on the test MariaDB server, created
    and marked when absent, refused when it exists unmarked."""
    try:
        return ensure_mysql_website_database()
    except Exception as error:  # noqa: BLE001  (a refusal, ownership.NotOwned, is not an Exception: it errors)
        unavailable("MariaDB (website)", error)


WEBSITE_DATABASES = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=WEBSITE_DATABASES)
def website_url(request, tmp_path):
    """A fresh website store, created from the shipped DDL, on SQLite, PostgreSQL and MariaDB (a test narrows
    this with `@pytest.mark.parametrize("website_url", [...], indirect=True)`)."""
    if request.param == "sqlite":
        return new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    if request.param == "mariadb":
        return new_website_store(request.getfixturevalue("mysql_website_url"), drop=True)
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


def pytest_collection_finish(session):
    """When tests/safety runs: the accounts on the machine's own database servers before any test ran
    (read only), for tests/safety/test_system_servers.py to compare at its end. Under pytest-xdist the
    controller takes it before any worker starts (pytest_configure_node), since the other worker may
    already be running tests when this one has collected."""
    if any(item.path.parent.name == "safety" for item in session.items):
        from tests.safety import system_accounts

        sent = getattr(session.config, "workerinput", {}).get("system_accounts")
        system_accounts.AT_SESSION_START = pickle.loads(base64.b64decode(sent)) if sent else system_accounts.snapshot()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, run on the controller once per worker it starts
def pytest_configure_node(node):
    config = node.config
    if not hasattr(config, "_system_accounts_at_start"):
        from tests.safety import system_accounts

        config._system_accounts_at_start = base64.b64encode(pickle.dumps(system_accounts.snapshot())).decode()
    node.workerinput["system_accounts"] = config._system_accounts_at_start


def pytest_sessionfinish(session):
    """Under pytest-xdist the controller also compares the accounts after every worker has finished (the
    in-session test in tests/safety sees only what ran before it): a change fails the run."""
    sent = getattr(session.config, "_system_accounts_at_start", None)
    if sent is None:
        return
    from tests.safety import system_accounts

    before = pickle.loads(base64.b64decode(sent))
    if any(isinstance(v, str) for v in before.values()):  # servers absent: test_system_servers reports it
        return
    if system_accounts.snapshot() != before:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line("the machine's own database servers' accounts changed during this test session",
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
