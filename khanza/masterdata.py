"""Khanza master data the pipeline checks against: active clinics, doctors, payers, schedules,
and the ids of Khanza's '-' placeholder rows. Read once per batch (a few small tables)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from khanza.capabilities import Capabilities
from khanza.capabilities import read as read_capabilities
from khanza.capabilities import require_essentials
from khanza.numbering import RmFormat, read_rm_format
from khanza.schedule import day_kuota

PLACEHOLDER_LOOKUPS = {
    "kd_kel": "SELECT kd_kel FROM kelurahan WHERE nm_kel = '-'",
    "kd_kec": "SELECT kd_kec FROM kecamatan WHERE nm_kec = '-'",
    "kd_kab": "SELECT kd_kab FROM kabupaten WHERE nm_kab = '-'",
    "kd_prop": "SELECT kd_prop FROM propinsi WHERE nm_prop = '-'",
    "suku_bangsa": "SELECT id FROM suku_bangsa WHERE nama_suku_bangsa = '-'",
    "bahasa_pasien": "SELECT id FROM bahasa_pasien WHERE nama_bahasa = '-'",
    "cacat_fisik": "SELECT id FROM cacat_fisik WHERE nama_cacat = '-'",
    "perusahaan_pasien": "SELECT kode_perusahaan FROM perusahaan_pasien WHERE kode_perusahaan = '-'",
}


@dataclass
class MasterData:
    active_poli: dict[str, tuple[float, float]] = field(default_factory=dict)  # kd_poli -> (registrasi, registrasilama)
    active_dokter: set[str] = field(default_factory=set)
    active_penjab: set[str] = field(default_factory=set)
    # (kd_dokter, kd_poli, hari_kerja) -> the day's kuota: the largest of its sessions (schedule.day_kuota)
    schedules: dict[tuple[str, str, str], int] = field(default_factory=dict)
    placeholders: dict[str, object] = field(default_factory=dict)
    rm_format: RmFormat = field(default_factory=RmFormat)
    # set_validasi_registrasi.wajib_closing_kasir = 'Yes' (no table or no row: 'No', fungsi/closingkasir.java)
    wajib_closing_kasir: bool = False
    caps: Capabilities = field(default_factory=Capabilities)


def load(conn: Connection) -> MasterData:
    md = MasterData(caps=read_capabilities(conn))
    require_essentials(md.caps)  # an older Khanza lacking what we need: one line, before anything else
    def active(table: str) -> str:  # an older Khanza without the status column: every row is in use
        return " WHERE status = '1'" if md.caps.has(table, "status") else ""
    for kd, reg, lama in conn.execute(text("SELECT kd_poli, registrasi, registrasilama FROM poliklinik" + active("poliklinik"))):
        md.active_poli[kd] = (float(reg), float(lama))
    md.active_dokter = {r[0] for r in conn.execute(text("SELECT kd_dokter FROM dokter" + active("dokter")))}
    md.active_penjab = {r[0] for r in conn.execute(text("SELECT kd_pj FROM penjab" + active("penjab")))}
    for kd_dokter, hari, kd_poli, kuota in conn.execute(
        text("SELECT kd_dokter, hari_kerja, kd_poli, kuota FROM jadwal")
    ):
        key = (kd_dokter, kd_poli, hari)
        md.schedules[key] = day_kuota(md.schedules.get(key), kuota)
    for name, sql in PLACEHOLDER_LOOKUPS.items():
        md.placeholders[name] = conn.execute(text(sql)).scalar()
    md.rm_format = read_rm_format(conn, md.caps.has("set_urut_no_rkm_medis"))
    if md.caps.has("set_validasi_registrasi", "wajib_closing_kasir"):
        md.wajib_closing_kasir = conn.execute(text(
            "SELECT wajib_closing_kasir FROM set_validasi_registrasi LIMIT 1")).scalar() == "Yes"
    return md


def missing_placeholders(md: MasterData) -> list[str]:
    return [name for name, value in md.placeholders.items() if value is None]
