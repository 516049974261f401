"""Compatibility: the whole sync flow against Khanza's real table definitions (../shared/khanza/schema.sql)
and its own sample rows, in strict SQL mode. Fails under CI=true when the reference files are missing."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import text

from flows.sync_registrations import sync_registrations
from tests.support import (completed, flows_with_mappings, hospital_today, insert_registrations, khanza_reference_db,
                           registration, website_rows)

REAL_DB = os.environ.get("KHANZA_TEST_DB", "khanza_sync_test") + "_real"
# Khanza schemas under test: the website side is the same flow on every database (on MariaDB: the other flow tests)
pytestmark = pytest.mark.parametrize("website_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def real_khanza(khanza_server):
    engine = khanza_reference_db(REAL_DB)
    yield engine
    engine.dispose()


def next_wednesday():
    day = hospital_today() + timedelta(days=1)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day


def test_sync_against_the_real_khanza_schema(real_khanza, website_url, tmp_path, monkeypatch):
    # The seed's own codes: clinic U0003, dr. Qotrunnada D0000003 (Wednesdays, kuota 30), payer A09 / BPJ.
    flows_with_mappings(monkeypatch, tmp_path, REAL_DB, website_url, poliklinik="penyakit-dalam: U0003\n",
                        dokter="dr-qotrunnada: D0000003\ndr-hilyatul: D0000004\n")
    wednesday = next_wednesday()
    regs = [registration(id="real-new", poliklinik="penyakit-dalam", doctor="dr-qotrunnada", visit_date=wednesday,
                         full_name="Ani Lestari", gender="Perempuan"),
            registration(id="real-bpjs", poliklinik="penyakit-dalam", doctor="dr-qotrunnada", visit_date=wednesday,
                         payment="bpjs", bpjs_number="0009876543210"),
            registration(id="real-noschedule", poliklinik="penyakit-dalam", doctor="dr-hilyatul",
                         visit_date=wednesday)]
    insert_registrations(website_url, regs)
    completed(sync_registrations)

    web = website_rows(website_url)
    assert web.loc["real-noschedule", "error_code"] == "NO_SCHEDULE"
    with real_khanza.connect() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
        visits = {r.no_rawat: r for r in conn.execute(text("SELECT * FROM reg_periksa WHERE tgl_registrasi = :d"),
                                                      {"d": wednesday})}
        counter = conn.execute(text("SELECT no_rkm_medis FROM set_no_rkm_medis")).scalar()
        patients = conn.execute(text("SELECT no_rkm_medis, kd_pj, no_peserta FROM pasien WHERE no_rkm_medis IN "
                                     "('000063', '000064') ORDER BY no_rkm_medis")).all()
    for reg_id in ("real-new", "real-bpjs"):
        row = web.loc[reg_id]
        assert row["status"] == "synced", row["error_code"]
        visit = visits[row["no_rawat"]]
        assert (visit.no_reg, visit.no_rkm_medis, visit.kd_poli, visit.kd_dokter) == (
            row["no_reg"], row["no_rkm_medis"], "U0003", "D0000003")
    # the seed's counter is 000062 (Straight, no prefix): the next two patients are 000063 and 000064
    assert sorted(web.loc[["real-new", "real-bpjs"], "no_rkm_medis"]) == ["000063", "000064"] and counter == "000064"
    assert [(p.kd_pj, p.no_peserta) for p in patients] == [("A09", ""), ("BPJ", "0009876543210")]
