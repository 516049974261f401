"""Compatibility with an older Khanza: the whole sync flow against sql/khanza_older_schema.sql (penjab without a
status column, no set_urut_no_rkm_medis, no set_validasi_registrasi, no kamar_inap: see its header), and a
Khanza lacking something essential stopping the batch before anything is written, with one line naming it."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import text

from flows.sync_registrations import sync_registrations
from khanza.db import make_engine
from khanza.setup import recreate_database
from khanza_sync.settings import PROJECT_ROOT
from tests.support import (base_settings, completed, flows_with_mappings, hospital_today, insert_registrations,
                           registration, website_rows)

OLDER_SCHEMA = PROJECT_ROOT / "sql" / "khanza_older_schema.sql"
OLDER_DB = os.environ.get("KHANZA_TEST_DB", "khanza_sync_test") + "_older"
# Khanza schemas under test: the website side is the same flow on every database (on MariaDB: the other flow tests)
pytestmark = pytest.mark.parametrize("website_url", ["sqlite", "postgresql"], indirect=True)

SEED = [
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_TRANS_TABLES'",
    "INSERT INTO propinsi VALUES (1,'-')", "INSERT INTO kabupaten VALUES (1,'-')",
    "INSERT INTO kecamatan VALUES (1,'-')", "INSERT INTO kelurahan VALUES (1,'-')",
    "INSERT INTO penjab VALUES ('-','-','-','-','-',''),('A09','UMUM','-','-','-','-'),('BPJ','BPJS','-','-','-','-')",
    "INSERT INTO perusahaan_pasien VALUES ('-','-','-','-','0')",
    "INSERT INTO suku_bangsa VALUES (1,'-')", "INSERT INTO bahasa_pasien VALUES (1,'-')",
    "INSERT INTO cacat_fisik VALUES (1,'-')", "INSERT INTO spesialis VALUES ('-','-')",
    "INSERT INTO poliklinik VALUES ('-','-',0,0,'1'),('INT','Poli Penyakit Dalam',15000,10000,'1')",
    "INSERT INTO dokter (kd_dokter,nm_dokter,jk,email,kd_sps,status) VALUES ('D001','dr. Ahmad, Sp.PD','L','','-','1')",
    "INSERT INTO set_no_rkm_medis VALUES ('000100')",
]


@pytest.fixture
def older_khanza(khanza_server):
    settings = base_settings()
    recreate_database(settings, OLDER_DB, OLDER_SCHEMA)
    engine = make_engine(settings, database=OLDER_DB)
    with engine.begin() as conn:
        for stmt in SEED:
            conn.exec_driver_sql(stmt)
        for hari in ("SENIN", "SELASA", "RABU", "KAMIS", "JUMAT", "SABTU", "AKHAD"):
            conn.execute(text("INSERT INTO jadwal VALUES ('D001', :h, '08:00:00', '14:00:00', 'INT', 30)"), {"h": hari})
    yield engine
    engine.dispose()


@pytest.fixture
def older_flow(older_khanza, website_url, tmp_path, monkeypatch):
    flows_with_mappings(monkeypatch, tmp_path, OLDER_DB, website_url, poliklinik="penyakit-dalam: INT\n",
                        dokter="dr-ahmad-sppd: D001\n")
    monkeypatch.chdir(tmp_path)
    return website_url


def test_sync_flow_end_to_end_on_an_older_khanza(older_khanza, older_flow):
    tomorrow = hospital_today() + timedelta(days=1)
    insert_registrations(older_flow, [registration(id="old-1"), registration(id="old-2", payment="bpjs",
                                                                            bpjs_number="0009876543210")])
    completed(sync_registrations)
    web = website_rows(older_flow)
    assert list(web.loc[["old-1", "old-2"], "status"]) == ["synced", "synced"], list(web["error_code"])
    # no set_urut_no_rkm_medis: Straight numbering after the counter, as Khanza did before the setting existed
    assert sorted(web.loc[["old-1", "old-2"], "no_rkm_medis"]) == ["000101", "000102"]
    with older_khanza.connect() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
        visits = conn.execute(text("SELECT r.no_reg, r.stts_daftar, r.biaya_reg, p.tgl_daftar, p.kd_pj FROM reg_periksa r "
                                   "JOIN pasien p USING (no_rkm_medis) WHERE r.tgl_registrasi = :d ORDER BY r.no_reg"),
                              {"d": tomorrow}).all()
        counter = conn.execute(text("SELECT no_rkm_medis FROM set_no_rkm_medis")).scalar()
    assert [(v.no_reg, v.stts_daftar, v.biaya_reg, v.tgl_daftar) for v in visits] == [
        ("001", "Baru", 15000, tomorrow), ("002", "Baru", 15000, tomorrow)]
    assert sorted(v.kd_pj for v in visits) == ["A09", "BPJ"] and counter == "000102"


def test_a_khanza_missing_something_essential_stops_before_writing(older_khanza, older_flow):
    with older_khanza.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE jadwal DROP COLUMN kuota")
    insert_registrations(older_flow, [registration(id="old-x")])
    state = sync_registrations(return_state=True)
    assert not state.is_completed()
    assert "jadwal.kuota" in state.message, state.message
    with older_khanza.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM pasien")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM reg_periksa")).scalar() == 0
    assert website_rows(older_flow).loc["old-x", "status"] == "pending"


def test_a_new_patients_region_on_an_older_khanza(older_khanza, older_flow):
    # The older Khanza has only the '-' rows: the four names are added once, with AUTO_INCREMENT ids, and a second
    # patient with the same region spelt otherwise adds nothing
    tomorrow = hospital_today() + timedelta(days=1)
    insert_registrations(older_flow, [registration(id="old-region", address="Jl. Pemuda 5", village_code="3310242001")])
    completed(sync_registrations)
    insert_registrations(older_flow, [registration(id="old-region-2", village="sekarsuli", district="Klaten Utara",
                                                   regency="KAB. KLATEN", province="PROVINSI JAWA TENGAH")])
    completed(sync_registrations)
    web = website_rows(older_flow)
    assert list(web.loc[["old-region", "old-region-2"], "status"]) == ["synced", "synced"], list(web["error_code"])
    with older_khanza.connect() as conn:
        names = {t: sorted(r[0] for r in conn.execute(text(f"SELECT {c} FROM {t}")))
                 for t, c in (("kelurahan", "nm_kel"), ("kecamatan", "nm_kec"), ("kabupaten", "nm_kab"),
                              ("propinsi", "nm_prop"))}
        found = conn.execute(text(
            "SELECT kel.nm_kel, kec.nm_kec, kab.nm_kab, prop.nm_prop, p.kelurahanpj, p.kecamatanpj, p.kabupatenpj, "
            "p.propinsipj, r.almt_pj FROM pasien p JOIN kelurahan kel USING (kd_kel) JOIN kecamatan kec USING (kd_kec) "
            "JOIN kabupaten kab USING (kd_kab) JOIN propinsi prop USING (kd_prop) "
            "JOIN reg_periksa r ON r.no_rkm_medis = p.no_rkm_medis WHERE r.tgl_registrasi = :d ORDER BY p.no_rkm_medis"),
            {"d": tomorrow}).all()
    assert names == {"kelurahan": ["-", "SEKARSULI"], "kecamatan": ["-", "KLATEN UTARA"], "kabupaten": ["-", "KLATEN"],
                     "propinsi": ["-", "JAWA TENGAH"]}
    region = ("SEKARSULI", "KLATEN UTARA", "KLATEN", "JAWA TENGAH")
    assert [tuple(row[:8]) for row in found] == [region * 2, region * 2]
    assert found[0].almt_pj == "Jl. Pemuda 5, SEKARSULI, KLATEN UTARA, KLATEN"
