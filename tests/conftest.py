"""Shared fixtures: a real MariaDB (Khanza), real PostgreSQL and SQLite (website).

A missing service skips locally but fails under CI=true: CI must never pass by skipping.
"""
from __future__ import annotations

import os
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from khanza.db import make_engine as make_khanza_engine
from khanza.setup import DEMO_DATA, create_demo_database, run_sql_file
from settings import Settings
from website import store

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
KHANZA_TEST_DB = os.environ.get("KHANZA_TEST_DB", "khanza_sync_test")
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = os.environ.get("PG_TEST_DB", "khanza_sync_test")
TRANSACTIONAL_TABLES = ["khanza_sync_ledger", "booking_registrasi", "reg_periksa", "pasien", "jadwal",
                        "set_no_rkm_medis", "set_urut_no_rkm_medis", "dokter", "poliklinik", "penjab",
                        "spesialis", "perusahaan_pasien", "suku_bangsa", "bahasa_pasien", "cacat_fisik",
                        "kelurahan", "kecamatan", "kabupaten", "propinsi"]


def unavailable(what: str, error: Exception):
    message = f"{what} is not available: {type(error).__name__}: {error}"
    if CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def base_settings(**overrides) -> Settings:
    values = dict(khanza_db_host=os.environ.get("KHANZA_DB_HOST", "127.0.0.1"),
                  khanza_db_port=int(os.environ.get("KHANZA_DB_PORT", "3306")),
                  khanza_db_user=os.environ.get("KHANZA_DB_USER", "root"),
                  khanza_db_password=os.environ.get("KHANZA_DB_PASSWORD", ""),
                  khanza_db_name=KHANZA_TEST_DB, khanza_retries=1, khanza_retry_delay_seconds=0.1,
                  booking_same_day_cutoff_hour=None, _env_file=None)
    values.update(overrides)
    return Settings(**values)


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
        url = f"sqlite:///{tmp_path / 'website.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = store.make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS online_registrations")
        engine.dispose()
    engine = store.make_engine(url)
    store.create_schema(engine)
    engine.dispose()
    return url


def hospital_today() -> date:
    return datetime.now(ZoneInfo("Asia/Jakarta")).date()


def registration(**overrides) -> dict:
    """A valid website registration for tomorrow at the internal-medicine clinic (fake data)."""
    base = {
        "id": f"web-{uuid.uuid4().hex[:12]}",
        "created_at": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5),
        "nik": "3310" + str(uuid.uuid4().int)[:12],
        "full_name": "Budi Santoso",
        "birth_date": date(1985, 3, 14),
        "gender": "Laki-laki",
        "phone": "0812-3456-7890",
        "address": "Jl. Pemuda No. 5, Klaten",
        "birth_place": "Klaten",
        "mother_name": "Sri Wahyuni",
        "email": "budi@example.com",
        "poliklinik": "penyakit-dalam",
        "doctor": "dr-ahmad-sppd",
        "visit_date": hospital_today() + timedelta(days=1),
        "payment": "umum",
        "bpjs_number": None,
        "local_queue_number": None,
    }
    base.update(overrides)
    return base


def website_rows(url: str):
    """The website table as a DataFrame indexed by registration id."""
    engine = store.make_engine(url)
    try:
        return store.fetch_rows(engine).set_index("id")
    finally:
        engine.dispose()


def insert_registrations(url: str, rows: list[dict]) -> None:
    engine = store.make_engine(url)
    with engine.begin() as conn:
        for row in rows:
            cols = ", ".join(row)
            conn.execute(text(f"INSERT INTO online_registrations ({cols}) VALUES ({', '.join(':' + c for c in row)})"),
                         row)
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness():
    """The one Prefect test harness of the session (~12 s to start). Flow test folders request it from
    their conftest with an autouse fixture; never start a second one (harnesses must not nest)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
