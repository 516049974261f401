"""Read-only views of Khanza that the website is compared against, and the pure comparison.

* Reconciliation: where each synced registration stands in Khanza now (its visit via the ledger's
  `no_rawat`, or its booking), what the website must change, and the findings reported without
  touching Khanza (two live visits sharing a no_reg, a synced row with no visit, a ledger visit
  with no website row).
* Master data for the website: active clinics, doctors, weekly schedules, remaining quota per day (read and
  decided by the loader's own code: `read_quota`), and the mapping entries that no longer match Khanza.

Every query here is a SELECT. Queries on reg_periksa go through its primary key (a no_rawat prefix range
covers a day) or the no_rkm_medis index, never a scan on tgl_registrasi.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pandas as pd
from sqlalchemy import Connection, select, text

import mappings as mapping_files
from khanza_sync.error_codes import ErrorCode
from khanza_sync.privacy import mask_identifier
from khanza import ledger, masterdata
from khanza.numbering import booking_scope, day_range, no_rawat_day, no_rawat_prefix, read_days, scope_columns
from khanza.schedule import HARI_KERJA, quota_rows
from khanza.tables import BOOKING_REGISTRASI, LEDGER, REG_PERIKSA

# ---------------------------------------------------------------- findings


@dataclass
class Finding:
    """Something suspicious reported to the data team, never fixed automatically. Ids and codes only."""

    kind: str
    registration_id: str | None = None
    detail: str = ""
    visit_date: date | None = None

    def as_row(self) -> dict:
        return {"finding": self.kind, "registration_id": self.registration_id or "",
                "visit_date": self.visit_date.isoformat() if self.visit_date else "", "detail": self.detail}


FINDING_MEANING = {
    "shared_no_reg": "Two live visits/bookings share one queue number in the same scope and day (Khanza not changed)",
    "synced_without_visit": "Website says synced but Khanza has no ledger entry for it",
    "ledger_without_website_row": "Khanza Sync made this visit but the website has no such registration",
    "checked_in_visit_missing": "Booking is Terdaftar (checked in) but its visit was not found",
    "unmapped_khanza_code": "Khanza moved the registration to a clinic/doctor with no website slug; that column was not updated",
    "provisional_number_differs": "The website's provisional queue number differs from Khanza's final no_reg (tell the patient the final one)",
    "cancel_refused": "A cancellation was requested but the visit has been served or its date passed",
    "cancelled_but_live": "Cancelled on the website, still live in Khanza and could not be cancelled there",
    "not_ours_left_alone": "Cancelling: Khanza holds a booking of that patient and day the pipeline did not write "
                           "(the desk's, or ours changed at the desk); left alone, cancel it at the desk if needed",
}


mask = mask_identifier  # the last 4 characters of an identifier (e.g. no_rkm_medis), the rest starred


# ---------------------------------------------------------------- ledger


def ledger_entries(conn: Connection, ids: list[str], lo: date, hi: date) -> dict[str, dict]:
    """Ledger rows for these registration ids plus every ledger row with a visit date in [lo, hi]."""
    entries = ledger.lookup(conn, list(ids))
    rows = conn.execute(select(*LEDGER.c).where(LEDGER.c.tanggal >= lo, LEDGER.c.tanggal <= hi)).mappings()
    for row in rows:
        entries.setdefault(row["registration_id"], dict(row))
    return entries


# ---------------------------------------------------------------- where each registration stands now


@dataclass
class KhanzaState:
    """A registration's row in Khanza now. exists=False: the ledger's visit/booking is gone."""

    exists: bool
    kind: str = "visit"  # visit | booking
    status: str | None = None  # reg_periksa.stts or booking_registrasi.status
    kd_poli: str | None = None
    kd_dokter: str | None = None
    tanggal: date | None = None
    no_reg: str | None = None
    no_rawat: str | None = None  # the visit; for a checked-in booking the visit it became
    no_rkm_medis: str | None = None
    visit_status: str | None = None  # checked-in booking: its visit's stts


@dataclass
class Snapshot:
    visits: dict[str, dict] = field(default_factory=dict)  # no_rawat -> reg_periksa row
    bookings: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))  # rm -> bookings
    patient_visits: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))  # rm -> visits


_VISIT = select(*(REG_PERIKSA.c[c] for c in ("no_rawat", "no_reg", "tgl_registrasi", "kd_dokter", "kd_poli",
                                               "no_rkm_medis", "stts")))
_BOOKING = select(*(BOOKING_REGISTRASI.c[c] for c in ("no_rkm_medis", "tanggal_periksa", "tanggal_booking",
                                                     "jam_booking", "kd_dokter", "kd_poli", "no_reg", "status")))


def _chunks(values: list, size: int = 500):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def read_snapshot(conn: Connection, entries: list[dict], lo: date, hi: date) -> Snapshot:
    """The visits and bookings the ledger entries point at (plus visits of booked patients in the window)."""
    snap = Snapshot()
    no_rawats = sorted({e["no_rawat"] for e in entries if e.get("no_rawat")})
    for part in _chunks(no_rawats):
        for row in conn.execute(_VISIT.where(REG_PERIKSA.c.no_rawat.in_(part))).mappings():
            snap.visits[row["no_rawat"]] = dict(row)
    booked = sorted({e["no_rkm_medis"] for e in entries if e["target"] == "booking"})
    first = min([lo] + [e["tanggal"] for e in entries if e["target"] == "booking"])
    v_lo, v_hi = no_rawat_prefix(first), day_range(hi)[1]
    for part in _chunks(booked):
        b = BOOKING_REGISTRASI.c
        for row in conn.execute(_BOOKING.where(b.no_rkm_medis.in_(part), b.tanggal_periksa >= first)).mappings():
            snap.bookings[row["no_rkm_medis"]].append(dict(row))
        v = REG_PERIKSA.c
        for row in conn.execute(_VISIT.where(v.no_rkm_medis.in_(part), v.no_rawat >= v_lo, v.no_rawat < v_hi)).mappings():
            snap.patient_visits[row["no_rkm_medis"]].append(dict(row))
    return snap


def _seconds(value) -> int | None:
    """PyMySQL returns TIME as timedelta."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, time):
        return value.hour * 3600 + value.minute * 60 + value.second
    return None


