"""The Khanza tables the pipeline writes rows into, with the columns it writes, listed once.

Khanza owns these tables and their DDL (the pipeline only creates its own ledger and decisions tables, sql/khanza_ledger.sql), so
they are lightweight table clauses naming columns, not full Table definitions. INSERTs are built from them
by SQLAlchemy: a row missing one of these columns, or carrying another, fails before it reaches Khanza.
"""
from __future__ import annotations

from sqlalchemy import Connection, TableClause, column, insert, table


def _table(name: str, *columns: str) -> TableClause:
    return table(name, *(column(c) for c in columns))


# A new patient (khanza/patients.py new_patient_row): every NOT NULL column, as Mobile JKN's pasienbaru fills it.
PASIEN = _table(
    "pasien",
    "no_rkm_medis", "nm_pasien", "no_ktp", "jk", "tmp_lahir", "tgl_lahir", "nm_ibu", "alamat", "gol_darah",
    "pekerjaan", "stts_nikah", "agama", "tgl_daftar", "no_tlp", "umur", "pnd", "keluarga", "namakeluarga",
    "kd_pj", "no_peserta", "kd_kel", "kd_kec", "kd_kab", "pekerjaanpj", "alamatpj", "kelurahanpj",
    "kecamatanpj", "kabupatenpj", "perusahaan_pasien", "suku_bangsa", "bahasa_pasien", "cacat_fisik", "email",
    "nip", "kd_prop", "propinsipj",
)

# An outpatient visit (khanza/visits.py visit_row): the 19 values DlgReg writes.
REG_PERIKSA = _table(
    "reg_periksa",
    "no_reg", "no_rawat", "tgl_registrasi", "jam_reg", "kd_dokter", "no_rkm_medis", "kd_poli", "p_jawab",
    "almt_pj", "hubunganpj", "biaya_reg", "stts", "stts_daftar", "status_lanjut", "kd_pj", "umurdaftar",
    "sttsumur", "status_bayar", "status_poli",
)

# A web booking (khanza/visits.py booking_row), as Khanza's booking acceptance writes it.
BOOKING_REGISTRASI = _table(
    "booking_registrasi",
    "tanggal_booking", "jam_booking", "no_rkm_medis", "tanggal_periksa", "kd_dokter", "kd_poli", "no_reg",
    "kd_pj", "limit_reg", "waktu_kunjungan", "status",
)

# Khanza Sync's own ledger (khanza/ledger.py), written in the visit's transaction.
LEDGER = _table(
    "khanza_sync_ledger",
    "registration_id", "outcome", "target", "no_rkm_medis", "no_rawat", "no_reg", "kd_poli", "kd_dokter",
    "tanggal", "patient_created", "created_at", "created_utc_offset",
)

# Staff decisions about one registration (khanza/decisions.py): re-queue, link to a patient, or a new patient.
DECISIONS = _table(
    "khanza_sync_decisions",
    "id", "registration_id", "action", "no_rkm_medis", "decided_by", "reason", "decided_at", "flow_run_id",
    "findings", "run_by",
)


def insert_row(conn: Connection, target: TableClause, row: dict, may_lack: frozenset[str] = frozenset()) -> None:
    """INSERT one row into a Khanza table; its keys must be exactly the table's columns (less `may_lack`: the
    optional columns an older Khanza's table does not have, khanza/capabilities.py)."""
    columns = set(target.c.keys())
    if set(row) - columns or (columns - set(row)) - may_lack:  # names only, never values: no patient data
        raise ValueError(f"{target.name} row columns differ: {sorted(set(row) ^ columns)}")
    conn.execute(insert(target), row)
