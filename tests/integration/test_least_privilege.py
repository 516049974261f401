"""Least privilege: the users made by sql/khanza_grants.sql (MariaDB) and sql/website_grants_postgresql.sql
are enough to run the sync flow end to end, and they cannot drop, delete or rewrite what is not theirs.

The test users are named ks_test_<random> and dropped at the end.
"""
from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import create_engine, exc, text

from khanza_sync.settings import PROJECT_ROOT
from khanza_sync.sqlfiles import statements
from website import master_data, store

from tests import support as root  # the shared test helpers (base_settings, ...)

KHANZA_GRANTS = PROJECT_ROOT / "sql" / "khanza_grants.sql"
WEBSITE_GRANTS = PROJECT_ROOT / "sql" / "website_grants_postgresql.sql"
DEMO_NIK, DEMO_CARD = "3310014107800001", "0001234567890"  # the desk's existing patient in the demo data


def _root_connection(database: str) -> pymysql.connections.Connection:
    cfg = root.base_settings()
    return pymysql.connect(host=cfg.khanza_db_host, port=cfg.khanza_db_port, user=cfg.khanza_db_user,
                           password=cfg.khanza_db_password.get_secret_value(), database=database, autocommit=True)


def khanza_grant_statements(user: str, password: str | None) -> list[str]:
    body = re.sub(r"(?<!\w)khanza_sync(?!\w)", user, KHANZA_GRANTS.read_text())
    assert "'khanza_sync'" not in body.replace("''", "'"), "the test must never create the real user"
    if password is not None:
        body = body.replace("SET @khanza_sync_password = NULL;",
                            f"SET @khanza_sync_password = '{password}';", 1)
    return statements(Path(_write_tmp(body)))


def _write_tmp(body: str) -> str:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    handle.write(body)
    handle.close()
    return handle.name


@contextmanager
def root_connection_dropping(user: str):
    """A root connection to the test Khanza database; `user` is dropped (if made) before it closes."""
    conn = _root_connection(root.KHANZA_TEST_DB)
    try:
        yield conn
    finally:
        with conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        conn.close()


@pytest.fixture
def khanza_user(khanza):
    """A MariaDB user made by sql/khanza_grants.sql on the test Khanza database."""
    user, password = f"ks_test_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    with root_connection_dropping(user) as conn:
        with conn.cursor() as cur:
            for stmt in khanza_grant_statements(user, password):
                cur.execute(stmt)
        yield user, password


@pytest.fixture
def website_role(postgres_url):
    """A PostgreSQL role made by sql/website_grants_postgresql.sql on a fresh website table."""
    role, password = f"ks_test_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    admin = store.make_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS online_registrations")
        for table in master_data.TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    store.create_schema(admin)
    master_data.create_tables(admin)  # the owner creates the website tables; the role only fills them
    body = (WEBSITE_GRANTS.read_text()
            .replace(":'khanza_sync_password'", f"'{password}'")
            .replace(':"DBNAME"', f'"{root.PG_TEST_DB}"')
            )
    body = re.sub(r"(?<!\w)khanza_sync(?!\w)", role, body)
    assert not re.search(r"(?<!\w)khanza_sync(?!\w)", body), "the test must never create the real role"
    try:
        with admin.begin() as conn:
            for stmt in statements(Path(_write_tmp(body))):
                conn.exec_driver_sql(stmt)
        user_url = postgres_url.replace("://postgres@", f"://{role}:{password}@")
        assert role in user_url
        yield user_url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def test_grants_file_refuses_to_run_without_a_password(khanza):
    """Left as shipped (password NULL), the script stops before any user exists."""
    user = f"ks_test_{secrets.token_hex(4)}"
    with root_connection_dropping(user) as conn:
        with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError):
            for stmt in khanza_grant_statements(user, None):
                cur.execute(stmt)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = %s", (user,))
            assert cur.fetchone()[0] == 0


def restricted_khanza_engine(user: str, password: str):
    cfg = root.base_settings(khanza_db_user=user, khanza_db_password=password)
    from khanza.db import make_engine

    return make_engine(cfg)


@pytest.mark.parametrize("statement, code", [
    ("DROP TABLE pasien", 1142),
    ("DELETE FROM pasien", 1142),
    ("DELETE FROM reg_periksa", 1142),
    ("TRUNCATE TABLE khanza_sync_ledger", 1142),
    ("DELETE FROM khanza_sync_ledger", 1142),
    ("UPDATE pasien SET nm_pasien = 'X'", 1143),
    ("UPDATE pasien SET no_ktp = '0'", 1143),
    ("INSERT INTO poliklinik VALUES ('ZZ', 'x', 0, 0, '1')", 1142),
    ("UPDATE jadwal SET kuota = 9999", 1142),
    ("UPDATE kelurahan SET nm_kel = 'X'", 1142),  # region rows are added, never changed or removed
    ("DELETE FROM kabupaten", 1142),
    ("CREATE TABLE ks_test_x (a int)", 1142),
    ("ALTER TABLE pasien ADD COLUMN x int", 1142),
    ("SELECT * FROM mysql.user", 1142),
    ("GRANT SELECT ON pasien TO CURRENT_USER", 1044),
])
def test_khanza_user_cannot_do_more(khanza_user, statement, code):
    engine = restricted_khanza_engine(*khanza_user)
    try:
        with engine.begin() as conn, pytest.raises(exc.DBAPIError) as refused:
            conn.exec_driver_sql(statement)
        assert refused.value.orig.args[0] in {code, 1142, 1143, 1044, 1227}
    finally:
        engine.dispose()


