"""Plain helpers shared by the test folders (imported as `tests.support`): settings for the test
databases, fake registrations, reading and writing the website table.

A missing service skips locally but fails under CI=true: CI must never pass by skipping.
"""
from __future__ import annotations

import os
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from khanza_sync.settings import Settings
from website import store
from website.schema import registrations

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
        for row in rows:  # one statement each: rows may name different columns
            conn.execute(insert(registrations).values(**row))
    engine.dispose()
