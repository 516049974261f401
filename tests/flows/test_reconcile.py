"""reconcile_queue_numbers on MariaDB (Khanza) + SQLite and PostgreSQL (website), real Prefect engine.

Each test syncs registrations with the real sync flow, then changes Khanza the way the desk does (or the
website the way the website does) and checks what the reconcile run writes and reports.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text, update

from flows.reconcile_queue_numbers import reconcile_queue_numbers
from flows.sync_registrations import sync_registrations
from tests.support import (completed, flow_run_artifacts, hospital_today, insert_registrations, registration,
                           website_rows)
from website import store
from website.schema import registrations

KHANZA_TABLES = ["reg_periksa", "booking_registrasi", "pasien", "khanza_sync_ledger"]


def set_web(url, reg_id, **values) -> None:
    engine = store.make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(registrations).where(registrations.c.id == reg_id).values(**values))
    engine.dispose()


def khanza_exec(khanza, sql, **params):
    with khanza.begin() as conn:
        return conn.execute(text(sql), params).rowcount


def khanza_checksums(khanza) -> dict:
    with khanza.connect() as conn:
        return {t: conn.execute(text(f"CHECKSUM TABLE {t}")).fetchone()[1] for t in KHANZA_TABLES}


def desk_visit(khanza, *, no_rawat, no_reg, day, kd_dokter, kd_poli, rm, stts="Belum"):
    """A visit as the desktop writes it (only the columns that matter here, NOT NULLs filled)."""
    khanza_exec(khanza, "INSERT INTO reg_periksa (no_reg, no_rawat, tgl_registrasi, jam_reg, kd_dokter, no_rkm_medis, "
                "kd_poli, p_jawab, almt_pj, hubunganpj, biaya_reg, stts, stts_daftar, status_lanjut, kd_pj, "
                "umurdaftar, sttsumur, status_bayar, status_poli) VALUES (:no_reg, :no_rawat, :day, '08:00:00', "
                ":dokter, :rm, :poli, '-', '-', 'SAUDARA', 10000, :stts, 'Lama', 'Ralan', 'A09', 40, 'Th', "
                "'Belum Bayar', 'Lama')", no_reg=no_reg, no_rawat=no_rawat, day=day, dokter=kd_dokter, rm=rm,
                poli=kd_poli, stts=stts)


def synced(url, regs: list[dict]) -> pd.DataFrame:
    """`regs` put on the website and loaded by a completed sync run; the website rows afterwards."""
    insert_registrations(url, regs)
    completed(sync_registrations)
    return website_rows(url)


def reconcile(**params):
    return completed(reconcile_queue_numbers, **params)


def assert_next_run_changes_nothing(url, after: pd.DataFrame, says: str) -> None:
    """A second reconcile run finds nothing more to do (`says` is in its message) and leaves the website
    rows as they were (`after`)."""
    again = reconcile()
    assert says in again.message
    pd.testing.assert_frame_equal(website_rows(url), after)


def assert_cancelled_on_both_sides(khanza, khanza_status_sql: str, url, reg_id: str) -> None:
    """Khanza's row (the one `khanza_status_sql` reads) is Batal and the website row is cancelled."""
    with khanza.connect() as conn:
        assert conn.execute(text(khanza_status_sql)).scalar() == "Batal"
    assert website_rows(url).loc[reg_id, "status"] == "cancelled"


def findings_of(state) -> pd.DataFrame:
    """The run's reconcile-findings table."""
    arts = flow_run_artifacts(state)
    assert "reconcile-findings-default" in arts, "no artifact reconcile-findings"
    data = arts["reconcile-findings-default"].data
    return pd.DataFrame(json.loads(data) if isinstance(data, str) else data)


@pytest.fixture
def booking_mode(monkeypatch, flow_env):
    monkeypatch.setenv("KHANZA_TARGET", "booking")
    return flow_env


# ---------------------------------------------------------------- Khanza -> website


