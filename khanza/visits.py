"""reg_periksa and booking_registrasi rows with exactly the values the Khanza desktop writes
(rules.md §4, §5), plus the lookups that decide them. Pure functions first."""
from __future__ import annotations

import calendar
from datetime import date, datetime

from sqlalchemy import Connection, bindparam, text

from khanza_sync.rules import ALMT_PJ_MAX
from khanza import capabilities
from khanza.capabilities import Capabilities


# ---------------------------------------------------------------- ages, as MySQL's TIMESTAMPDIFF counts them


def full_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def full_months(birth: date, on: date) -> int:
    return (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)


def _add_months(day: date, months: int) -> date:
    """DATE_ADD(day, INTERVAL n MONTH): clamps to the month's last day like MariaDB."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def umur_daftar(birth: date, on: date) -> tuple[int, str]:
    """umurdaftar/sttsumur: years if > 0, else months if > 0, else days."""
    if (years := full_years(birth, on)) > 0:
        return years, "Th"
    if (months := full_months(birth, on)) > 0:
        return months, "Bl"
    return (on - birth).days, "Hr"


def umur_text(birth: date, on: date) -> str:
    """pasien.umur as the desktop's UpdateUmur writes it: '<y> Th <m> Bl <d> Hr'."""
    months_total = full_months(birth, on)
    years, months = divmod(months_total, 12)
    days = (on - _add_months(birth, months_total)).days
    return f"{years} Th {months} Bl {days} Hr"


# ---------------------------------------------------------------- rows


def visit_row(*, no_reg: str, no_rawat: str, visit_date: date, clock: datetime, kd_dokter: str,
              patient: dict, kd_poli: str, kd_pj: str, fees: tuple[float, float],
              first_visit_to_poli: bool, new_patient: bool | None = None) -> dict:
    """The 19 reg_periksa values of an outpatient visit, as DlgReg writes them.

    stts_daftar is Baru exactly when pasien.tgl_daftar is the registration date (DlgReg isCekPasien
    `if(tgl_daftar=?,'Baru','Lama')`, Mobile JKN $statusdaftar), whoever created the patient: `new_patient`
    is accepted for old callers and ignored. biaya_reg follows it (registrasi / registrasilama).
    umurdaftar/sttsumur are the age on the day the row is written (`clock`, CURDATE() in isCekPasien), not
    on the visit date."""
    stts_daftar = "Baru" if patient.get("tgl_daftar") == visit_date else "Lama"
    umur, sttsumur = umur_daftar(patient["tgl_lahir"], clock.date())
    almt_pj = ", ".join([patient.get("alamat") or "", patient.get("nm_kel") or "-",
                         patient.get("nm_kec") or "-", patient.get("nm_kab") or "-"])
    return {
        "no_reg": no_reg,
        "no_rawat": no_rawat,
        "tgl_registrasi": visit_date,
        "jam_reg": clock.strftime("%H:%M:%S"),
        "kd_dokter": kd_dokter,
        "no_rkm_medis": patient["no_rkm_medis"],
        "kd_poli": kd_poli,
        "p_jawab": patient.get("namakeluarga") or "",
        "almt_pj": almt_pj[:ALMT_PJ_MAX],
        "hubunganpj": patient.get("keluarga") or "",
        "biaya_reg": fees[0] if stts_daftar == "Baru" else fees[1],
        "stts": "Belum",
        "stts_daftar": stts_daftar,
        "status_lanjut": "Ralan",
        "kd_pj": kd_pj,
        "umurdaftar": umur,
        "sttsumur": sttsumur,
        "status_bayar": "Belum Bayar",
        "status_poli": "Lama" if not first_visit_to_poli else "Baru",
    }


def booking_row(*, no_reg: str, visit_date: date, clock: datetime, no_rkm_medis: str, kd_dokter: str,
                kd_poli: str, kd_pj: str) -> dict:
    """A booking_registrasi row as Khanza's booking acceptance writes it (status Belum, limit_reg 1)."""
    return {
        "tanggal_booking": clock.date(),
        "jam_booking": clock.strftime("%H:%M:%S"),
        "no_rkm_medis": no_rkm_medis,
        "tanggal_periksa": visit_date,
        "kd_dokter": kd_dokter,
        "kd_poli": kd_poli,
        "no_reg": no_reg,
        "kd_pj": kd_pj,
        "limit_reg": 1,
        "waktu_kunjungan": datetime.combine(visit_date, clock.time().replace(microsecond=0)),
        "status": "Belum",
    }


