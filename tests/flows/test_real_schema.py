"""Compatibility: the whole sync flow against Khanza's real table definitions (../shared/khanza/schema.sql)
and its own sample rows, in strict SQL mode. Fails under CI=true when the reference files are missing."""
from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import text, update

from flows.reconcile_queue_numbers import reconcile_queue_numbers
from flows.sync_registrations import sync_registrations
from khanza_sync.error_codes import STAFF_CHECK, ErrorCode
from tests.support import (completed, flow_run_artifacts, flows_with_mappings, hospital_today, insert_registrations, khanza_reference_db,
                           registration, website_rows)
from website import master_data, store
from website.schema import registrations

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


# ---------------------------------------------------------------- identity before linking, and what the website learns


def test_a_parents_nik_for_a_child_is_a_conflict_and_the_website_learns_nothing_about_the_nik(real_khanza,
                                                                                               real_flows):
    """000054's NIK with a child's birth date and gender: no visit on his record. The website row says only what
    it says for any registration staff must check (no record number, nothing about the NIK); the run's
    artifact and log keep the staff's detail."""
    insert_registrations(real_flows, [jarot(id="child", full_name="Ayu Kumboro", gender="Perempuan",
                                            birth_date=date(2021, 3, 4))])
    completed(sync_registrations)
    row = website_rows(real_flows).loc["child"]
    assert (row["status"], row["error_code"]) == ("rejected", "PATIENT_CONFLICT")
    assert row["last_error"] == STAFF_CHECK == ErrorCode.KHANZA_REJECTED.website_message
    assert pd.isna(row["no_rkm_medis"]) and pd.isna(row["no_rawat"]) and pd.isna(row["no_reg"])
    assert "Khanza patient" in ErrorCode.PATIENT_CONFLICT.message  # the staff's text keeps the detail
    with real_khanza.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM reg_periksa WHERE no_rkm_medis = '000054' "
                                 "AND tgl_registrasi = :d"), {"d": next_wednesday()}).scalar() == 0


# ---------------------------------------------------------------- reconcile touches only what the pipeline made, once

NIK_000054 = "3310010101900054"  # the sample patient 000054 (JAROT KUMBORO, L, 1990-01-01), given a NIK here


def jarot(**overrides) -> dict:
    """000054's own registration for next Wednesday at U0003 with dr. Qotrunnada (the seed's session)."""
    return registration(**{"nik": NIK_000054, "full_name": "Jarot Kumboro", "gender": "L",
                           "birth_date": date(1990, 1, 1), "poliklinik": "penyakit-dalam", "doctor": "dr-qotrunnada",
                           "visit_date": next_wednesday(), **overrides})


def set_web(url: str, reg_id: str, **values) -> None:
    engine = store.make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(registrations).where(registrations.c.id == reg_id).values(**values))
    engine.dispose()