def test_cancelled_or_deleted_in_khanza_reaches_website(flow_env, khanza):
    web = synced(flow_env, [registration(id=f"k{i}") for i in range(3)])
    khanza_exec(khanza, "UPDATE reg_periksa SET stts = 'Batal' WHERE no_rawat = :r", r=web.loc["k0", "no_rawat"])
    khanza_exec(khanza, "DELETE FROM reg_periksa WHERE no_rawat = :r", r=web.loc["k1", "no_rawat"])  # Mobile JKN style
    before = khanza_checksums(khanza)

    state = reconcile()
    assert "3 synced rows checked" in state.message and "2 cancelled/deleted in Khanza" in state.message
    after = website_rows(flow_env)
    assert after.loc["k0", ["status", "error_code"]].tolist() == ["cancelled", "CANCELLED_IN_KHANZA"]
    assert after.loc["k1", ["status", "error_code"]].tolist() == ["cancelled", "DELETED_IN_KHANZA"]
    assert after.loc["k2", "status"] == "synced" and pd.isna(after.loc["k2", "error_code"])
    assert khanza_checksums(khanza) == before  # reconcile never changed Khanza

    assert_next_run_changes_nothing(flow_env, after,
                                    "1 synced rows checked, 0 updated from Khanza, 0 cancelled/deleted")


def test_doctor_clinic_date_and_queue_number_changes_reach_website(flow_env, khanza):
    web = synced(flow_env, [registration(id="move", local_queue_number="LCL-0001"), registration(id="odd"),
                            registration(id="same")])
    moved_day = hospital_today() + timedelta(days=3)
    # The desk moves one visit to another internist, two days later, with a new queue number...
    khanza_exec(khanza, "UPDATE reg_periksa SET kd_dokter = 'D011', tgl_registrasi = :d, no_reg = '007' "
                "WHERE no_rawat = :r", d=moved_day, r=web.loc["move", "no_rawat"])
    # ...and another to the retired doctor the website has no slug for.
    khanza_exec(khanza, "UPDATE reg_periksa SET kd_dokter = 'D099' WHERE no_rawat = :r", r=web.loc["odd", "no_rawat"])

    state = reconcile()
    after = website_rows(flow_env)
    assert after.loc["move", "doctor"] == "dr-kartika-sppd"
    assert pd.to_datetime(after.loc["move", "visit_date"]).date() == moved_day
    assert after.loc["move", "no_reg"] == "007" and after.loc["move", "status"] == "synced"
    assert after.loc["move", "local_queue_number"] == "LCL-0001"  # the website's own number is kept
    assert after.loc["odd", "doctor"] == "dr-ahmad-sppd"  # no slug for D099: not guessed...
    assert after.loc["same"].equals(web.loc["same"])
    assert "unmapped_khanza_code=1" in state.message  # ...reported instead
    assert "provisional_number_differs=1" in state.message

    findings = findings_of(state)
    assert set(findings["finding"]) == {"unmapped_khanza_code", "provisional_number_differs"}
    assert findings.set_index("finding").loc["unmapped_khanza_code", "registration_id"] == "odd"
    assert "LCL-0001 -> final 007" in findings.set_index("finding").loc["provisional_number_differs", "detail"]

    assert_next_run_changes_nothing(flow_env, after, "0 updated from Khanza")


def test_booking_checked_in_moved_and_cancelled_in_khanza(booking_mode, khanza):
    web = synced(booking_mode, [registration(id=f"b{i}") for i in range(3)])
    assert web["no_rawat"].isna().all() and (web["status"] == "synced").all()
    day = hospital_today() + timedelta(days=1)
    rm0, rm1, rm2 = (web.loc[f"b{i}", "no_rkm_medis"] for i in range(3))
    # b0 checks in at the kiosk: a visit reusing the booked number, booking Terdaftar.
    no_rawat = day.strftime("%Y/%m/%d/") + "000001"
    desk_visit(khanza, no_rawat=no_rawat, no_reg=web.loc["b0", "no_reg"], day=day, kd_dokter="D001",
               kd_poli="INT", rm=rm0)
    khanza_exec(khanza, "UPDATE booking_registrasi SET status = 'Terdaftar' WHERE no_rkm_medis = :rm", rm=rm0)
    # b1's booking is moved by the desk to another day (its primary key changes).
    moved = day + timedelta(days=2)
    khanza_exec(khanza, "UPDATE booking_registrasi SET tanggal_periksa = :d WHERE no_rkm_medis = :rm", d=moved, rm=rm1)
    # b2: the doctor cannot come.
    khanza_exec(khanza, "UPDATE booking_registrasi SET status = 'Dokter Berhalangan' WHERE no_rkm_medis = :rm", rm=rm2)

    reconcile()
    after = website_rows(booking_mode)
    assert after.loc["b0", "no_rawat"] == no_rawat and after.loc["b0", "status"] == "synced"
    assert pd.to_datetime(after.loc["b1", "visit_date"]).date() == moved
    assert after.loc["b2", ["status", "error_code"]].tolist() == ["cancelled", "DOCTOR_UNAVAILABLE"]

    assert_next_run_changes_nothing(booking_mode, after, "0 updated from Khanza")