# ---------------------------------------------------------------- SQL

def insert_visit(conn: Connection, row: dict, caps: Capabilities | None = None) -> None:
    capabilities.insert(conn, caps or Capabilities(), "reg_periksa", row)


def insert_booking(conn: Connection, row: dict, caps: Capabilities | None = None) -> None:
    capabilities.insert(conn, caps or Capabilities(), "booking_registrasi", row)


def patient_history(conn: Connection, rms: list[str], with_bayar: bool = True) -> dict[str, list[dict]]:
    """Every visit of the batch's existing patients (indexed on no_rkm_medis), for status_poli, the
    one-visit-per-clinic-per-day rule and unpaid earlier visits."""
    history: dict[str, list[dict]] = {rm: [] for rm in rms}
    if rms:
        bayar = "status_bayar" if with_bayar else "NULL AS status_bayar"  # an older reg_periksa lacks it
        stmt = text(f"SELECT no_rkm_medis, kd_poli, no_rawat, no_reg, stts, tgl_registrasi, {bayar} "
                    "FROM reg_periksa "
                    "WHERE no_rkm_medis IN :rms").bindparams(bindparam("rms", expanding=True))
        for row in conn.execute(stmt, {"rms": sorted(set(rms))}).mappings():
            history[row["no_rkm_medis"]].append(dict(row))
    return history


def admitted(conn: Connection, rms: list[str]) -> set[str]:
    """The patients among `rms` with an open inpatient stay: a kamar_inap row with stts_pulang '-' on one of
    their visits (DlgReg refuses to register them: "Pasien sedang dalam masa perawatan di kamar inap").
    Reads kamar_inap through reg_periksa's no_rkm_medis index and kamar_inap's primary key (no_rawat first)."""
    found: set[str] = set()
    if rms:
        stmt = text("SELECT DISTINCT r.no_rkm_medis FROM reg_periksa r JOIN kamar_inap k ON k.no_rawat = r.no_rawat "
                    "WHERE r.no_rkm_medis IN :rms AND k.stts_pulang = '-'").bindparams(bindparam("rms", expanding=True))
        found = {row[0] for row in conn.execute(stmt, {"rms": sorted(set(rms))})}
    return found


def unpaid(history: list[dict]) -> bool:
    """DlgReg isPas: a visit with status_bayar 'Belum Bayar' and stts <> 'Batal' (SQL: a NULL stts never
    matches) blocks registration when set_validasi_registrasi.wajib_closing_kasir is 'Yes'."""
    return any(v.get("status_bayar") == "Belum Bayar" and v.get("stts") is not None and v["stts"] != "Batal"
               for v in history)


def live_visit(history: list[dict], kd_poli: str, day: date) -> dict | None:
    """The patient's visit to this clinic that day (tgl_registrasi: the desk may have moved it) that is
    not cancelled, if any."""
    return next((v for v in sorted(history, key=lambda v: v["no_rawat"])
                 if v["kd_poli"] == kd_poli and v["tgl_registrasi"] == day and v["stts"] != "Batal"), None)


def existing_booking(conn: Connection, no_rkm_medis: str, day: date) -> dict | None:
    row = conn.execute(
        text("SELECT kd_poli, kd_dokter, no_reg, status FROM booking_registrasi "
             "WHERE no_rkm_medis = :rm AND tanggal_periksa = :day"),
        {"rm": no_rkm_medis, "day": day},
    ).mappings().first()
    return dict(row) if row else None


def renumber_visit(conn: Connection, no_rawat: str, no_reg: str) -> None:
    conn.execute(text("UPDATE reg_periksa SET no_reg = :no_reg WHERE no_rawat = :no_rawat"),
                 {"no_reg": no_reg, "no_rawat": no_rawat})


def renumber_booking(conn: Connection, no_rkm_medis: str, day: date, no_reg: str) -> None:
    conn.execute(text("UPDATE booking_registrasi SET no_reg = :no_reg WHERE no_rkm_medis = :rm "
                      "AND tanggal_periksa = :day"), {"no_reg": no_reg, "rm": no_rkm_medis, "day": day})
