"""Set-up mistakes give one clear line, not a traceback.

`khanza-sync check` (a real subprocess, as an operator runs it) passes on a good configuration, and each broken
one gives its FAIL line and a non-zero exit, writing nothing anywhere. The other subcommands (sync, reconcile,
backfill, publish-master-data, setup) print one line naming what to fix and exit non-zero; a flow run ends
Failed with that line as its message (what a deployment run shows).
"""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from khanza import ledger
from khanza_sync.settings import PROJECT_ROOT
from website import contract
from tests.support import (KHANZA_TEST_DB, base_settings, extra_mappings, flows_as, insert_registrations,
                           mysql_server_url, new_website_store, registration)

KHANZA_BIN = Path(sys.executable).with_name("khanza-sync")
ON_SQLITE = pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)  # the website store: a SQLite file
ON_MARIADB = pytest.mark.parametrize("website_url", ["mariadb"], indirect=True)


@contextmanager
def ledger_dropped(khanza):
    """Khanza without the ledger table for the body of the with-block; created again afterwards."""
    with khanza.begin() as conn:
        conn.exec_driver_sql("DROP TABLE khanza_sync_ledger")
    try:
        yield
    finally:
        with khanza.begin() as conn:
            ledger.create_table(conn)


def khanza_env(website_url: str, **overrides) -> dict[str, str]:
    cfg = base_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KHANZA_", "WEBSITE_", "MAPPINGS_"))}
    env.update({"KHANZA_DB_HOST": cfg.khanza_db_host, "KHANZA_DB_PORT": str(cfg.khanza_db_port),
                "KHANZA_DB_USER": cfg.khanza_db_user, "KHANZA_DB_PASSWORD": cfg.khanza_db_password.get_secret_value(),
                "KHANZA_DB_NAME": cfg.khanza_db_name, "WEBSITE_DB_URL": website_url,
                "MAPPINGS_DIR": str(PROJECT_ROOT / "mappings"), "KHANZA_CONNECT_TIMEOUT": "3",
                "HOSPITAL_TIMEZONE": server_zone()})
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def server_offset_hours() -> int:
    """The test MariaDB server's clock, in whole hours ahead of UTC."""
    from khanza.db import make_engine

    engine = make_engine(base_settings())
    try:
        with engine.connect() as conn:
            return round(conn.execute(text("SELECT TIMEDIFF(NOW(), UTC_TIMESTAMP())")).scalar().total_seconds() / 3600)
    finally:
        engine.dispose()