def desk_books(engine, rm: str, day) -> None:
    """The desk books the patient for `day` in booking_registrasi, its own way (DlgBookingRegistrasi): same
    doctor and clinic, even the same queue number 001, written at 10:00:00 today."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO booking_registrasi VALUES (CURDATE(), '10:00:00', :rm, :d, 'D0000003', 'U0003', "
                          "'001', 'A09', 1, :w, 'Belum')"), {"rm": rm, "d": day, "w": f"{day} 10:00:00"})


def bookings(engine, day) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT no_rkm_medis, tanggal_booking, jam_booking, no_reg, status FROM booking_registrasi "
            "WHERE tanggal_periksa = :d ORDER BY no_rkm_medis"), {"d": day})]


@pytest.fixture
def real_flows(real_khanza, website_url, tmp_path, monkeypatch):
    with real_khanza.begin() as conn:
        conn.execute(text("UPDATE pasien SET no_ktp = :nik WHERE no_rkm_medis = '000054'"), {"nik": NIK_000054})
    flows_with_mappings(monkeypatch, tmp_path, REAL_DB, website_url, poliklinik="penyakit-dalam: U0003\n",
                        dokter="dr-qotrunnada: D0000003\n")
    return website_url


def test_a_desk_booking_after_an_online_cancellation_survives_every_reconcile(real_khanza, real_flows, monkeypatch):
    """Booking mode. 000054 cancels his online booking (cancel_requested) and another patient's row is cancelled
    by the website itself (the sweep): reconcile deletes both bookings, once. The desk then books both patients
    for the same day its own way (same doctor, even the same number): no later reconcile run touches them, also
    when the ledger has no record of the first cancellation (an installation upgraded from an older release)."""
    monkeypatch.setenv("KHANZA_TARGET", "booking")
    day = next_wednesday()
    insert_registrations(real_flows, [jarot(id="online"), jarot(id="swept", nik="3310010101900099",
                                                                full_name="Ani Lestari", gender="P")])
    completed(sync_registrations)
    web = website_rows(real_flows)
    assert list(web["status"]) == ["synced", "synced"] and web.loc["online", "no_rkm_medis"] == "000054"
    other = web.loc["swept", "no_rkm_medis"]
    set_web(real_flows, "online", status="cancel_requested")
    set_web(real_flows, "swept", status="cancelled")
    first = completed(reconcile_queue_numbers)
    assert "1 cancellations done" in first.message and bookings(real_khanza, day) == []
    assert website_rows(real_flows).loc["online", ["status", "error_code"]].tolist() == ["cancelled", "CANCELLED"]

    desk_books(real_khanza, "000054", day)
    desk_books(real_khanza, other, day)
    desks = bookings(real_khanza, day)
    after = website_rows(real_flows)
    for _ in range(3):
        state = completed(reconcile_queue_numbers)
        assert bookings(real_khanza, day) == desks  # the desk's bookings stay, unchanged
        pd.testing.assert_frame_equal(website_rows(real_flows), after)
        assert "not_ours_left_alone" not in state.message  # decided once: Khanza is not looked at again

    # every reconcile run also tells the website the places left as the loader counts them (the desk's two)
    assert quota_row(real_flows, day)[["registered", "remaining"]].tolist() == [2, 28]

    with real_khanza.begin() as conn:  # no record, as after an upgrade: identity alone keeps the desk's booking
        conn.execute(text("UPDATE khanza_sync_ledger SET cancel_result = NULL, cancel_decided_at = NULL"))
    reported = completed(reconcile_queue_numbers)
    assert bookings(real_khanza, day) == desks and "not_ours_left_alone=2" in reported.message  # both, once
    again = completed(reconcile_queue_numbers)
    assert bookings(real_khanza, day) == desks and "not_ours_left_alone" not in again.message


def test_a_row_cancelled_while_deferred_is_finished_in_khanza_once(real_khanza, real_flows):
    """The reverse gap: a sync committed the visit, the link dropped before the write-back, and the website
    cancelled the row while it carried KHANZA_UNREACHABLE. Reconcile finds the visit by its no_rawat in the
    ledger and cancels it as the desk does, once."""
    insert_registrations(real_flows, [jarot(id="deferred")])
    completed(sync_registrations)
    no_rawat = website_rows(real_flows).loc["deferred", "no_rawat"]
    set_web(real_flows, "deferred", status="cancelled", error_code="KHANZA_UNREACHABLE", no_rawat=None, no_reg=None)
    completed(reconcile_queue_numbers)
    with real_khanza.connect() as conn:
        visit = conn.execute(text("SELECT stts, biaya_reg FROM reg_periksa WHERE no_rawat = :r"), {"r": no_rawat}).one()
        record = conn.execute(text("SELECT cancel_result FROM khanza_sync_ledger WHERE registration_id = 'deferred'"))
        assert (tuple(visit), record.scalar()) == (("Batal", 0), "CANCELLED")
    # the desk serves the patient anyway (stts back to Belum, then Sudah): a later run does not act again
    with real_khanza.begin() as conn:
        conn.execute(text("UPDATE reg_periksa SET stts = 'Belum' WHERE no_rawat = :r"), {"r": no_rawat})
    completed(reconcile_queue_numbers)
    with real_khanza.connect() as conn:
        assert conn.execute(text("SELECT stts FROM reg_periksa WHERE no_rawat = :r"), {"r": no_rawat}).scalar() == "Belum"


# ---------------------------------------------------------------- the quota the website shows


def quota_row(url: str, day) -> pd.Series:
    """The website's published remaining quota of dr. Qotrunnada at U0003 on `day`."""
    engine = store.make_engine(url)
    try:
        quota = master_data.read_table(engine, "khanza_quota")
    finally:
        engine.dispose()
    quota["visit_date"] = pd.to_datetime(quota["visit_date"]).dt.date
    return quota[(quota["visit_date"] == day) & (quota["kd_dokter"] == "D0000003")].iloc[0]


def test_a_sync_burst_refreshes_the_websites_quota_of_the_days_it_filled(real_khanza, real_flows):
    insert_registrations(real_flows, [jarot(id="q-1"), jarot(id="q-2", nik="3310010101900096")])
    completed(sync_registrations)
    row = quota_row(real_flows, next_wednesday())
    assert (row["kd_poli"], row["kuota"], row["registered"], row["remaining"]) == ("U0003", 30, 2, 28)


