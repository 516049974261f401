"""Cancelling a registration in Khanza the way Khanza does it, once, touching only what the pipeline wrote.

The desk cancels a visit by setting `reg_periksa.stts = 'Batal'` and `biaya_reg = 0` (DlgReg's cancel; the
row stays, and still counts toward the quota as Mobile JKN counts it). The booking dialogs remove a
cancelled booking (DlgBookingRegistrasi BtnHapus: `delete from booking_registrasi where no_rkm_medis=? and
tanggal_periksa=?`), so the patient can book that day again (one booking per patient per day). Like Khanza's
own `batalantrean` (rules.md §5) a visit that has been served, or whose date has passed, is not cancelled.

Only what the ledger says the pipeline wrote, by its exact identity, is ever changed:
- a visit: its `no_rawat`;
- a booking: the patient, the day (the ledger's, or the website's when the desk moved it), the doctor, the
  `no_reg` and the time it was written (`tanggal_booking` + `jam_booking` = the ledger's `created_at`).
Anything else found for that patient and day (the desk's own booking made after ours was cancelled, ours
changed at the desk, the visit the desk made when checking a booking in) is reported and left alone.

Each decision is recorded in the ledger (`cancel_result`) in the transaction that carried it out, so every
later run answers from the record and never looks in Khanza for that registration again.

A registration whose ledger outcome is `duplicate` did not create the visit (the desk or another
registration did), so cancelling it on the website never cancels that visit in Khanza.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, text

from khanza import ledger
from khanza_sync.error_codes import ErrorCode

# Website rows that are `cancelled` but were not cancelled because of Khanza (reconcile sets these when Khanza
# had already cancelled, deleted or never owned the visit): every other one, whatever error code it carried
# when the website cancelled it (none, CANCELLED, or a deferral's: KHANZA_UNREACHABLE...), may hold a visit a
# sync made before the website cancelled it, and is finished in Khanza once (the ledger decides).
KHANZA_SIDE_CODES = (ErrorCode.CANCELLED_IN_KHANZA.value, ErrorCode.DELETED_IN_KHANZA.value,
                     ErrorCode.DOCTOR_UNAVAILABLE.value, ErrorCode.CANCELLED_NOT_OWNED.value)
# Recorded decisions that leave the website row `cancelled` (the others are refusals: the row stays synced).
CANCELLED_RESULTS = (ErrorCode.CANCELLED, ErrorCode.CANCELLED_NOT_OWNED)


@dataclass(frozen=True)
class CancelResult:
    registration_id: str
    cancelled: bool  # the website row ends `cancelled`
    khanza_changed: bool  # this call changed a Khanza row
    reason: ErrorCode
    detail: str  # what was found, e.g. "reg_periksa stts=Sudah" (no patient data)
    left_alone: str | None = None  # found for that patient and day, not the pipeline's: reported, not changed


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
    """Same for the pipeline's own booking_registrasi row (None = not there any more)."""
    if status is None:
        return True, False, ErrorCode.CANCELLED, "booking row already removed"
    if status in ("Batal", "Dokter Berhalangan"):
        return True, False, ErrorCode.CANCELLED, f"booking already {status}"
    if status == "Terdaftar":  # the desk checked it in and made a visit of it: the desk cancels that
        return False, False, ErrorCode.CANCEL_REFUSED_CHECKED_IN, "booking Terdaftar (checked in at the desk)"
    if visit_day is not None and visit_day < today:
        return False, False, ErrorCode.CANCEL_REFUSED_PAST, "booking date passed"
    return True, True, ErrorCode.CANCELLED, "booking Belum removed"


def written_at(booking: dict) -> datetime | None:
    """When a booking row was written: tanggal_booking + jam_booking (PyMySQL gives TIME as a timedelta)."""
    day, clock = booking.get("tanggal_booking"), booking.get("jam_booking")
    if day is None or clock is None:
        return None
    if isinstance(clock, timedelta):
        return datetime.combine(day, datetime.min.time()) + clock
    return datetime.combine(day, clock)


def _same_time(booking: dict, entry: dict) -> bool:
    """The booking was written when the ledger says (`created_at`, kept to the second). A ledger time older
    releases stored with a fraction that a MySQL server rounded up is one second after the booking's."""
    made = ledger.written_local(entry)  # created_at is UTC: the booking's columns are hospital time
    if made is None:
        return False
    made = made.replace(microsecond=0)
    return written_at(booking) in (made, made - timedelta(seconds=1))


def differs(booking: dict, entry: dict) -> list[str]:
    """Which of the booking's identity fields differ from what the ledger entry wrote (names only); the patient
    and day are how it was found."""
    found = []
    if booking["kd_dokter"] != entry["kd_dokter"]:
        found.append("kd_dokter")
    if (booking["no_reg"] or "") != (entry["no_reg"] or ""):
        found.append("no_reg")
    if not _same_time(booking, entry):
        found.append("time written")
    return found


def is_ours(booking: dict, entry: dict) -> bool:
    """The booking is exactly the one the ledger entry wrote."""
    return not differs(booking, entry)


