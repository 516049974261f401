"""Cancelling a registration in Khanza the way Khanza does it, and the reasons the website is told.

The desk cancels a visit by setting `reg_periksa.stts = 'Batal'` and `biaya_reg = 0` (DlgReg's cancel; the
row stays, and still counts toward the quota as Mobile JKN counts it). The booking dialogs remove a
cancelled booking (DlgBookingRegistrasi BtnHapus: `delete from booking_registrasi where no_rkm_medis=? and
tanggal_periksa=?`), so the patient can book that day again (one booking per patient per day). A checked-in
booking is cancelled through its visit, and its booking row is removed too. Like Khanza's own `batalantrean`
(rules.md §5) a visit that has been served, or whose date has passed, is not cancelled.

Once a booking is removed the patient may book the same day again through another website registration: a
booking row then belongs to the latest ledger registration for that patient and day, and an older one never
touches it.

A registration whose ledger outcome is `duplicate` did not create the visit (the desk or another
registration did), so cancelling it on the website never cancels that visit in Khanza.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from khanza_sync.error_codes import ErrorCode
from khanza.numbering import day_range

# Website-initiated cancellations (the only cancelled rows the sweep may finish in Khanza).
WEBSITE_CANCEL_CODES = (ErrorCode.CANCELLED.value,)


@dataclass(frozen=True)
class CancelResult:
    registration_id: str
    cancelled: bool  # the website row ends `cancelled`
    khanza_changed: bool  # this call changed a Khanza row
    reason: ErrorCode
    detail: str  # what was found, e.g. "reg_periksa stts=Sudah" (no patient data)


# ---------------------------------------------------------------- pure decisions


def decide_visit(stts: str | None, visit_day: date | None, today: date) -> tuple[bool, bool, ErrorCode, str]:
    """(cancelled, change_khanza, reason, detail) for a reg_periksa row (None = row gone)."""
    if stts is None:
        return True, False, ErrorCode.CANCELLED, "reg_periksa row already removed"
    if stts == "Batal":
        return True, False, ErrorCode.CANCELLED, "reg_periksa already Batal"
    if stts != "Belum":
        return False, False, ErrorCode.CANCEL_REFUSED_SERVED, f"reg_periksa stts={stts}"
    if visit_day is not None and visit_day < today:
        return False, False, ErrorCode.CANCEL_REFUSED_PAST, "reg_periksa date passed"
    return True, True, ErrorCode.CANCELLED, "reg_periksa stts Belum -> Batal, biaya_reg 0"


def decide_booking(status: str | None, visit_day: date | None, today: date) -> tuple[bool, bool, ErrorCode, str]:
    """Same for a booking_registrasi row that has not been checked in (Terdaftar is handled by the caller)."""
    if status is None:
        return True, False, ErrorCode.CANCELLED, "booking row already removed"
    if status in ("Batal", "Dokter Berhalangan"):
        return True, False, ErrorCode.CANCELLED, f"booking already {status}"
    if visit_day is not None and visit_day < today:
        return False, False, ErrorCode.CANCEL_REFUSED_PAST, "booking date passed"
    return True, True, ErrorCode.CANCELLED, "booking Belum removed"


# ---------------------------------------------------------------- SQL


def _visit_for_update(conn: Connection, no_rawat: str) -> dict | None:
    row = conn.execute(text("SELECT no_rawat, stts, tgl_registrasi FROM reg_periksa WHERE no_rawat = :r FOR UPDATE"),
                       {"r": no_rawat}).mappings().first()
    return dict(row) if row else None


def _booking_for_update(conn: Connection, no_rkm_medis: str, days: list[date]) -> dict | None:
    for day in days:
        if day is None:
            continue
        row = conn.execute(
            text("SELECT no_rkm_medis, tanggal_periksa, kd_poli, kd_dokter, status FROM booking_registrasi "
                 "WHERE no_rkm_medis = :rm AND tanggal_periksa = :day FOR UPDATE"),
            {"rm": no_rkm_medis, "day": day}).mappings().first()
        if row:
            return dict(row)
    return None


def _checked_in_visit(conn: Connection, no_rkm_medis: str, kd_poli: str, day: date) -> dict | None:
    lo, hi = day_range(day)
    row = conn.execute(
        text("SELECT no_rawat, stts, tgl_registrasi FROM reg_periksa WHERE no_rawat >= :lo AND no_rawat < :hi "
             "AND no_rkm_medis = :rm AND kd_poli = :poli ORDER BY (stts = 'Batal'), no_rawat LIMIT 1 FOR UPDATE"),
        {"lo": lo, "hi": hi, "rm": no_rkm_medis, "poli": kd_poli}).mappings().first()
    return dict(row) if row else None


def _set_visit_batal(conn: Connection, no_rawat: str) -> int:
    """The desk's cancel: stts 'Batal' and no registration fee."""
    return conn.execute(text("UPDATE reg_periksa SET stts = 'Batal', biaya_reg = 0 WHERE no_rawat = :r "
                             "AND stts = 'Belum'"), {"r": no_rawat}).rowcount


