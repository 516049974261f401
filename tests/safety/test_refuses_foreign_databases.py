"""Never touch what the project did not create: every entry point that drops, recreates or empties a
database (demo, trial seed = `scripts/ui_check.py seed`, `khanza-sync setup --demo`, `recreate_database`,
the benchmark's build/reset, the soak's preparation, the test fixtures' helpers) is pointed at databases the
project did NOT create. Each must refuse with one line naming the database and why, exit non-zero, and leave
every row where it was.

The "foreign" databases are made here WITHOUT Khanza Sync's marker, on the project's private servers only
(never the machine's own), and dropped by the test afterwards.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import sqlite3
import subprocess
import sys

import pymysql
import pytest
from sqlalchemy import create_engine, make_url, text

from khanza.setup import create_demo_database, recreate_database
from khanza_sync import ownership
from khanza_sync.demo import sample_registrations
from khanza_sync.settings import PROJECT_ROOT
from tests.support import PG_ADMIN_URL, PRIVATE, base_settings, hospital_today, new_website_store

ROWS = [(1, "keep me"), (2, "and me"), (3, "me too")]


@pytest.fixture(autouse=True)
def _only_private_servers(private_servers):
    """These tests make and drop databases: only ever on the project's own servers."""
    cfg = base_settings()
    if (cfg.khanza_db_host, cfg.khanza_db_port) != (PRIVATE.mariadb_host, PRIVATE.mariadb_port) \
            or PG_ADMIN_URL != PRIVATE.postgres_admin_url:
        pytest.skip("the tests point at servers other than the project's private ones")


def _mariadb(database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host=PRIVATE.mariadb_host, port=PRIVATE.mariadb_port, user="root", password="",
                           database=database, autocommit=True)


def _mariadb_exists(name: str) -> bool:
    conn = _mariadb()
    try:
        with conn.cursor() as cur:
            return bool(cur.execute("SHOW DATABASES LIKE %s", (name,)))
    finally:
        conn.close()


def _drop_mariadb(name: str) -> None:
    conn = _mariadb()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture
def foreign_khanza():
    """A MariaDB database the project did not create (no khanza_sync_owned table), with rows in it."""
    name = f"ks_foreign_{secrets.token_hex(4)}"
    conn = _mariadb()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.pasien (id int PRIMARY KEY, note varchar(40))")
        cur.executemany(f"INSERT INTO `{name}`.pasien VALUES (%s, %s)", ROWS)
    conn.close()
    yield name
    _drop_mariadb(name)


def khanza_rows(name: str) -> list[tuple]:
    conn = _mariadb(name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, note FROM pasien ORDER BY id")
            rows = [tuple(r) for r in cur.fetchall()]
            cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (name,))
            assert cur.fetchone()[0] == 1, "a table was added to or removed from the foreign database"
            return rows
    finally:
        conn.close()


@pytest.fixture
def foreign_postgres():
    """A PostgreSQL database the project did not create (no comment), with website rows. Yields its URL."""
    name = f"ks_foreign_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE online_registrations (id int PRIMARY KEY, note text)")
        for row in ROWS:
            conn.execute(text("INSERT INTO online_registrations VALUES (:i, :n)"), {"i": row[0], "n": row[1]})
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def postgres_rows(url: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT id, note FROM online_registrations ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.fixture
def foreign_sqlite(tmp_path):
    """A SQLite website store the project did not create, with rows. Yields its URL."""
    path = tmp_path / "their_website.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE online_registrations (id integer PRIMARY KEY, note text)")
    conn.executemany("INSERT INTO online_registrations VALUES (?, ?)", ROWS)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def sqlite_rows(url: str) -> list[tuple]:
    conn = sqlite3.connect(make_url(url).database)
    try:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] \
            == ["online_registrations"]
        return conn.execute("SELECT id, note FROM online_registrations ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def new_name():
    """A MariaDB database name that does not exist yet (dropped afterwards if a test made it)."""
    name = f"ks_new_{secrets.token_hex(4)}"
    yield name
    _drop_mariadb(name)


def refused(excinfo, *names: str) -> str:
    """The refusal: one line, naming the database, saying why; a non-zero exit when it reaches the top."""
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ownership.NotOwned) and excinfo.value.code
    assert "\n" not in message and message.startswith("refused to ")
    assert "not" in message or "no " in message
    for name in names:
        assert name in message, message
    return message


# ---------------------------------------------------------------- Khanza side (MariaDB)


def test_recreate_database_refuses_a_database_it_did_not_create(foreign_khanza):
    with pytest.raises(ownership.NotOwned) as excinfo:
        recreate_database(base_settings(), foreign_khanza)
    assert "khanza_sync_owned" in refused(excinfo, foreign_khanza, f"{PRIVATE.mariadb_host}:{PRIVATE.mariadb_port}")
    with pytest.raises(ownership.NotOwned):
        create_demo_database(base_settings(), foreign_khanza)
    assert khanza_rows(foreign_khanza) == ROWS