def recorded(registration_id: str, result: str) -> CancelResult:
    """The answer a recorded decision gives: nothing in Khanza is looked at or changed again."""
    reason = ErrorCode(result)
    return CancelResult(registration_id, reason in CANCELLED_RESULTS, False, reason,
                        f"decided by an earlier run ({result}); Khanza not looked at again")


# ---------------------------------------------------------------- SQL


def _visit_for_update(conn: Connection, no_rawat: str) -> dict | None:
    row = conn.execute(text("SELECT no_rawat, stts, tgl_registrasi FROM reg_periksa WHERE no_rawat = :r FOR UPDATE"),
                       {"r": no_rawat}).mappings().first()
    return dict(row) if row else None


def _bookings_for_update(conn: Connection, no_rkm_medis: str, days: list[date]) -> list[dict]:
    """The patient's bookings on `days` (at most one a day: the key is patient + day), locked."""
    found = []
    for day in dict.fromkeys(d for d in days if d is not None):
        row = conn.execute(
            text("SELECT no_rkm_medis, tanggal_periksa, tanggal_booking, jam_booking, kd_poli, kd_dokter, no_reg, "
                 "status FROM booking_registrasi WHERE no_rkm_medis = :rm AND tanggal_periksa = :day FOR UPDATE"),
            {"rm": no_rkm_medis, "day": day}).mappings().first()
        if row:
            found.append(dict(row))
    return found


def _set_visit_batal(conn: Connection, no_rawat: str) -> int:
    """The desk's cancel: stts 'Batal' and no registration fee."""
    return conn.execute(text("UPDATE reg_periksa SET stts = 'Batal', biaya_reg = 0 WHERE no_rawat = :r "
                             "AND stts = 'Belum'"), {"r": no_rawat}).rowcount


def _remove_booking(conn: Connection, booking: dict) -> int:
    """The booking dialogs' cancel: the row is deleted (the patient may book that day again). The statement
    names the booking's whole identity, so no other row can ever be removed by it."""
    return conn.execute(
        text("DELETE FROM booking_registrasi WHERE no_rkm_medis = :rm AND tanggal_periksa = :day AND kd_dokter = :dr "
             "AND no_reg = :no_reg AND tanggal_booking = :made_day AND jam_booking = :made_time AND status = 'Belum'"),
        {"rm": booking["no_rkm_medis"], "day": booking["tanggal_periksa"], "dr": booking["kd_dokter"],
         "no_reg": booking["no_reg"], "made_day": booking["tanggal_booking"],
         "made_time": written_at(booking).time()}).rowcount


def cancel(conn: Connection, registration_id: str, entry: dict | None, visit_date: date | None,
           today: date, now_utc: datetime | None = None) -> CancelResult:
    """Cancel one registration in Khanza, in its own transaction, once. `entry` is its ledger row (None when it
    never reached Khanza); `visit_date` is the website's current date (the desk may have moved a booking). The
    decision is recorded in the ledger in the same transaction; a registration already decided is answered
    from the record."""
    if entry is None:
        return CancelResult(registration_id, True, False, ErrorCode.CANCELLED, "not in Khanza")
    if entry["outcome"] == "duplicate":
        return CancelResult(registration_id, True, False, ErrorCode.CANCELLED_NOT_OWNED, "visit not created by sync")
    with conn.begin():
        earlier = ledger.cancel_record_for_update(conn, registration_id)
        if earlier:
            return recorded(registration_id, earlier)
        result = _decide(conn, registration_id, entry, visit_date, today)
        ledger.record_cancel(conn, registration_id, result.reason.value,
                             now_utc or datetime.now(timezone.utc).replace(tzinfo=None))
    return result


def _decide(conn: Connection, registration_id: str, entry: dict, visit_date: date | None, today: date) -> CancelResult:
    if entry["target"] == "reg_periksa":
        visit = _visit_for_update(conn, entry["no_rawat"])
        cancelled, change, reason, detail = decide_visit(visit and visit["stts"], visit and visit["tgl_registrasi"],
                                                         today)
        if change and _set_visit_batal(conn, entry["no_rawat"]) != 1:
            raise RuntimeError("reg_periksa changed while cancelling")
        return CancelResult(registration_id, cancelled, change, reason, detail)

    found = _bookings_for_update(conn, entry["no_rkm_medis"], [entry["tanggal"], visit_date])
    ours = next((b for b in found if is_ours(b, entry)), None)
    others = [b for b in found if b is not ours]
    left_alone = "; ".join(f"booking {b['tanggal_periksa']} status {b['status']} is not the pipeline's "
                           f"({', '.join(differs(b, entry))} differ): left alone" for b in others) or None
    if ours is None and others:  # ours is gone; what is there was made or changed at the desk
        return CancelResult(registration_id, True, False, ErrorCode.CANCELLED_NOT_OWNED,
                            "the pipeline's booking is not there; another booking of that patient and day is",
                            left_alone)
    cancelled, change, reason, detail = decide_booking(ours and ours["status"], ours and ours["tanggal_periksa"],
                                                       today)
    if change and _remove_booking(conn, ours) != 1:
        raise RuntimeError("booking changed while cancelling")
    return CancelResult(registration_id, cancelled, change, reason, detail, left_alone)