def _remove_booking(conn: Connection, no_rkm_medis: str, day: date, from_status: str) -> int:
    """The booking dialogs' cancel: the row is deleted (the patient may book that day again)."""
    return conn.execute(
        text("DELETE FROM booking_registrasi WHERE no_rkm_medis = :rm AND tanggal_periksa = :day "
             "AND status = :from_status"),
        {"rm": no_rkm_medis, "day": day, "from_status": from_status}).rowcount


def _booked_again(conn: Connection, entry: dict, day: date) -> bool:
    """Another, later website registration booked this patient on `day` (after ours was removed): the
    booking row there is that one's, not ours."""
    return conn.execute(
        text("SELECT 1 FROM khanza_sync_ledger WHERE no_rkm_medis = :rm AND tanggal = :day AND target = 'booking' "
             "AND outcome = 'created' AND registration_id <> :id AND created_at >= :made LIMIT 1"),
        {"rm": entry["no_rkm_medis"], "day": day, "id": entry["registration_id"],
         "made": entry["created_at"]}).first() is not None


def cancel(conn: Connection, registration_id: str, entry: dict | None, visit_date: date | None,
           today: date) -> CancelResult:
    """Cancel one registration in Khanza, in its own transaction. `entry` is its ledger row (None when it
    never reached Khanza); `visit_date` is the website's current date (the desk may have moved a booking)."""
    if entry is None:
        return CancelResult(registration_id, True, False, ErrorCode.CANCELLED, "not in Khanza")
    if entry["outcome"] == "duplicate":
        return CancelResult(registration_id, True, False, ErrorCode.CANCELLED_NOT_OWNED, "visit not created by sync")
    with conn.begin():
        if entry["target"] == "reg_periksa":
            visit = _visit_for_update(conn, entry["no_rawat"])
            cancelled, change, reason, detail = decide_visit(
                visit and visit["stts"], visit and visit["tgl_registrasi"], today)
            if change and _set_visit_batal(conn, entry["no_rawat"]) != 1:
                raise RuntimeError("reg_periksa changed while cancelling")
            return CancelResult(registration_id, cancelled, change, reason, detail)

        booking = _booking_for_update(conn, entry["no_rkm_medis"], [entry["tanggal"], visit_date])
        if booking is not None and _booked_again(conn, entry, booking["tanggal_periksa"]):
            return CancelResult(registration_id, True, False, ErrorCode.CANCELLED,
                                "booking row already removed (the day was booked again by a later registration)")
        if booking is not None and booking["status"] == "Terdaftar":
            # Checked in: the visit decides (served or not); both rows are cancelled together.
            visit = _checked_in_visit(conn, booking["no_rkm_medis"], booking["kd_poli"], booking["tanggal_periksa"])
            cancelled, change, reason, detail = decide_visit(
                visit and visit["stts"], booking["tanggal_periksa"], today)
            if change:
                _set_visit_batal(conn, visit["no_rawat"])
            if cancelled:
                change = _remove_booking(conn, booking["no_rkm_medis"], booking["tanggal_periksa"],
                                         "Terdaftar") == 1 or change
            return CancelResult(registration_id, cancelled, change, reason, "checked-in " + detail)
        cancelled, change, reason, detail = decide_booking(
            booking and booking["status"], booking and booking["tanggal_periksa"], today)
        if change and _remove_booking(conn, booking["no_rkm_medis"], booking["tanggal_periksa"], "Belum") != 1:
            raise RuntimeError("booking changed while cancelling")
        return CancelResult(registration_id, cancelled, change, reason, detail)