# ---------------------------------------------------------------- created_at checked


def test_a_created_at_missing_or_in_the_future_is_caught(real_khanza, real_flows):
    """A website writing local time (WIB, UTC+7) as UTC: the row waits (pending, CREATED_AT_IN_FUTURE, with a retry
    time) and the run says once by how much; a created_at that is no timestamp (SQLite stores any text) is
    rejected INVALID_CREATED_AT. Neither reaches Khanza; the other row is synced."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    regs = [jarot(id="clock-local", created_at=now + timedelta(hours=7)), jarot(id="clock-ok", nik="3310010101900098")]
    if real_flows.startswith("sqlite"):
        regs.append(jarot(id="clock-junk", nik="3310010101900097", created_at="kemarin"))
    insert_registrations(real_flows, regs)
    state = completed(sync_registrations)
    web = website_rows(real_flows)
    assert web.loc["clock-local", ["status", "error_code"]].tolist() == ["pending", "CREATED_AT_IN_FUTURE"]
    assert pd.notna(web.loc["clock-local", "next_attempt_at"])
    assert "website clock or time zone off: created_at up to 7.0 h ahead of UTC on 1 registrations" in state.message
    assert web.loc["clock-ok", "status"] == "synced"
    if real_flows.startswith("sqlite"):
        assert web.loc["clock-junk", ["status", "error_code"]].tolist() == ["rejected", "INVALID_CREATED_AT"]
    with real_khanza.connect() as conn:
        ledger_ids = {r[0] for r in conn.execute(text("SELECT registration_id FROM khanza_sync_ledger"))}
    assert ledger_ids == {"clock-ok"}


# ---------------------------------------------------------------- the patient's region (issue 25)

REGION_TABLES = ("kelurahan", "kecamatan", "kabupaten", "propinsi")


def artifact_count(state, label: str) -> int:
    """The count the run's sync-outcomes artifact gives `label` (0 when it has no such row)."""
    rows = json.loads(flow_run_artifacts(state)["sync-outcomes-default"].data)
    return next((r["count"] for r in rows if r["outcome"] == label), 0)


ADDED = "region names added to Khanza"


def region_rows(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in REGION_TABLES}


