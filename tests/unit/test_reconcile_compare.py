"""Reconcile's pure part (khanza/reconcile.py): where a ledger entry's visit or booking stands now (`locate`)
and what the website row must change (`compare`). In memory; the snapshot is what reconcile would have read."""
from datetime import date, datetime, timedelta

import pytest

from khanza.reconcile import KhanzaState, Snapshot, as_date, cancelled_reason, compare, locate, mask
from mappings import Mappings

TODAY = date(2026, 11, 27)
DAY = date(2026, 11, 30)
MAPS = Mappings(poliklinik={"penyakit-dalam": "INT", "interna": "INT", "mata": "MATA"},
                dokter={"dr-budi": "D001", "dr-citra": "D002"}, penjab={"umum": "A09"})


def web(**overrides) -> dict:
    return {"id": "web-1", "status": "synced", "poliklinik": "penyakit-dalam", "doctor": "dr-budi",
            "visit_date": DAY.isoformat(), "no_reg": "003", "no_rawat": "2026/11/30/000007", "no_rkm_medis": "000050",
            "local_queue_number": None, **overrides}


def visit_state(**overrides) -> KhanzaState:
    values = dict(exists=True, kind="visit", status="Belum", kd_poli="INT", kd_dokter="D001", tanggal=DAY,
                  no_reg="003", no_rawat="2026/11/30/000007", no_rkm_medis="000050")
    return KhanzaState(**{**values, **overrides})


ENTRY = {"registration_id": "web-1", "target": "reg_periksa", "no_rawat": "2026/11/30/000007"}


def test_nothing_changed_nothing_to_do():
    assert compare(web(), ENTRY, visit_state(), MAPS, TODAY) == (None, [])


def test_synced_row_without_ledger_entry_is_a_finding_not_a_change():
    change, findings = compare(web(), None, None, MAPS, TODAY)
    assert change is None
    assert [(f.kind, f.registration_id, f.visit_date) for f in findings] == [("synced_without_visit", "web-1", DAY)]


@pytest.mark.parametrize("state, code", [
    (KhanzaState(exists=False), "DELETED_IN_KHANZA"),
    (visit_state(status="Batal"), "CANCELLED_IN_KHANZA"),
    (visit_state(kind="booking", status="Batal"), "CANCELLED_IN_KHANZA"),
    (visit_state(kind="booking", status="Dokter Berhalangan"), "DOCTOR_UNAVAILABLE"),
    (visit_state(kind="booking", status="Terdaftar", visit_status="Batal"), "CANCELLED_IN_KHANZA"),
])
def test_cancelled_in_khanza_cancels_the_website_row(state, code):
    change, findings = compare(web(), ENTRY, state, MAPS, TODAY)
    assert change["status"] == "cancelled" and change["error_code"] == code and change["reason"] == code
    assert change["expected_status"] == "synced" and findings == []


@pytest.mark.parametrize("state", [visit_state(status="Sudah"), visit_state(kind="booking", status="Belum"),
                                   visit_state(kind="booking", status="Terdaftar", visit_status="Sudah")])
def test_live_rows_are_not_cancelled(state):
    assert cancelled_reason(state) is None


def test_numbers_and_date_moved_by_the_desk_are_copied():
    state = visit_state(tanggal=DAY + timedelta(days=1), no_reg="011", no_rawat="2026/11/30/000009")
    change, findings = compare(web(), ENTRY, state, MAPS, TODAY)
    assert change == {"id": "web-1", "expected_status": "synced", "visit_date": DAY + timedelta(days=1),
                      "no_reg": "011", "no_rawat": "2026/11/30/000009",
                      "reason": "changed in Khanza: no_rawat,no_reg,visit_date"}
    assert findings == []


def test_moved_clinic_keeps_a_slug_that_already_maps_there_else_the_first_by_name():
    assert compare(web(poliklinik="interna"), ENTRY, visit_state(), MAPS, TODAY) == (None, [])  # still INT
    change, _ = compare(web(poliklinik="mata"), ENTRY, visit_state(), MAPS, TODAY)
    assert change["poliklinik"] == "interna"  # 'interna' < 'penyakit-dalam'
    change, _ = compare(web(), ENTRY, visit_state(kd_dokter="D002"), MAPS, TODAY)
    assert change["doctor"] == "dr-citra" and change["reason"] == "changed in Khanza: doctor"


def test_a_khanza_code_without_a_slug_is_reported_and_that_column_left():
    change, findings = compare(web(), ENTRY, visit_state(kd_poli="GIGI", kd_dokter="D009"), MAPS, TODAY)
    assert change is None
    assert sorted(f.detail for f in findings) == ["kd_dokter D009", "kd_poli GIGI"]
    assert {f.kind for f in findings} == {"unmapped_khanza_code"}


