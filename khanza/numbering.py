"""Where every Khanza number is made: no_rawat, no_reg (the queue number) and no_rkm_medis.

Pure formatting functions first (unit-tested), then the allocation queries. Allocation runs inside
the registration's transaction while the pipeline holds its MariaDB named lock (see
`khanza.locks`), so two pipeline writers never read the same maximum. Desk staff using the Khanza
desktop take no lock at all, so the caller also retries on a duplicate no_rawat / no_rkm_medis and
re-checks no_reg after commit (`registration.py`).

Every query reads one day's rows through an index: reg_periksa has no index on tgl_registrasi,
but its primary key no_rawat starts with the date, so a no_rawat prefix range reads only that day.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

# ---------------------------------------------------------------- pure formatting


def no_rawat_prefix(day: date) -> str:
    return day.strftime("%Y/%m/%d/")


def format_no_rawat(day: date, counter: int) -> str:
    return f"{no_rawat_prefix(day)}{counter:06d}"


def format_no_reg(counter: int) -> str:
    return f"{counter:03d}"


def day_range(day: date) -> tuple[str, str]:
    """[lo, hi) bounds on no_rawat covering one registration day ('0' sorts right after '/')."""
    prefix = no_rawat_prefix(day)
    return prefix, prefix[:-1] + "0"


_PAIR_ORDER = {"Straight": None, "Terminal": (2, 1, 0), "Middle": (1, 0, 2)}


def _reorder(digits: str, order: tuple[int, int, int] | None) -> str:
    if order is None:
        return digits
    pairs = [digits[0:2], digits[2:4], digits[4:6]]
    return "".join(pairs[i] for i in order)


def _unorder(digits: str, order: tuple[int, int, int] | None) -> str:
    if order is None:
        return digits
    pairs = [digits[0:2], digits[2:4], digits[4:6]]
    out = [""] * 3
    for pos, src in enumerate(order):
        out[src] = pairs[pos]
    return "".join(out)


@dataclass(frozen=True)
class RmFormat:
    """Khanza's set_urut_no_rkm_medis row."""

    urutan: str = "Straight"  # Straight | Middle | Terminal
    tahun: bool = False
    bulan: bool = False
    posisi: str = "Depan"  # Depan (prefix) | Belakang (suffix)

    def core_of(self, stored: str) -> str:
        """The 6-digit core of a stored number (RIGHT(...,6) for Depan, LEFT(...,6) for Belakang)."""
        stored = (stored or "").strip()
        core = stored[:6] if self.posisi == "Belakang" else stored[-6:]
        return core if len(core) == 6 and core.isdigit() else "000000"

    def next_core(self, core: str) -> str:
        """Read the core in the configured digit order, add one, write it back in that order.

        Terminal: the stored pairs are the counter's pairs reversed (5-6, 3-4, 1-2);
        Middle: pairs in the order 3-4, 1-2, 5-6.
        """
        order = _PAIR_ORDER[self.urutan]
        value = int(_unorder(core, order)) + 1
        return _reorder(f"{value:06d}", order)

    def decorate(self, core: str, day: date) -> str:
        """Depan: YY MM NNNNNN. Belakang: NNNNNN-MMYY (the dash only when there is a suffix)."""
        yy = day.strftime("%y") if self.tahun else ""
        mm = day.strftime("%m") if self.bulan else ""
        if not (yy or mm):
            return core
        return f"{yy}{mm}{core}" if self.posisi == "Depan" else f"{core}-{mm}{yy}"

    def next_after(self, stored: str, day: date) -> str:
        return self.decorate(self.next_core(self.core_of(stored)), day)


# ---------------------------------------------------------------- allocation queries


def next_no_rawat(conn: Connection, day: date) -> str:
    lo, hi = day_range(day)
    last = conn.execute(
        text(
            "SELECT no_rawat FROM reg_periksa WHERE no_rawat >= :lo AND no_rawat < :hi "
            "ORDER BY no_rawat DESC LIMIT 1"
        ),
        {"lo": lo, "hi": hi},
    ).scalar()
    counter = int(last[-6:]) if last and last[-6:].isdigit() else 0
    return format_no_rawat(day, counter + 1)