def latest_booking_owners(entries) -> dict[tuple[str, date], str]:
    """(no_rkm_medis, tanggal) -> the registration whose booking that is: the latest one the pipeline created
    there (a cancelled booking is deleted, as Khanza does, and the patient may book that day again)."""
    latest: dict[tuple[str, date], dict] = {}
    for e in entries:
        if e["target"] == "booking" and e["outcome"] == "created":
            key = (e["no_rkm_medis"], e["tanggal"])
            if key not in latest or (e["created_at"], e["registration_id"]) > (
                    latest[key]["created_at"], latest[key]["registration_id"]):
                latest[key] = e
    return {key: e["registration_id"] for key, e in latest.items()}


def locate(entry: dict, website_date: date | None, snap: Snapshot, owned: set[tuple[str, date]],
           latest: dict[tuple[str, date], str] | None = None) -> KhanzaState:
    """Find the ledger entry's row now. Bookings are keyed (no_rkm_medis, tanggal_periksa), and the desk can
    move the date: try the ledger's date, then the website's, then the booking's own timestamp. A booking
    that a later registration of the same patient and day owns (`latest_booking_owners`) is never this one's."""
    if entry["target"] == "reg_periksa":
        visit = snap.visits.get(entry["no_rawat"] or "")
        if visit is None:
            return KhanzaState(exists=False)
        return KhanzaState(True, "visit", visit["stts"], visit["kd_poli"], visit["kd_dokter"],
                           visit["tgl_registrasi"], visit["no_reg"], visit["no_rawat"], visit["no_rkm_medis"])
    rm = entry["no_rkm_medis"]
    latest = latest or {}
    candidates = [b for b in snap.bookings.get(rm, [])
                  if ((rm, b["tanggal_periksa"]) not in owned or b["tanggal_periksa"] == entry["tanggal"])
                  and latest.get((rm, b["tanggal_periksa"]), entry["registration_id"]) == entry["registration_id"]]
    booking = next((b for b in candidates if b["tanggal_periksa"] == entry["tanggal"]), None)
    if booking is None and website_date is not None:
        booking = next((b for b in candidates if b["tanggal_periksa"] == website_date), None)
    if booking is None and isinstance(ledger.written_local(entry), datetime):
        made = ledger.written_local(entry)  # hospital time, as tanggal_booking / jam_booking
        booking = next((b for b in candidates if b["tanggal_booking"] == made.date()
                        and _seconds(b["jam_booking"]) == made.hour * 3600 + made.minute * 60 + made.second), None)
    if booking is None:
        return KhanzaState(exists=False, kind="booking")
    state = KhanzaState(True, "booking", booking["status"], booking["kd_poli"], booking["kd_dokter"],
                        booking["tanggal_periksa"], booking["no_reg"], None, rm)
    if booking["status"] == "Terdaftar":
        visits = sorted((v for v in snap.patient_visits.get(rm, [])
                         if v["no_rawat"].startswith(no_rawat_prefix(booking["tanggal_periksa"]))
                         and v["kd_poli"] == booking["kd_poli"]),
                        key=lambda v: (v["stts"] == "Batal", v["no_rawat"]))
        if visits:
            state.no_rawat, state.visit_status = visits[0]["no_rawat"], visits[0]["stts"]
            state.no_reg = visits[0]["no_reg"] or state.no_reg
    return state


