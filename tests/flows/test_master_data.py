"""publish_master_data: Khanza's active clinics, doctors, schedules and remaining quota land in the website
database (SQLite and PostgreSQL, tables created by the flow), and stale mapping entries are reported."""
from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from flows.publish_master_data import publish_master_data
from flows.sync_registrations import sync_registrations
from tests.support import (completed, extra_mappings, flow_run_artifacts, hospital_today, insert_registrations,
                           registration)
from website import master_data, store


@pytest.fixture
def fresh_master(flow_env):
    """No master tables yet: the flow must create them."""
    engine = store.make_engine(flow_env)
    with engine.begin() as conn:
        for table in master_data.TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    engine.dispose()
    return flow_env


def read(url, table) -> pd.DataFrame:
    engine = store.make_engine(url)
    try:
        return master_data.read_table(engine, table)
    finally:
        engine.dispose()


def test_master_data_tables_filled_and_quota_counts_registrations(fresh_master, khanza):
    tomorrow = hospital_today() + timedelta(days=1)
    insert_registrations(fresh_master, [registration(id=f"q{i}") for i in range(3)])
    assert sync_registrations(return_state=True).is_completed()
    with khanza.begin() as conn:  # a desk cancellation: the visit still counts (Mobile JKN counts Batal rows)
        conn.execute(text("UPDATE reg_periksa SET stts = 'Batal' ORDER BY no_rawat LIMIT 1"))

    state = completed(publish_master_data, days_ahead=7)
    assert state.message.startswith("published 10 clinics, 12 doctors, 78 sessions")

    clinics = read(fresh_master, "khanza_clinics").set_index("kd_poli")
    assert "LAMA" not in clinics.index and "-" not in clinics.index  # inactive clinic, placeholder
    assert clinics.loc["OBG", "slug"] == "kandungan" and clinics.loc["INT", "nm_poli"] == "Poli Penyakit Dalam"
    doctors = read(fresh_master, "khanza_doctors").set_index("kd_dokter")
    assert "D099" not in doctors.index and doctors.loc["D001", "slug"] == "dr-ahmad-sppd"
    schedules = read(fresh_master, "khanza_schedules")
    d012 = schedules[schedules["kd_dokter"] == "D012"]
    assert d012[["hari_kerja", "jam_mulai", "jam_selesai", "kuota"]].values.tolist() == [
        ["RABU", "08:00:00", "12:00:00", 2]]

    quota = read(fresh_master, "khanza_quota")
    quota["visit_date"] = pd.to_datetime(quota["visit_date"]).dt.date
    assert set(quota["visit_date"]) == {hospital_today() + timedelta(days=d) for d in range(8)}
    assert len(quota) == 8 * 11 + 1 + (hospital_today().weekday() == 2)  # 11 daily sessions, D012 on Wednesdays
    row = quota[(quota["visit_date"] == tomorrow) & (quota["kd_dokter"] == "D001")].iloc[0]
    assert (row["kuota"], row["registered"], row["remaining"]) == (30, 3, 27)  # 3 synced, 1 of them cancelled

    # Publishing again gives the same rows (a snapshot, not an append).
    assert publish_master_data(days_ahead=7, return_state=True).is_completed()
    again = read(fresh_master, "khanza_quota")
    again["visit_date"] = pd.to_datetime(again["visit_date"]).dt.date
    cols = ["visit_date", "kd_dokter", "kd_poli", "kuota", "registered", "remaining"]
    pd.testing.assert_frame_equal(again[cols].sort_values(cols).reset_index(drop=True),
                                  quota[cols].sort_values(cols).reset_index(drop=True))


def test_stale_mapping_entries_are_reported(fresh_master, khanza, monkeypatch, tmp_path):
    extra_mappings(monkeypatch, tmp_path, dokter="dr-pensiun: D099\ndr-hantu: D777\n",
                   poliklinik="poli-tutup: LAMA\n", penjab="lama: X01\n")
    with khanza.begin() as conn:  # a doctor without any schedule any more
        conn.execute(text("DELETE FROM jadwal WHERE kd_dokter = 'D010'"))

    state = completed(publish_master_data, days_ahead=3)
    assert "5 mapping problems" in state.message

    arts = flow_run_artifacts(state)
    assert {"master-data-summary-default", "master-data-mapping-problems-default", "master-data-quota-default"} <= set(arts)
    found = {(p["slug"], p["code"]): p["problem"] for p in json.loads(arts["master-data-mapping-problems-default"].data)}
    assert found == {
        ("dr-pensiun", "D099"): "inactive in Khanza (status 0)",
        ("dr-hantu", "D777"): "unknown code: not in Khanza",
        ("poli-tutup", "LAMA"): "inactive in Khanza (status 0)",
        ("lama", "X01"): "inactive in Khanza (status 0)",
        ("dr-joko-sptht", "D010"): "active but no schedule (jadwal): nothing to book",
    }
    doctors = read(fresh_master, "khanza_doctors").set_index("kd_dokter")
    assert "D010" in doctors.index  # still an active doctor; only unbookable


def test_the_region_names_khanza_knows_are_published(fresh_master, khanza):
    # A registration adds a village Khanza lacked: the next publish offers it with the demo's own rows
    insert_registrations(fresh_master, [registration(id="reg-region", village_code="3310242001")])
    assert sync_registrations(return_state=True).is_completed()
    state = completed(publish_master_data, days_ahead=1)
    assert state.message.endswith(", 5 region names")
    regions = read(fresh_master, "khanza_regions")
    with khanza.connect() as conn:
        sekarsuli = conn.execute(text("SELECT kd_kel FROM kelurahan WHERE nm_kel = 'SEKARSULI'")).scalar()
    assert sorted(map(tuple, regions[["level", "id", "name"]].values.tolist())) == sorted([
        ("village", 3, "DUKUH"), ("village", sekarsuli, "SEKARSULI"), ("district", 2, "KLATEN UTARA"),
        ("regency", 2, "KLATEN"), ("province", 3, "JAWA TENGAH")])  # the '-' placeholders are not offered
    assert completed(publish_master_data, days_ahead=1).message.endswith(", 5 region names")  # a snapshot


def test_without_the_new_region_table_the_rest_is_still_published(flow_env, khanza, monkeypatch):
    # The website's owner made the older master tables and the pipeline may not create tables: it publishes the rest
    from sqlalchemy import exc as sa_exc

    from website import schema

    engine = store.make_engine(flow_env)
    master_data.create_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS khanza_regions")
    engine.dispose()

    def refuse(engine, tables):
        raise sa_exc.DBAPIError("CREATE TABLE khanza_regions", {}, Exception("permission denied"))
    monkeypatch.setattr(schema, "create", refuse)
    state = completed(publish_master_data, days_ahead=1)
    assert state.message.startswith("published 10 clinics") and "region names" not in state.message
    assert len(read(flow_env, "khanza_clinics")) == 10