def _scope_sql(scope: str, date_column_filter: str, poli_col: str = "kd_poli") -> str:
    if scope == "poli":
        return f"{date_column_filter} AND {poli_col} = :kd_poli"
    if scope == "dokter+poli":
        return f"{date_column_filter} AND kd_dokter = :kd_dokter AND {poli_col} = :kd_poli"
    return f"{date_column_filter} AND kd_dokter = :kd_dokter"


def max_no_reg(conn: Connection, day: date, scope: str, kd_dokter: str, kd_poli: str,
               *, visits: bool, bookings: bool) -> int:
    """Highest no_reg used in the scope that day, over visits and/or bookings (0 if none)."""
    lo, hi = day_range(day)
    params = {"lo": lo, "hi": hi, "day": day, "kd_dokter": kd_dokter, "kd_poli": kd_poli}
    best = 0
    if visits:
        where = _scope_sql(scope, "no_rawat >= :lo AND no_rawat < :hi")
        best = max(best, conn.execute(
            text(f"SELECT COALESCE(MAX(CAST(no_reg AS SIGNED)), 0) FROM reg_periksa WHERE {where}"), params
        ).scalar_one())
    if bookings:
        # Scope columns are indexed (kd_dokter / kd_poli); the date filter then narrows a doctor's bookings.
        where = _scope_sql(scope, "tanggal_periksa = :day")
        best = max(best, conn.execute(
            text(f"SELECT COALESCE(MAX(CAST(no_reg AS SIGNED)), 0) FROM booking_registrasi WHERE {where} "
                 "AND status <> 'Batal'"), params
        ).scalar_one())
    return int(best)


def no_reg_holders(conn: Connection, day: date, scope: str, kd_dokter: str, kd_poli: str,
                   no_reg: str, *, visits: bool, bookings: bool) -> int:
    """How many live visits and/or open bookings hold this no_reg in the scope that day."""
    lo, hi = day_range(day)
    params = {"lo": lo, "hi": hi, "day": day, "kd_dokter": kd_dokter, "kd_poli": kd_poli, "no_reg": no_reg}
    count = 0
    if visits:
        where = _scope_sql(scope, "no_rawat >= :lo AND no_rawat < :hi")
        count += conn.execute(
            text(f"SELECT COUNT(*) FROM reg_periksa WHERE {where} AND no_reg = :no_reg AND stts <> 'Batal'"), params
        ).scalar_one()
    if bookings:
        where_b = _scope_sql(scope, "tanggal_periksa = :day")
        count += conn.execute(
            text(f"SELECT COUNT(*) FROM booking_registrasi WHERE {where_b} AND no_reg = :no_reg "
                 "AND status = 'Belum'"), params
        ).scalar_one()
    return int(count)


def read_rm_format(conn: Connection) -> RmFormat:
    row = conn.execute(
        text("SELECT urutan, tahun, bulan, posisi_tahun_bulan FROM set_urut_no_rkm_medis LIMIT 1")
    ).first()
    if row is None:
        return RmFormat()
    return RmFormat(urutan=row[0], tahun=row[1] == "Yes", bulan=row[2] == "Yes", posisi=row[3] or "Depan")


def read_rm_counter(conn: Connection) -> str:
    """The last issued number, locked for this transaction (the desktop reads it without a lock)."""
    return conn.execute(text("SELECT no_rkm_medis FROM set_no_rkm_medis LIMIT 1 FOR UPDATE")).scalar() or ""


def write_rm_counter(conn: Connection, no_rkm_medis: str) -> None:
    """Replace the counter row, exactly as Khanza does after a new patient."""
    conn.execute(text("DELETE FROM set_no_rkm_medis"))
    conn.execute(text("INSERT INTO set_no_rkm_medis VALUES (:n)"), {"n": no_rkm_medis})