def cancelled_reason(state: KhanzaState) -> ErrorCode | None:
    """Why Khanza no longer has a live registration for this row, or None if it does."""
    if not state.exists:
        return ErrorCode.DELETED_IN_KHANZA
    if state.kind == "visit":
        return ErrorCode.CANCELLED_IN_KHANZA if state.status == "Batal" else None
    if state.status == "Batal":
        return ErrorCode.CANCELLED_IN_KHANZA
    if state.status == "Dokter Berhalangan":
        return ErrorCode.DOCTOR_UNAVAILABLE
    if state.status == "Terdaftar" and state.visit_status == "Batal":
        return ErrorCode.CANCELLED_IN_KHANZA
    return None


def is_live(state: KhanzaState) -> bool:
    return cancelled_reason(state) is None


# ---------------------------------------------------------------- the comparison (pure)


def as_date(value) -> date | None:
    """A website date as a date; None when missing or not a real date (SQLite can hold '2026-02-30'),
    so one junk row never stops a reconcile run."""
    if value is None or (not isinstance(value, (date, datetime, str)) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _blank(value) -> str | None:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    value = str(value).strip()
    return value or None


def _slug_for(code: str, current_slug: str | None, forward: dict[str, str]) -> str | None:
    """The website slug for a Khanza code: the current one if it already maps there, else the first by name."""
    if current_slug and forward.get(current_slug.strip().lower()) == code:
        return current_slug
    slugs = sorted(slug for slug, mapped in forward.items() if mapped == code)
    return slugs[0] if slugs else None


def compare(web: dict, entry: dict | None, state: KhanzaState | None, maps: mapping_files.Mappings,
            today: date) -> tuple[dict | None, list[Finding]]:
    """One synced website row against Khanza: (change for the website or None, findings).

    A change is {"id", "expected_status", column: new value..., "reason"}; only changed columns appear."""
    reg_id, findings = web["id"], []
    web_date = as_date(web.get("visit_date"))
    if entry is None:
        return None, [Finding("synced_without_visit", reg_id, "no ledger entry", web_date)]
    reason = cancelled_reason(state)
    if reason is not None:
        return {"id": reg_id, "expected_status": web["status"], "status": "cancelled",
                "error_code": reason.value, "last_error": reason.website_message, "reason": reason.value}, findings

    change: dict = {}
    poli_slug = _blank(web.get("poliklinik"))
    if state.kd_poli and maps.poliklinik.get((poli_slug or "").lower()) != state.kd_poli:
        slug = _slug_for(state.kd_poli, poli_slug, maps.poliklinik)
        if slug:
            change["poliklinik"] = slug
        else:
            findings.append(Finding("unmapped_khanza_code", reg_id, f"kd_poli {state.kd_poli}", web_date))
    doctor_slug = _blank(web.get("doctor"))
    if state.kd_dokter and maps.dokter.get((doctor_slug or "").lower()) != state.kd_dokter:
        slug = _slug_for(state.kd_dokter, doctor_slug, maps.dokter)
        if slug:
            change["doctor"] = slug
        else:
            findings.append(Finding("unmapped_khanza_code", reg_id, f"kd_dokter {state.kd_dokter}", web_date))
    if state.tanggal and state.tanggal != web_date:
        change["visit_date"] = state.tanggal
    if state.no_reg and state.no_reg != _blank(web.get("no_reg")):
        change["no_reg"] = state.no_reg
    if state.no_rawat and state.no_rawat != _blank(web.get("no_rawat")):
        change["no_rawat"] = state.no_rawat
    if state.no_rkm_medis and not _blank(web.get("no_rkm_medis")):
        change["no_rkm_medis"] = state.no_rkm_medis
    if state.kind == "booking" and state.status == "Terdaftar" and not state.no_rawat:
        findings.append(Finding("checked_in_visit_missing", reg_id, "booking Terdaftar, visit not found",
                                state.tanggal))
    final_no_reg = state.no_reg or _blank(web.get("no_reg"))
    local = _blank(web.get("local_queue_number"))
    visit_day = state.tanggal or web_date
    if local and final_no_reg and local != final_no_reg and visit_day and visit_day >= today:
        findings.append(Finding("provisional_number_differs", reg_id,
                                f"provisional {local} -> final {final_no_reg}", visit_day))
    if not change:
        return None, findings
    what = ",".join(sorted(change))
    return {"id": reg_id, "expected_status": web["status"], **change, "reason": f"changed in Khanza: {what}"}, findings


# ---------------------------------------------------------------- suspicious numbering


def shared_no_reg(conn: Connection, lo: date, hi: date, scope: str, *, visits: bool, bookings: bool) -> list[Finding]:
    """Live visits (and, when they share the sequence, open bookings) holding the same no_reg in one scope and day."""
    cols = scope_columns(scope)
    holders: dict[tuple, list[str]] = defaultdict(list)
    if visits:
        v = REG_PERIKSA.c
        rows = conn.execute(
            select(v.no_rawat, v.no_reg, *(v[c] for c in cols)).where(
                v.no_rawat >= no_rawat_prefix(lo), v.no_rawat < day_range(hi)[1], v.stts != "Batal",
                v.no_reg.is_not(None))).mappings()
        for r in rows:
            key = (no_rawat_day(r["no_rawat"]), *[r[c] for c in cols], r["no_reg"])
            holders[key].append(f"visit {r['no_rawat']}")
    if bookings:
        b = BOOKING_REGISTRASI.c
        rows = conn.execute(
            select(b.no_rkm_medis, b.tanggal_periksa, b.no_reg, *(b[c] for c in cols)).where(
                b.tanggal_periksa >= lo, b.tanggal_periksa <= hi, b.status == "Belum",
                b.no_reg.is_not(None))).mappings()
        for r in rows:
            holders[(r["tanggal_periksa"], *[r[c] for c in cols], r["no_reg"])].append(
                f"booking rm {mask(r['no_rkm_medis'])}")
    findings = []
    for key, who in sorted(holders.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        if len(who) > 1:
            scope_text = " ".join(f"{c}={v}" for c, v in zip(cols, key[1:-1]))
            findings.append(Finding("shared_no_reg", None, f"{scope_text} no_reg={key[-1]}: " + "; ".join(who), key[0]))
    return findings


# ---------------------------------------------------------------- master data for the website


@dataclass
class MasterSnapshot:
    clinics: pd.DataFrame  # kd_poli, nm_poli, active
    doctors: pd.DataFrame  # kd_dokter, nm_dokter, kd_sps, nm_sps, active
    payers: pd.DataFrame  # kd_pj, png_jawab, active
    schedules: pd.DataFrame  # kd_dokter, kd_poli, hari_kerja, jam_mulai, jam_selesai, kuota (active only)


def _time_text(value) -> str | None:
    seconds = _seconds(value)
    if seconds is None:
        return None
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def read_master(conn: Connection) -> MasterSnapshot:
    """Every clinic, doctor and payer (active flag included) and the active schedules."""
    clinics = pd.read_sql(text("SELECT kd_poli, nm_poli, status FROM poliklinik WHERE kd_poli <> '-'"), conn)
    clinics["active"] = clinics.pop("status") == "1"
    doctors = pd.read_sql(text("SELECT d.kd_dokter, d.nm_dokter, d.kd_sps, s.nm_sps, d.status FROM dokter d "
                               "LEFT JOIN spesialis s ON s.kd_sps = d.kd_sps WHERE d.kd_dokter <> '-'"), conn)
    doctors["active"] = doctors.pop("status") == "1"
    payers = pd.read_sql(text("SELECT kd_pj, png_jawab, status FROM penjab WHERE kd_pj <> '-'"), conn)
    payers["active"] = payers.pop("status") == "1"
    rows = conn.execute(text(
        "SELECT j.kd_dokter, j.kd_poli, j.hari_kerja, j.jam_mulai, j.jam_selesai, j.kuota FROM jadwal j "
        "JOIN dokter d ON d.kd_dokter = j.kd_dokter AND d.status = '1' "
        "JOIN poliklinik p ON p.kd_poli = j.kd_poli AND p.status = '1' "
        "ORDER BY j.kd_dokter, j.hari_kerja, j.jam_mulai")).mappings().all()
    schedules = pd.DataFrame([{**dict(r), "jam_mulai": _time_text(r["jam_mulai"]),
                               "jam_selesai": _time_text(r["jam_selesai"])} for r in rows],
                             columns=["kd_dokter", "kd_poli", "hari_kerja", "jam_mulai", "jam_selesai", "kuota"])
    return MasterSnapshot(clinics, doctors, payers, schedules)


QUOTA_COLUMNS = ["visit_date", "kd_dokter", "kd_poli", "hari_kerja", "kuota", "registered", "remaining"]


def read_quota(conn: Connection, settings, days: set[date]) -> pd.DataFrame:
    """The remaining quota of `days` as the loader decides it: the loader's own master data and day reads
    (masterdata.load, numbering.read_days) and its rule (schedule.quota_rows), in the mode KHANZA_TARGET says."""
    md = masterdata.load(conn)
    booking = settings.khanza_target == "booking"
    books = read_days(conn, set(days), booking_scope(settings) if booking else settings.noreg_scope)
    return pd.DataFrame(quota_rows(md, books, booking=booking), columns=QUOTA_COLUMNS)


def mapping_problems(maps: mapping_files.Mappings, snapshot: MasterSnapshot) -> list[dict]:
    """Mapping entries that no longer match Khanza (unknown code, inactive), mapped doctors without a schedule,
    and active scheduled doctors/clinics the website cannot offer (no slug)."""
    problems = []
    tables = [("poliklinik", maps.poliklinik, snapshot.clinics, "kd_poli"),
              ("dokter", maps.dokter, snapshot.doctors, "kd_dokter"),
              ("penjab", maps.penjab, snapshot.payers, "kd_pj")]
    for name, mapping, frame, column in tables:
        active = dict(zip(frame[column], frame["active"]))
        for slug, code in sorted(mapping.items()):
            if code not in active:
                problems.append({"mapping": f"{name}.yaml", "slug": slug, "code": code,
                                 "problem": "unknown code: not in Khanza"})
            elif not active[code]:
                problems.append({"mapping": f"{name}.yaml", "slug": slug, "code": code,
                                 "problem": "inactive in Khanza (status 0)"})
    scheduled_doctors = set(snapshot.schedules["kd_dokter"])
    active_doctors = set(snapshot.doctors.loc[snapshot.doctors["active"], "kd_dokter"])
    for slug, code in sorted(maps.dokter.items()):
        if code in active_doctors and code not in scheduled_doctors:
            problems.append({"mapping": "dokter.yaml", "slug": slug, "code": code,
                             "problem": "active but no schedule (jadwal): nothing to book"})
    mapped_doctors = set(maps.dokter.values())
    for code in sorted(scheduled_doctors - mapped_doctors):
        problems.append({"mapping": "dokter.yaml", "slug": "", "code": code,
                         "problem": "scheduled in Khanza but no website slug"})
    mapped_clinics = set(maps.poliklinik.values())
    for code in sorted(set(snapshot.schedules["kd_poli"]) - mapped_clinics):
        problems.append({"mapping": "poliklinik.yaml", "slug": "", "code": code,
                         "problem": "scheduled in Khanza but no website slug"})
    return problems


__all__ = ["Finding", "FINDING_MEANING", "KhanzaState", "Snapshot", "MasterSnapshot", "HARI_KERJA", "compare",
           "cancelled_reason", "is_live", "ledger_entries", "locate", "mapping_problems", "mask", "read_master",
           "read_quota", "read_snapshot", "shared_no_reg"]