# ---------------------------------------------------------------- website -> Khanza (cancellations)


def test_cancel_requests_are_done_the_khanza_way(flow_env, khanza):
    web = synced(flow_env, [registration(id=f"c{i}") for i in range(3)])
    insert_registrations(flow_env, [registration(id="never-synced", status="cancel_requested")])
    khanza_exec(khanza, "UPDATE reg_periksa SET stts = 'Sudah' WHERE no_rawat = :r", r=web.loc["c1", "no_rawat"])
    for reg_id in ("c0", "c1"):
        set_web(flow_env, reg_id, status="cancel_requested")

    state = reconcile()
    assert "2 cancellations done, 1 refused" in state.message
    after = website_rows(flow_env)
    with khanza.connect() as conn:
        stts = dict(conn.execute(text("SELECT no_rawat, stts FROM reg_periksa")).fetchall())
        ledger_ids = {r[0] for r in conn.execute(text("SELECT registration_id FROM khanza_sync_ledger"))}
    assert stts[web.loc["c0", "no_rawat"]] == "Batal"  # not served: cancelled as the desk does (row kept)
    assert after.loc["c0", ["status", "error_code"]].tolist() == ["cancelled", "CANCELLED"]
    assert stts[web.loc["c1", "no_rawat"]] == "Sudah"  # served: not cancelled, reason written back
    assert after.loc["c1", ["status", "error_code"]].tolist() == ["synced", "CANCEL_REFUSED_SERVED"]
    assert "served" in after.loc["c1", "last_error"]
    assert stts[web.loc["c2", "no_rawat"]] == "Belum" and after.loc["c2", "status"] == "synced"
    assert after.loc["never-synced", "status"] == "cancelled" and "never-synced" not in ledger_ids
    assert len(stts) == 3

    assert_next_run_changes_nothing(flow_env, after, "0 cancellations done, 0 refused")


def test_cancel_request_for_a_booking(booking_mode, khanza):
    synced(booking_mode, [registration(id="bk")])
    set_web(booking_mode, "bk", status="cancel_requested")
    reconcile()
    with khanza.connect() as conn:  # the booking dialogs delete a cancelled booking (DlgBookingRegistrasi)
        assert conn.execute(text("SELECT COUNT(*) FROM booking_registrasi")).scalar() == 0
    assert website_rows(booking_mode).loc["bk", "status"] == "cancelled"


def test_cancelled_while_being_loaded_is_finished_in_khanza(flow_env, khanza):
    """The website cancelled a row while a sync run was loading it: the visit exists, the row says cancelled."""
    synced(flow_env, [registration(id="race")])
    set_web(flow_env, "race", status="cancelled", error_code=None)
    reconcile()
    assert_cancelled_on_both_sides(khanza, "SELECT stts FROM reg_periksa", flow_env, "race")


# ---------------------------------------------------------------- findings, Khanza untouched


def test_suspicious_things_are_reported_not_fixed(flow_env, khanza):
    web = synced(flow_env, [registration(id="a"), registration(id="gone-from-website")])
    day = hospital_today() + timedelta(days=1)
    # A walk-in at the desk got the same queue number for the same doctor that day.
    desk_visit(khanza, no_rawat=day.strftime("%Y/%m/%d/") + "000099", no_reg=web.loc["a", "no_reg"], day=day,
               kd_dokter="D001", kd_poli="INT", rm="000050")
    engine = store.make_engine(flow_env)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM online_registrations WHERE id = 'gone-from-website'"))
    engine.dispose()
    insert_registrations(flow_env, [registration(id="ghost", status="synced", no_reg="005")])
    before = khanza_checksums(khanza)

    state = reconcile()
    assert khanza_checksums(khanza) == before
    findings = findings_of(state)
    kinds = dict(zip(findings["finding"], findings["registration_id"]))
    assert kinds["ledger_without_website_row"] == "gone-from-website"
    assert kinds["synced_without_visit"] == "ghost"
    shared = findings[findings["finding"] == "shared_no_reg"]
    assert len(shared) == 1 and f"no_reg={web.loc['a', 'no_reg']}" in shared.iloc[0]["detail"]
    assert "kd_dokter=D001" in shared.iloc[0]["detail"]
    assert website_rows(flow_env).loc["ghost", "status"] == "synced"  # reported, not changed