def test_recreate_database_creates_marks_and_replaces_its_own(new_name):
    recreate_database(base_settings(), new_name)  # a new database: allowed, and marked
    conn = _mariadb(new_name)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE scratch (id int)")
        cur.execute("SELECT created_by FROM khanza_sync_owned")
        assert cur.fetchone()[0] == "khanza-sync"
    conn.close()
    recreate_database(base_settings(), new_name)  # its own: replaced
    conn = _mariadb(new_name)
    with conn.cursor() as cur:
        assert not cur.execute("SHOW TABLES LIKE 'scratch'")
    conn.close()


def test_emptying_is_refused_on_a_foreign_database(foreign_khanza):
    """What the `khanza` fixture and the benchmark's reset check before their DELETEs."""
    engine = create_engine(f"mysql+pymysql://root@{PRIVATE.mariadb_host}:{PRIVATE.mariadb_port}/{foreign_khanza}")
    with engine.connect() as conn, pytest.raises(ownership.NotOwned) as excinfo:
        ownership.require_mariadb_owned(conn, foreign_khanza)
    engine.dispose()
    refused(excinfo, foreign_khanza)
    assert khanza_rows(foreign_khanza) == ROWS


def test_setup_demo_cli_refuses_with_one_line_and_exit_status(foreign_khanza, tmp_path):
    """`khanza-sync setup --demo` with KHANZA_DB_NAME naming a database the project did not create."""
    env = {**os.environ, "KHANZA_DB_NAME": foreign_khanza}
    done = subprocess.run([sys.executable, "-m", "khanza_sync.cli", "setup", "--demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("refused to ") and foreign_khanza in lines[-1], done.stderr
    assert "Traceback" not in done.stderr
    assert khanza_rows(foreign_khanza) == ROWS


def dot_env_naming_another_server(tmp_path, monkeypatch, new_name: str, extra: str = "") -> None:
    """Run from `tmp_path`, whose .env points Khanza at another server (here: nothing listens) plus `extra`
    lines; the environment names no Khanza host or port, and KHANZA_DB_NAME is `new_name`."""
    (tmp_path / ".env").write_text("KHANZA_DB_HOST=127.0.0.1\nKHANZA_DB_PORT=1\n" + extra)
    monkeypatch.chdir(tmp_path)
    for key in ("KHANZA_DB_HOST", "KHANZA_DB_PORT"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("KHANZA_DB_NAME", new_name)


def test_setup_demo_ignores_a_dot_env_naming_another_server(new_name, tmp_path, monkeypatch):
    """A .env pointing at another server (here: nothing listens) does not redirect `setup --demo`."""
    from khanza_sync.cli import main

    dot_env_naming_another_server(tmp_path, monkeypatch, new_name)
    assert main(["setup", "--demo"]) == 0
    assert _mariadb_exists(new_name)


# ---------------------------------------------------------------- demo


def test_demo_refuses_a_foreign_khanza_database(foreign_khanza, tmp_path):
    from khanza_sync import demo

    website = tmp_path / "demo_website.db"
    with pytest.raises(ownership.NotOwned) as excinfo:
        demo.main(khanza_db=foreign_khanza, website_db=website)
    refused(excinfo, foreign_khanza)
    assert khanza_rows(foreign_khanza) == ROWS
    assert not website.exists()


def test_demo_refuses_a_foreign_website_store_before_touching_khanza(foreign_sqlite, new_name):
    from khanza_sync import demo

    with pytest.raises(ownership.NotOwned) as excinfo:
        demo.main(khanza_db=new_name, website_db=make_url(foreign_sqlite).database)
    refused(excinfo, make_url(foreign_sqlite).database)
    assert sqlite_rows(foreign_sqlite) == ROWS
    assert not _mariadb_exists(new_name)  # refused before anything was made


# ---------------------------------------------------------------- trial seed (scripts/ui_check.py seed)


def _ui_check():
    spec = importlib.util.spec_from_file_location("ui_check", PROJECT_ROOT / "scripts" / "ui_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trial_seed_refuses_foreign_databases(foreign_khanza, foreign_postgres, new_name, monkeypatch):
    seed = _ui_check().seed
    monkeypatch.setenv("KHANZA_DB_NAME", foreign_khanza)
    monkeypatch.setenv("WEBSITE_DB_URL", foreign_postgres)
    with pytest.raises(ownership.NotOwned) as excinfo:
        seed()
    refused(excinfo, foreign_khanza)
    monkeypatch.setenv("KHANZA_DB_NAME", new_name)  # a new Khanza database would be fine; the website is not
    with pytest.raises(ownership.NotOwned) as excinfo:
        seed()
    refused(excinfo, make_url(foreign_postgres).database)
    assert khanza_rows(foreign_khanza) == ROWS
    assert postgres_rows(foreign_postgres) == ROWS
    assert not _mariadb_exists(new_name)


def test_trial_seed_command_exits_non_zero_with_one_line(foreign_khanza, foreign_sqlite, tmp_path):
    """As scripts/local_trial.sh runs it (TRIAL_SEED=1 with the user's own KHANZA_DB_NAME)."""
    env = {**os.environ, "KHANZA_DB_NAME": foreign_khanza, "WEBSITE_DB_URL": foreign_sqlite}
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "ui_check.py"), "seed"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("refused to "), done.stderr
    assert "Traceback" not in done.stderr
    assert khanza_rows(foreign_khanza) == ROWS
    assert sqlite_rows(foreign_sqlite) == ROWS


def test_trial_seed_ignores_a_dot_env_naming_another_server(new_name, tmp_path, monkeypatch):
    dot_env_naming_another_server(tmp_path, monkeypatch, new_name, "WEBSITE_DB_URL=sqlite:////nonexistent/x.db\n")
    monkeypatch.setenv("WEBSITE_DB_URL", f"sqlite:///{tmp_path / 'trial_website.db'}")
    _ui_check().seed()
    assert _mariadb_exists(new_name)
    # the demo's sample registrations, plus the one the trial adds to end PATIENT_CONFLICT (for the UI tour)
    assert len(sqlite_like(tmp_path / "trial_website.db")) == len(sample_registrations(hospital_today())) + 1


def sqlite_like(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id FROM online_registrations").fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------- benchmark


def test_bench_build_and_reset_refuse_a_foreign_database(foreign_khanza):
    from bench import build_khanza

    with pytest.raises(ownership.NotOwned) as excinfo:
        build_khanza.build(foreign_khanza, 10)
    refused(excinfo, foreign_khanza)
    with pytest.raises(ownership.NotOwned) as excinfo:
        build_khanza.reset(foreign_khanza)
    refused(excinfo, foreign_khanza)
    with pytest.raises(ownership.NotOwned):
        build_khanza.ensure(foreign_khanza, 10, log=lambda *_: None)
    assert khanza_rows(foreign_khanza) == ROWS


def test_bench_website_store_refuses_a_foreign_file(foreign_sqlite):
    from bench import backlog

    with pytest.raises(ownership.NotOwned) as excinfo:
        backlog.fill(make_url(foreign_sqlite).database, [])
    refused(excinfo, make_url(foreign_sqlite).database)
    assert sqlite_rows(foreign_sqlite) == ROWS


def test_soak_preparation_refuses_foreign_databases(foreign_khanza, foreign_sqlite, new_name, tmp_path):
    from bench import soak

    with pytest.raises(ownership.NotOwned) as excinfo:
        soak.prepare_databases(foreign_khanza, f"sqlite:///{tmp_path / 'soak.db'}")
    refused(excinfo, foreign_khanza)
    with pytest.raises(ownership.NotOwned) as excinfo:
        soak.prepare_databases(new_name, foreign_sqlite)
    refused(excinfo, make_url(foreign_sqlite).database)
    assert khanza_rows(foreign_khanza) == ROWS
    assert sqlite_rows(foreign_sqlite) == ROWS
    assert not _mariadb_exists(new_name) and not (tmp_path / "soak.db").exists()


# ---------------------------------------------------------------- the test fixtures' own helpers


@pytest.fixture
def foreign_mysql_website(foreign_khanza):
    """A MariaDB database the project did not create, holding a website table with rows. Yields its URL."""
    conn = _mariadb(foreign_khanza)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE online_registrations (id int PRIMARY KEY, note varchar(40))")
        cur.executemany("INSERT INTO online_registrations VALUES (%s, %s)", ROWS)
    conn.close()
    return f"mysql+pymysql://root@{PRIVATE.mariadb_host}:{PRIVATE.mariadb_port}/{foreign_khanza}"


def mysql_website_rows(name: str) -> list[tuple]:
    conn = _mariadb(name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, note FROM online_registrations ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def test_fresh_website_store_refuses_foreign_stores(foreign_postgres, foreign_sqlite, foreign_mysql_website):
    """What the `website_url` fixture and the soak do before dropping online_registrations."""
    for url in (foreign_postgres, foreign_sqlite, foreign_mysql_website):
        with pytest.raises(ownership.NotOwned) as excinfo:
            new_website_store(url, drop=True)
        refused(excinfo, make_url(url).database)
    assert postgres_rows(foreign_postgres) == ROWS
    assert sqlite_rows(foreign_sqlite) == ROWS
    assert mysql_website_rows(make_url(foreign_mysql_website).database) == ROWS


def test_mariadb_website_database_of_that_name_without_marker_is_refused(foreign_khanza):
    """The `mysql_website_url` fixture: reuse only a marked database."""
    engine = create_engine(f"mysql+pymysql://root@{PRIVATE.mariadb_host}:{PRIVATE.mariadb_port}/",
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn, pytest.raises(ownership.NotOwned) as excinfo:
            ownership.ensure_mariadb_database(conn, foreign_khanza, "test")
    finally:
        engine.dispose()
    refused(excinfo, foreign_khanza)
    assert khanza_rows(foreign_khanza) == ROWS


def test_postgres_database_of_that_name_without_marker_is_refused(foreign_postgres):
    """The `postgres_url` fixture and the trial's Prefect database: reuse only a marked database."""
    name = make_url(foreign_postgres).database
    with pytest.raises(ownership.NotOwned) as excinfo:
        ownership.ensure_postgres_database(PG_ADMIN_URL, name, "test")
    refused(excinfo, name)
    assert postgres_rows(foreign_postgres) == ROWS
