"""What this Khanza installation has. Hospitals run Khanza versions years apart: settings tables, columns and
enum values that newer versions added are missing on older installations. Read once per batch from
information_schema (the tables the pipeline touches only) and asked by the loader:

* an optional settings table or column missing -> Khanza's own default behaviour (`OPTIONAL_TABLES`);
* an enum without the value the pipeline would write -> the value that version allows (`choose`);
* something the pipeline cannot work without missing -> `missing_essentials` names it and the batch stops
  before anything is written.

information_schema lists only what the connected user may see: a table the pipeline's user has no grant on
looks missing (sql/khanza_grants.sql grants SELECT on every table read here).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, text

from khanza.tables import BOOKING_REGISTRASI, PASIEN, REG_PERIKSA, insert_row

# Missing on older installations; what Khanza does without them.
OPTIONAL_TABLES = {
    "set_urut_no_rkm_medis": "medical-record numbers Straight, no year or month",
    "set_validasi_registrasi": "cashier closing not required (fungsi/closingkasir.java: no row = 'No')",
    "kamar_inap": "no inpatient stays to check",
}

# Read or written by every batch: without these the pipeline stops before writing anything.
ESSENTIAL_TABLES = ("pasien", "reg_periksa", "poliklinik", "dokter", "penjab", "jadwal", "set_no_rkm_medis",
                    "kelurahan", "kecamatan", "kabupaten", "propinsi", "perusahaan_pasien", "suku_bangsa",
                    "bahasa_pasien", "cacat_fisik", "booking_registrasi")
ESSENTIAL_COLUMNS = {
    "jadwal": ("kd_dokter", "hari_kerja", "kd_poli", "kuota"),
    "poliklinik": ("kd_poli", "registrasi", "registrasilama"),
    "dokter": ("kd_dokter",),
    "penjab": ("kd_pj",),  # older penjab has no status column: every payer is in use (masterdata.load)
}
# Columns of the written tables that an older Khanza may lack: the row is written without them, as that
# version's own insert is (Khanza inserts positionally, so an older desktop writes only the columns it has).
OPTIONAL_COLUMNS = {
    "pasien": frozenset({"suku_bangsa", "bahasa_pasien", "cacat_fisik", "email", "nip", "kd_prop", "propinsipj",
                         "perusahaan_pasien"}),
    "reg_periksa": frozenset({"status_poli", "status_bayar", "umurdaftar", "sttsumur"}),
    "booking_registrasi": frozenset({"jam_booking", "kd_pj", "limit_reg", "waktu_kunjungan", "status"}),
}
WRITTEN = {"pasien": PASIEN, "reg_periksa": REG_PERIKSA, "booking_registrasi": BOOKING_REGISTRASI}
# Enum values the pipeline writes that an older Khanza's enum may lack, and what that version allows instead
# (the first one its enum has). E.g. older pasien.stts_nikah had no 'JOMBLO' (Mobile JKN's placeholder).
ENUM_FALLBACKS = {
    ("pasien", "stts_nikah"): ("BELUM MENIKAH",),
    ("pasien", "keluarga"): ("LAIN-LAIN", "SAUDARA"),
    ("pasien", "pnd"): ("-", "TS"),
    ("pasien", "gol_darah"): ("-",),
    ("reg_periksa", "stts_daftar"): ("-",),
    ("booking_registrasi", "status"): ("Belum",),
}

_TABLES = sorted(set(ESSENTIAL_TABLES) | set(OPTIONAL_TABLES))


class KhanzaSetupError(RuntimeError):
    """Khanza lacks something every registration needs (not one row's problem, not transient)."""


def require_essentials(caps: "Capabilities") -> None:
    """Stop before anything is read further or written, with one line naming what this Khanza lacks."""
    lacking = missing_essentials(caps)
    if lacking:
        raise KhanzaSetupError(f"Khanza lacks what the pipeline needs: {', '.join(lacking)}")


@dataclass(frozen=True)
class Capabilities:
    """table -> column -> column type (as information_schema.COLUMNS.COLUMN_TYPE says, e.g. "enum('a','b')").
    `complete`: built from a real read (an empty default stands for 'the current Khanza', every check passes)."""

    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    complete: bool = False

    def has(self, table: str, column: str | None = None) -> bool:
        if not self.complete:
            return True
        cols = self.columns.get(table)
        return cols is not None and (column is None or column in cols)

    def enum_values(self, table: str, column: str) -> tuple[str, ...] | None:
        kind = self.columns.get(table, {}).get(column, "")
        if not kind.lower().startswith("enum("):
            return None
        return tuple(v.replace("''", "'") for v in _split_enum(kind[5:-1]))

    def choose(self, table: str, column: str, wanted: str, *fallbacks: str) -> str:
        """`wanted` if this version's enum allows it, else the first fallback it allows (else `wanted`)."""
        allowed = self.enum_values(table, column)
        if allowed is None or wanted in allowed:
            return wanted
        return next((f for f in fallbacks if f in allowed), wanted)

    def fit(self, table: str, row: dict) -> dict:
        """The row as this version can hold it: without the optional columns its table lacks, and with enum
        values it allows (ENUM_FALLBACKS)."""
        if not self.complete:
            return row
        cols = self.columns.get(table, {})
        fitted = {k: v for k, v in row.items() if k in cols or k not in OPTIONAL_COLUMNS.get(table, ())}
        for (t, column), fallbacks in ENUM_FALLBACKS.items():
            if t == table and isinstance(fitted.get(column), str):
                fitted[column] = self.choose(table, column, fitted[column], *fallbacks)
        return fitted


def insert(conn: Connection, caps: Capabilities, table: str, row: dict) -> dict:
    """INSERT `row` into one of the tables the pipeline writes, fitted to this Khanza; returns what was written."""
    fitted = caps.fit(table, row)
    insert_row(conn, WRITTEN[table], fitted, may_lack=OPTIONAL_COLUMNS.get(table, frozenset()))
    return fitted


def _split_enum(body: str) -> list[str]:
    values, current, inside, i = [], [], False, 0
    while i < len(body):
        ch = body[i]
        if ch == "'":
            if inside and i + 1 < len(body) and body[i + 1] == "'":
                current.append("''")
                i += 2
                continue
            inside = not inside
            if not inside:
                values.append("".join(current))
                current = []
        elif inside:
            current.append(ch)
        i += 1
    return values


def read(conn: Connection) -> Capabilities:
    stmt = text("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :tables").bindparams(
        bindparam("tables", expanding=True))
    columns: dict[str, dict[str, str]] = {}
    for table, column, kind in conn.execute(stmt, {"tables": _TABLES}):
        columns.setdefault(table.lower(), {})[column.lower()] = kind
    return Capabilities(columns=columns, complete=True)


def missing_essentials(caps: Capabilities) -> list[str]:
    """Tables and columns the pipeline cannot work without, that this Khanza lacks (names only)."""
    missing = [t for t in ESSENTIAL_TABLES if not caps.has(t)]
    for table, cols in ESSENTIAL_COLUMNS.items():
        missing += [f"{table}.{c}" for c in cols if caps.has(table) and not caps.has(table, c)]
    for table, clause in WRITTEN.items():
        if caps.has(table):
            missing += [f"{table}.{c}" for c in clause.c.keys()
                        if not caps.has(table, c) and c not in OPTIONAL_COLUMNS.get(table, ())]
    return missing