def server_zone() -> str:
    """A time zone at the test server's offset (Etc/GMT-7 is UTC+07:00): a good configuration matches it."""
    hours = server_offset_hours()
    return "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def check(tmp_path: Path, website_url: str, **overrides) -> tuple[int, str]:
    done = subprocess.run([str(KHANZA_BIN), "check"], env=khanza_env(website_url, **overrides), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return done.returncode, output


def snapshot(khanza, website_url: str) -> dict:
    """Every table and its row count, in Khanza and on the website: nothing may change."""
    state = {}
    with khanza.connect() as conn:
        for (table,) in conn.execute(text("SHOW TABLES")):
            state[f"khanza.{table}"] = conn.execute(text(f"SELECT COUNT(*) FROM `{table}`")).scalar()
    web = create_engine(website_url)
    quote = web.dialect.identifier_preparer.quote
    try:
        with web.connect() as conn:
            for table in inspect(web).get_table_names():
                state[f"website.{table}"] = conn.execute(text(f"SELECT COUNT(*) FROM {quote(table)}")).scalar()
    finally:
        web.dispose()
    return state


@pytest.fixture
def configured(khanza, website_url, tmp_path):
    """A good configuration (the test Khanza database, a website store with one pending row) and its snapshot."""
    insert_registrations(website_url, [registration(id="check-1")])
    before = snapshot(khanza, website_url)
    yield website_url
    assert snapshot(khanza, website_url) == before, "khanza-sync check wrote something"


def fail_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


def test_check_passes_on_a_good_configuration(configured, tmp_path):
    code, output = check(tmp_path, configured)
    assert code == 0, output
    assert not fail_lines(output) and "all passed" in output
    for name in ("Khanza connection", "Khanza clock", "Khanza tables", "ledger", "decisions", "desk rules", "numbering",
                 "website connection", "website table online_registrations", "mappings folder", "mapped codes"):
        assert f"ok    {name}: " in output, output
    assert "every desk rule checked" in output, output
    assert "KHANZA_URUTNOREG='dokter'" in output and "no_rkm_medis Straight" in output


@ON_SQLITE
@pytest.mark.parametrize("broken, expected", [
    ({"KHANZA_DB_PORT": "1"}, "FAIL  Khanza connection: Khanza database"),
    ({"KHANZA_DB_PASSWORD": "wrong-password"}, "check KHANZA_DB_USER / KHANZA_DB_PASSWORD"),
    ({"MAPPINGS_DIR": "/nonexistent/mappings"}, "FAIL  mappings folder: mappings folder /nonexistent/mappings does not"),
])
def test_check_names_the_setting_to_fix(configured, tmp_path, broken, expected):
    code, output = check(tmp_path, configured, **broken)
    assert code != 0
    assert len(fail_lines(output)) == 1 and expected in fail_lines(output)[0], output
    if "KHANZA_DB_PORT" in broken:
        assert ":1 is unreachable" in output and "KHANZA_DB_HOST / KHANZA_DB_PORT" in output


@ON_SQLITE
def test_check_missing_ledger(configured, khanza, tmp_path):
    with ledger_dropped(khanza):
        code, output = check(tmp_path, configured)
    assert code != 0
    assert fail_lines(output) == [
        f"FAIL  ledger: khanza_sync_ledger is missing in Khanza database '{base_settings().khanza_db_name}' at "
        f"{base_settings().khanza_db_host}:{base_settings().khanza_db_port}: run `khanza-sync setup` "
        "(once, as a user allowed to CREATE)"], output


@ON_SQLITE
def test_check_unknown_mapped_code(configured, monkeypatch, tmp_path):
    maps = extra_mappings(monkeypatch, tmp_path, dokter="dr-nobody: D999\n")
    code, output = check(tmp_path, configured, MAPPINGS_DIR=maps)
    assert code != 0
    [line] = fail_lines(output)
    assert line.startswith("FAIL  mapped codes: dokter.yaml dr-nobody -> D999: unknown code"), output
    assert "MAPPINGS_DIR" in line


@ON_SQLITE
def test_check_missing_website_table(configured, tmp_path):
    empty = tmp_path / "empty-website.db"
    sqlite3.connect(empty).close()
    code, output = check(tmp_path, configured, WEBSITE_DB_URL=f"sqlite:///{empty}")
    assert code != 0
    [line] = fail_lines(output)
    assert line.startswith("FAIL  website table online_registrations: online_registrations is missing"), output
    assert "khanza-sync setup --website" in line
    assert inspect(create_engine(f"sqlite:///{empty}")).get_table_names() == []  # still empty

    missing = tmp_path / "no-such-website.db"
    code, output = check(tmp_path, configured, WEBSITE_DB_URL=f"sqlite:///{missing}")
    assert code != 0 and "does not exist: check WEBSITE_DB_URL" in fail_lines(output)[0]
    assert not missing.exists()  # checking never creates the file


@pytest.fixture
def empty_mariadb(private_servers):
    """A second, empty website database on the test MariaDB server (Khanza Sync's, marked), as a URL."""
    from khanza_sync import ownership

    name = KHANZA_TEST_DB + "_web_empty"
    engine = create_engine(mysql_server_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        ownership.ensure_mariadb_database(conn, name, "test: an empty website database")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{name}`.online_registrations")
    engine.dispose()
    return mysql_server_url(name)


@ON_MARIADB
def test_check_on_a_mariadb_website(configured, tmp_path, empty_mariadb):
    code, output = check(tmp_path, configured)
    assert code == 0, output
    [line] = [line for line in output.splitlines() if line.startswith("ok    website connection: ")]
    assert re.search(r"\(mysql\) \(10\.[\w.+-]*MariaDB[\w.+-]*; claims with FOR UPDATE SKIP LOCKED\)$", line), line

    code, output = check(tmp_path, configured, WEBSITE_DB_URL=empty_mariadb)
    assert code != 0
    [line] = fail_lines(output)
    assert line == (f"FAIL  website table online_registrations: online_registrations is missing in website database "
                    f"'{KHANZA_TEST_DB}_web_empty' at {base_settings().khanza_db_host}:{base_settings().khanza_db_port} "
                    "(mysql): run `khanza-sync setup --website`, or have the website team apply sql/website_mysql.sql")

    code, output = check(tmp_path, configured, WEBSITE_DB_URL=configured.replace("://root@", "://nobody:wrong@"))
    assert code != 0
    [line] = fail_lines(output)
    assert line.startswith("FAIL  website connection: website database") and line.endswith(
        "(mysql) refused the login: check the user and password in WEBSITE_DB_URL"), line


def test_check_without_skip_locked_needs_the_claim_token(khanza, mysql_website_url, monkeypatch):
    """An older MySQL/MariaDB (no FOR UPDATE SKIP LOCKED: forced here) claims with claim_token: `check` and every
    flow's preflight name the missing column in one line."""
    from khanza_sync import checkup
    from website import store

    monkeypatch.setattr(store, "claim_method", lambda dialect: "token" if store.is_mysql(dialect) else "returning")
    url = new_website_store(mysql_website_url, drop=True)
    settings = base_settings(website_db_url=url)

    def table_check():
        [found] = [c for c in checkup.run_checks(settings) if c.name == "website table online_registrations"]
        return found

    assert table_check().ok, table_check().line()
    engine = store.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE online_registrations DROP COLUMN claim_token")
        found = table_check()
        assert found.ok is False and "has no FOR UPDATE SKIP LOCKED, so online_registrations needs the column " \
                                     "claim_token VARCHAR(32) NULL" in found.detail, found.line()
        with pytest.raises(checkup.SetupProblem, match="add it as sql/website_mysql.sql has it"):
            checkup.preflight(settings, khanza, engine)
    finally:
        engine.dispose()


def test_setup_website_makes_the_mariadb_tables(khanza, empty_mariadb, tmp_path):
    """`khanza-sync setup --website` on MySQL/MariaDB: the table of sql/website_mysql.sql; again: no change."""
    for expected in ("CREATE TABLE online_registrations", "nothing to change"):
        done = subprocess.run([str(KHANZA_BIN), "setup", "--website"], env=khanza_env(empty_mariadb), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"online_registrations at contract version {contract.CURRENT} (mysql): " + expected in done.stdout
    engine = create_engine(empty_mariadb)
    try:
        found = inspect(engine)
        assert [c["name"] for c in found.get_columns("online_registrations")][-1] == "claim_token"
        assert {i["name"]: i["column_names"] for i in found.get_indexes("online_registrations")} == {
            "online_registrations_pending": ["status", "created_at"]}
        with engine.connect() as conn:
            assert "utf8mb4" in conn.execute(text("SHOW CREATE TABLE online_registrations")).one()[1]
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the other subcommands and the flows


@pytest.fixture
def cli_env(monkeypatch, tmp_path, khanza, website_url):
    insert_registrations(website_url, [registration(id="setup-1")])
    yield from flows_as(monkeypatch, tmp_path, website_url)


def run_cli(capfd, *argv: str) -> tuple[int, str]:
    """`khanza-sync ARGV` in a subprocess, as an operator runs it, on the session's Prefect server; the
    environment is this test's (flows_as and the test's own settings). Everything it prints is returned."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([str(KHANZA_BIN), *argv], env=env, cwd=os.getcwd(), capture_output=True, text=True,
                          timeout=180)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return done.returncode, output


@ON_SQLITE
def test_sync_without_ledger_says_run_setup(cli_env, khanza, capfd):
    with ledger_dropped(khanza):
        code, output = run_cli(capfd, "sync")
    assert code != 0
    assert "Khanza database 'khanza_sync_test" in output and "the ledger table khanza_sync_ledger is missing" in output
    assert "run `khanza-sync setup`" in output


@ON_SQLITE
def test_sync_against_an_older_schema_stops_in_one_line_naming_setup(cli_env, khanza, capfd):
    """A release's tables one schema version behind (setup not yet run after an upgrade): the job refuses
    before any task, in one line naming the command, and writes nothing."""
    from khanza import migrations

    try:
        with khanza.begin() as conn:
            conn.execute(text("UPDATE khanza_sync_schema SET version = :v"), {"v": migrations.CURRENT - 1})
        code, output = run_cli(capfd, "sync")
    finally:
        with khanza.begin() as conn:
            conn.execute(text("UPDATE khanza_sync_schema SET version = :v"), {"v": migrations.CURRENT})
    assert code != 0
    assert f"schema version {migrations.CURRENT - 1}, this release needs {migrations.CURRENT}" in output
    assert "run `khanza-sync setup`" in output and "Traceback" not in output


@ON_SQLITE
@pytest.mark.parametrize("setting, value, argv, expected", [
    ("KHANZA_DB_PASSWORD", "wrong-password", ["publish-master-data"],
     ["refused the login of user", "KHANZA_DB_PASSWORD"]),
    ("MAPPINGS_DIR", "/nonexistent/mappings", ["sync"], ["mappings folder /nonexistent/mappings does not exist"]),
], ids=["publish_with_wrong_password_names_the_settings", "sync_with_missing_mappings_folder"])
def test_broken_setting_is_named_in_one_line(cli_env, monkeypatch, capfd, setting, value, argv, expected):
    monkeypatch.setenv(setting, value)
    code, output = run_cli(capfd, *argv)
    assert code != 0, output
    for line in expected:
        assert line in output, output


@ON_SQLITE
def test_reconcile_and_backfill_with_missing_website_table(cli_env, monkeypatch, tmp_path, capfd):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    monkeypatch.setenv("WEBSITE_DB_URL", f"sqlite:///{empty}")
    for argv in (["reconcile"], ["backfill", "--start", "2026-01-01", "--end", "2026-01-02"]):
        code, output = run_cli(capfd, *argv)
        assert code != 0, output
        assert "website table online_registrations is missing in website SQLite file" in output, output
        assert "khanza-sync setup --website" in output


@ON_SQLITE
def test_setup_with_unreachable_khanza(cli_env, monkeypatch, capfd):
    monkeypatch.setenv("KHANZA_DB_PORT", "1")
    code, output = run_cli(capfd, "setup")
    assert code == 2
    assert output.strip().splitlines()[-1].startswith("khanza-sync setup: Khanza database")
    assert ":1 is unreachable (connection refused): check KHANZA_DB_HOST / KHANZA_DB_PORT" in output


@ON_MARIADB
def test_website_mariadb_problems_are_one_line_in_the_flow_state(cli_env, monkeypatch, tmp_path):
    from flows.sync_registrations import sync_registrations

    monkeypatch.setenv("WEBSITE_DB_URL", "mysql+pymysql://root@127.0.0.1:1/nowhere")
    state = sync_registrations(return_state=True)
    assert state.is_failed()
    assert state.message == ("website database 'nowhere' at 127.0.0.1:1 (mysql) is unreachable (connection "
                             "refused): check the host and port in WEBSITE_DB_URL, and that the server runs")

    monkeypatch.setenv("WEBSITE_DB_URL", cli_env)
    engine = create_engine(cli_env)
    with engine.begin() as conn:  # a column of the contract renamed away: one line before anything is claimed
        conn.exec_driver_sql("ALTER TABLE online_registrations CHANGE no_reg queue_no VARCHAR(8)")
    engine.dispose()
    state = sync_registrations(return_state=True)
    assert state.is_failed()
    assert state.message == (f"online_registrations in website database '{KHANZA_TEST_DB}_web' at "
                             f"{base_settings().khanza_db_host}:{base_settings().khanza_db_port} (mysql) lacks columns "
                             "no_reg (contract version 0 found, 2 expected): run `khanza-sync setup --website` if it "
                             "made the table, else its owner applies docs/website.md 'Upgrading the contract' "
                             "(compare with sql/website_mysql.sql)"), state.message
    engine = create_engine(cli_env)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status, attempts FROM online_registrations")).all() == [("pending", 0)]
    engine.dispose()  # not even claimed


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_unreachable_website_postgresql_is_one_line_in_the_flow_state(cli_env, monkeypatch):
    from flows.sync_registrations import sync_registrations

    monkeypatch.setenv("WEBSITE_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    state = sync_registrations(return_state=True)
    assert state.is_failed()
    assert state.message == ("website database 'nowhere' at 127.0.0.1:1 (postgresql) is unreachable (connection "
                             "refused): check the host and port in WEBSITE_DB_URL, and that the server runs")


def test_check_names_a_time_zone_that_disagrees_with_the_khanza_server(configured, tmp_path):
    """HOSPITAL_TIMEZONE two hours away from the Khanza server's clock: one FAIL line with both offsets and
    what to set."""
    hours = server_offset_hours() + 2
    code, output = check(tmp_path, configured, HOSPITAL_TIMEZONE=f"Etc/GMT{-hours:+d}")
    assert code != 0
    [line] = fail_lines(output)
    assert line.startswith(f"FAIL  Khanza clock: the Khanza server's clock is UTC+{hours - 2:02d}:00 but "
                           f"HOSPITAL_TIMEZONE=Etc/GMT{-hours:+d} is UTC+{hours:02d}:00: set HOSPITAL_TIMEZONE"), line


def test_check_refuses_a_lock_timeout_not_below_the_read_timeout(configured, tmp_path):
    code, output = check(tmp_path, configured, KHANZA_LOCK_TIMEOUT_SECONDS=30, KHANZA_READ_TIMEOUT=30)
    assert code != 0
    [line] = fail_lines(output)
    assert line.startswith("FAIL  settings:") and "KHANZA_LOCK_TIMEOUT_SECONDS=30 must be below KHANZA_READ_TIMEOUT=30" \
        in line and "raise the read timeout" in line, line