def test_new_patients_regions_as_khanza_records_them(real_khanza, real_flows):
    wednesday = next_wednesday()
    visit = dict(poliklinik="penyakit-dalam", doctor="dr-qotrunnada", visit_date=wednesday)
    before = region_rows(real_khanza)
    # Codes only, as a form with cascading lists sends them: all four rows exist in the seed (GUWOSARI, PAJANGAN,
    # KABUPATEN BANTUL in the hospital's own spelling, DI YOGYAKARTA)
    by_code = registration(id="reg-codes", address="Jl. Bantul 3", village_code="3402072003", **visit)
    # Names only, a village Khanza lacks in a regency it has: one kelurahan row added
    by_name = registration(id="reg-names", address="Jl. Pemuda 5", village="Sekarsuli",
                           district="Kec. Klaten Utara", regency="Kab. Klaten", province="Jawa Tengah", **visit)
    wrong = registration(id="reg-wrong", village="Sekarsuli", district="Pajangan", regency="Bantul", **visit)
    unknown_code = registration(id="reg-unknown", regency_code="3399", **visit)
    plain = registration(id="reg-plain", address="Jl. Merapi 1", **visit)
    insert_registrations(real_flows, [by_code, by_name, wrong, unknown_code, plain])
    state = completed(sync_registrations)
    web = website_rows(real_flows)
    assert list(web.loc[["reg-codes", "reg-names", "reg-plain"], "status"]) == ["synced"] * 3, list(web["error_code"])
    assert web.loc["reg-wrong", "error_code"] == ErrorCode.INCONSISTENT_REGION.value
    assert web.loc["reg-wrong", "last_error"] == ErrorCode.INCONSISTENT_REGION.message
    assert " / " in ErrorCode.INCONSISTENT_REGION.message  # Indonesian / English, as every staff message
    assert web.loc["reg-unknown", "error_code"] == ErrorCode.INVALID_REGION.value
    assert region_rows(real_khanza) == {**before, "kelurahan": before["kelurahan"] + 1}
    assert artifact_count(state, ADDED) == 1  # the run's artifact counts the names added

    def patient_of(reg_id):
        with real_khanza.connect() as conn:
            return conn.execute(text(
                "SELECT p.kd_kel, p.kd_kec, p.kd_kab, p.kd_prop, p.kelurahanpj, p.kecamatanpj, p.kabupatenpj, "
                "p.propinsipj, r.almt_pj FROM pasien p JOIN reg_periksa r USING (no_rkm_medis) "
                "WHERE p.no_rkm_medis = :rm"), {"rm": website_rows(real_flows).loc[reg_id, "no_rkm_medis"]}).one()

    coded = patient_of("reg-codes")
    assert tuple(coded[:4]) == (1441, 500, 387, 469)
    assert tuple(coded[4:8]) == ("GUWOSARI", "PAJANGAN", "KABUPATEN BANTUL", "DI YOGYAKARTA")
    # as the desk builds it: address, village, district, regency (DlgReg)
    assert coded.almt_pj == "Jl. Bantul 3, GUWOSARI, PAJANGAN, KABUPATEN BANTUL"
    named = patient_of("reg-names")
    with real_khanza.connect() as conn:
        sekarsuli = conn.execute(text("SELECT kd_kel FROM kelurahan WHERE nm_kel = 'SEKARSULI'")).scalar()
    assert tuple(named[:4]) == (sekarsuli, 2, 2, 3) and sekarsuli is not None
    assert tuple(named[4:8]) == ("SEKARSULI", "KLATEN UTARA", "KLATEN", "JAWA TENGAH")
    assert named.almt_pj == "Jl. Pemuda 5, SEKARSULI, KLATEN UTARA, KLATEN"
    plain_row = patient_of("reg-plain")  # no region: exactly as before
    assert tuple(plain_row[:8]) == (1, 1, 1, 1, "-", "-", "-", "-") and plain_row.almt_pj == "Jl. Merapi 1, -, -, -"

    # The same regions spelt otherwise, by name and by code: no new row
    again = [registration(id="reg-again", village="SEKARSULI", district="KLATEN UTARA", regency="KABUPATEN KLATEN",
                          province="Provinsi Jawa Tengah", **visit),
             registration(id="reg-again-code", village_code="33.10.24.2001", **visit)]
    insert_registrations(real_flows, again)
    state = completed(sync_registrations)
    assert list(website_rows(real_flows).loc[["reg-again", "reg-again-code"], "status"]) == ["synced", "synced"]
    assert region_rows(real_khanza) == {**before, "kelurahan": before["kelurahan"] + 1}
    assert artifact_count(state, ADDED) == 0
    assert tuple(patient_of("reg-again")[:4]) == tuple(named[:4]) == tuple(patient_of("reg-again-code")[:4])


def test_an_existing_patients_region_is_kept_and_the_difference_reported(real_khanza, real_flows):
    # 000054 (the seed's patient, NIK set by real_flows) lives where the desk recorded it (DUKUH, KLATEN UTARA,
    # KLATEN, JAWA TENGAH); the website says Guwosari, Bantul
    with real_khanza.begin() as conn:
        conn.execute(text("UPDATE pasien SET kd_kel = 3, kd_kec = 2, kd_kab = 2, kd_prop = 3 WHERE no_rkm_medis = '000054'"))
        before = conn.execute(text("SELECT * FROM pasien WHERE no_rkm_medis = '000054'")).one()._asdict()
    regions_before = region_rows(real_khanza)
    r = registration(id="reg-existing", nik=NIK_000054, full_name=before["nm_pasien"], gender=before["jk"],
                     birth_date=before["tgl_lahir"], poliklinik="penyakit-dalam", doctor="dr-qotrunnada",
                     visit_date=next_wednesday(), village_code="3402072003")
    insert_registrations(real_flows, [r])
    state = completed(sync_registrations)
    web = website_rows(real_flows)
    assert web.loc["reg-existing", "status"] == "synced" and web.loc["reg-existing", "no_rkm_medis"] == "000054"
    with real_khanza.connect() as conn:
        after = conn.execute(text("SELECT * FROM pasien WHERE no_rkm_medis = '000054'")).one()._asdict()
    before.pop("umur"), after.pop("umur")  # refreshed after a visit, as the desktop does
    assert after == before  # never overwritten
    assert region_rows(real_khanza) == regions_before  # nothing added for an existing patient
    assert artifact_count(state, ADDED) == 0
    findings = json.loads(flow_run_artifacts(state)["sync-findings-default"].data)
    assert findings == [{"registration_id": "reg-existing",
                         "finding": "province differs, regency differs, district differs, village differs"}]