@pytest.mark.parametrize("statement", [
    "INSERT INTO online_registrations (id, nik) VALUES ('ks-x', '1')",
    "DELETE FROM online_registrations",
    "DROP TABLE online_registrations",
    "TRUNCATE online_registrations",
    "UPDATE online_registrations SET nik = '0000000000000000'",
    "UPDATE online_registrations SET full_name = 'X'",
    "CREATE TABLE ks_test_x (a int)",
])
def test_website_role_cannot_do_more(website_role, statement):
    engine = create_engine(website_role)
    try:
        with engine.begin() as conn, pytest.raises(exc.ProgrammingError) as refused:
            conn.exec_driver_sql(statement)
        assert type(refused.value.orig).__name__ == "InsufficientPrivilege"  # SQLSTATE 42501, not a typo
    finally:
        engine.dispose()


@pytest.fixture
def flow_as_restricted_users(monkeypatch, khanza_user, website_role, tmp_path, prefect_harness):
    user, password = khanza_user
    yield from root.flows_as(monkeypatch, tmp_path, website_role, KHANZA_DB_USER=user, KHANZA_DB_PASSWORD=password)


@pytest.mark.parametrize("target", ["reg_periksa", "booking"])
def test_sync_flow_runs_end_to_end_as_the_restricted_users(flow_as_restricted_users, khanza, monkeypatch, target,
                                                           postgres_url):
    from flows.sync_registrations import sync_registrations

    monkeypatch.setenv("KHANZA_TARGET", target)

    tomorrow = root.hospital_today() + timedelta(days=1)
    new = root.registration(id="lp-new")
    again = root.registration(id="lp-again", nik=new["nik"], visit_date=tomorrow)  # same patient, same day
    existing = root.registration(id="lp-existing", nik=DEMO_NIK, payment="bpjs", bpjs_number=DEMO_CARD,
                                 full_name="Siti Aminah", gender="P", birth_date=date(1980, 7, 1), poliklinik="mata",
                                 doctor="dr-eko-spm")
    # with a region: its village is added to kelurahan through the INSERT grant (khanza/regions.py)
    second_new = root.registration(id="lp-second", poliklinik="anak", doctor="dr-citra-spa", village_code="3310242001")
    bad = root.registration(id="lp-bad", nik="123")
    # the owner inserts (the restricted role cannot: the website writes registrations, not the pipeline)
    root.insert_registrations(postgres_url, [new, again, existing, second_new, bad])

    root.completed(sync_registrations)

    rows = root.website_rows(postgres_url)
    assert rows.loc["lp-bad", "status"] == "rejected" and rows.loc["lp-bad", "error_code"] == "INVALID_NIK"
    for reg_id in ("lp-new", "lp-again", "lp-existing", "lp-second"):
        assert rows.loc[reg_id, "status"] == "synced", (reg_id, rows.loc[reg_id, "error_code"])
        assert rows.loc[reg_id, "no_reg"]
    assert rows.loc["lp-again", "error_code"] == "DUPLICATE_REGISTRATION"
    with khanza.connect() as conn:
        ledger = conn.execute(text("SELECT COUNT(*) FROM khanza_sync_ledger")).scalar()
        counter = conn.execute(text("SELECT no_rkm_medis FROM set_no_rkm_medis")).scalar()
        demo_umur = conn.execute(text("SELECT umur FROM pasien WHERE no_rkm_medis = '000050'")).scalar()
        region = conn.execute(text("SELECT kelurahanpj FROM pasien WHERE no_rkm_medis = :rm"),
                              {"rm": root.website_rows(postgres_url).loc["lp-second", "no_rkm_medis"]}).scalar()
    assert ledger == 4
    assert region == "SEKARSULI"
    assert counter == "000102"  # two new patients: Khanza's counter moved on (DELETE + INSERT allowed)
    if target == "reg_periksa":
        assert demo_umur != "40 Th 0 Bl 0 Hr"  # refreshed through the column grant UPDATE (umur)


def test_reconcile_and_master_data_run_as_the_restricted_users(flow_as_restricted_users, khanza, postgres_url):
    from flows.publish_master_data import publish_master_data
    from flows.reconcile_queue_numbers import reconcile_queue_numbers
    from flows.sync_registrations import sync_registrations

    root.insert_registrations(postgres_url, [root.registration(id="lp-r1"), root.registration(id="lp-r2")])
    assert sync_registrations(return_state=True).is_completed()
    web = store.make_engine(postgres_url)
    try:
        synced = root.website_rows(postgres_url)
        with khanza.begin() as conn:  # the desk cancels one visit
            conn.execute(text("UPDATE reg_periksa SET stts = 'Batal' WHERE no_rawat = :r"),
                         {"r": synced.loc["lp-r1", "no_rawat"]})
        with web.begin() as conn:  # the patient cancels the other on the website
            conn.execute(text("UPDATE online_registrations SET status = 'cancel_requested' WHERE id = 'lp-r2'"))

        root.completed(reconcile_queue_numbers)
        rows = root.website_rows(postgres_url)
        assert rows.loc["lp-r1", ["status", "error_code"]].tolist() == ["cancelled", "CANCELLED_IN_KHANZA"]
        assert rows.loc["lp-r2", "status"] == "cancelled"
        with khanza.connect() as conn:
            assert conn.execute(text("SELECT stts FROM reg_periksa WHERE no_rawat = :r"),
                                {"r": synced.loc["lp-r2", "no_rawat"]}).scalar() == "Batal"

        root.completed(publish_master_data)
        assert len(master_data.read_table(web, "khanza_clinics")) > 0
        assert len(master_data.read_table(web, "khanza_quota")) > 0
    finally:
        web.dispose()