def test_record_number_filled_only_when_the_website_has_none():
    assert compare(web(no_rkm_medis="000050"), ENTRY, visit_state(no_rkm_medis="000099"), MAPS, TODAY) == (None, [])
    change, _ = compare(web(no_rkm_medis="  "), ENTRY, visit_state(), MAPS, TODAY)
    assert change["no_rkm_medis"] == "000050"


def test_provisional_queue_number_differing_is_reported_until_the_visit_day():
    state = visit_state()
    _, findings = compare(web(local_queue_number="001"), ENTRY, state, MAPS, TODAY)
    assert [(f.kind, f.detail) for f in findings] == [("provisional_number_differs", "provisional 001 -> final 003")]
    assert compare(web(local_queue_number="003"), ENTRY, state, MAPS, TODAY) == (None, [])
    _, findings = compare(web(local_queue_number="001"), ENTRY, state, MAPS, DAY + timedelta(days=1))
    assert findings == []  # the visit is over: nobody to tell


def test_checked_in_booking_without_its_visit_is_reported():
    state = visit_state(kind="booking", status="Terdaftar", no_rawat=None)
    _, findings = compare(web(no_rawat=None), ENTRY, state, MAPS, TODAY)
    assert [f.kind for f in findings] == ["checked_in_visit_missing"]


@pytest.mark.parametrize("value, expected", [("2026-11-30", DAY), (datetime(2026, 11, 30, 8), DAY), (DAY, DAY),
                                             ("2026-02-30", None), ("junk", None), (None, None), (float("nan"), None)])
def test_website_dates_junk_becomes_none(value, expected):
    assert as_date(value) == expected


def test_mask_keeps_the_last_four():
    assert (mask("000050123"), mask("123"), mask(None)) == ("*****0123", "123", "")


# ---------------------------------------------------------------- locate


def visit_row(no_rawat: str, stts: str = "Belum", kd_poli: str = "INT", no_reg: str = "003") -> dict:
    return {"no_rawat": no_rawat, "no_reg": no_reg, "tgl_registrasi": DAY, "kd_dokter": "D001", "kd_poli": kd_poli,
            "no_rkm_medis": "000050", "stts": stts}


def booking(tanggal: date, status: str = "Belum", made: datetime = datetime(2026, 11, 27, 10, 5, 7)) -> dict:
    return {"no_rkm_medis": "000050", "tanggal_periksa": tanggal, "tanggal_booking": made.date(),
            "jam_booking": timedelta(hours=made.hour, minutes=made.minute, seconds=made.second),
            "kd_dokter": "D001", "kd_poli": "INT", "no_reg": "004", "status": status}


BOOKED = {"registration_id": "web-1", "target": "booking", "no_rawat": None, "no_rkm_medis": "000050",
          "tanggal": DAY, "created_at": datetime(2026, 11, 27, 10, 5, 7)}


def test_locate_a_visit_by_its_no_rawat():
    snap = Snapshot(visits={"2026/11/30/000007": visit_row("2026/11/30/000007", stts="Sudah")})
    state = locate(ENTRY, DAY, snap, set())
    assert (state.exists, state.kind, state.status, state.no_reg) == (True, "visit", "Sudah", "003")
    assert locate({**ENTRY, "no_rawat": "2026/11/30/000008"}, DAY, snap, set()).exists is False


def test_locate_a_booking_on_the_ledgers_date_then_the_websites_then_by_when_it_was_made():
    snap = Snapshot()
    snap.bookings["000050"] = [booking(DAY)]
    assert locate(BOOKED, None, snap, set()).tanggal == DAY
    moved = DAY + timedelta(days=2)
    snap.bookings["000050"] = [booking(moved)]
    assert locate(BOOKED, moved, snap, set()).tanggal == moved  # the website already knows the new date
    assert locate(BOOKED, DAY, snap, set()).tanggal == moved  # found by tanggal_booking + jam_booking
    snap.bookings["000050"] = [booking(moved, made=datetime(2026, 11, 27, 10, 5, 8))]
    assert locate(BOOKED, DAY, snap, set()).exists is False  # another booking of the same patient


def test_locate_skips_a_booking_another_ledger_entry_owns():
    snap = Snapshot()
    moved = DAY + timedelta(days=2)
    snap.bookings["000050"] = [booking(moved)]
    assert locate(BOOKED, moved, snap, {("000050", moved)}).exists is False


def test_checked_in_booking_takes_its_live_visits_numbers():
    snap = Snapshot()
    snap.bookings["000050"] = [booking(DAY, status="Terdaftar")]
    snap.patient_visits["000050"] = [visit_row("2026/11/30/000002", stts="Batal", no_reg="001"),
                                     visit_row("2026/11/30/000005", no_reg="009"),
                                     visit_row("2026/11/30/000001", kd_poli="MATA", no_reg="002")]
    state = locate(BOOKED, DAY, snap, set())
    assert (state.kind, state.no_rawat, state.visit_status, state.no_reg) == ("booking", "2026/11/30/000005",
                                                                              "Belum", "009")
    assert cancelled_reason(state) is None
