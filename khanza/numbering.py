"""Where every Khanza number is made: no_rawat, no_reg (the queue number) and no_rkm_medis.

Pure formatting functions first (unit-tested), then the DayBook: a batch reads each visit day's
numbers once, while it holds the pipeline's MariaDB named lock (`khanza.locks`), so two pipeline
writers never use the same maximum, and allocates from it in memory as it inserts. Desk staff using
the Khanza desktop take no lock at all, so the caller re-reads the day when a no_rawat collides,
steps past a taken no_rkm_medis, and after commit checks that no other visit shares a no_reg
(`shared_no_regs`) before any number is written back (`registration.py`).

Every query reads one day's rows through an index: reg_periksa has no index on tgl_registrasi,
but its primary key no_rawat starts with the date, so a no_rawat prefix range reads only that day.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Connection, bindparam, text

# ---------------------------------------------------------------- pure formatting


def no_rawat_prefix(day: date) -> str:
    return day.strftime("%Y/%m/%d/")


def no_rawat_day(no_rawat: str) -> date:
    """The date a no_rawat was numbered on (its first 10 characters, 'YYYY/MM/DD'): the inverse of the prefix."""
    return date.fromisoformat(no_rawat[:10].replace("/", "-"))


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
    """The three digit pairs of `digits`, the pair at order[0] first (None: as they are)."""
    if order is None:
        return digits
    pairs = [digits[0:2], digits[2:4], digits[4:6]]
    return "".join(pairs[i] for i in order)


def _unorder(digits: str, order: tuple[int, int, int] | None) -> str:
    """Undo _reorder."""
    return _reorder(digits, None if order is None else tuple(order.index(pos) for pos in range(3)))


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


# ---------------------------------------------------------------- the day's numbers (allocation)


_SCOPE_COLUMNS = {"dokter": ("kd_dokter",), "poli": ("kd_poli",), "dokter+poli": ("kd_dokter", "kd_poli")}


def scope_columns(scope: str) -> tuple[str, ...]:
    """The columns that make one no_reg sequence under Khanza's URUTNOREG (`Settings.noreg_scope`);
    anything else counts per doctor."""
    return _SCOPE_COLUMNS.get(scope, _SCOPE_COLUMNS["dokter"])


def booking_scope(settings) -> str:
    """URUTNOREG as Khanza's booking dialogs read it (DlgBookingRegistrasi / DlgBookingPeriksa isNomer):
    the exact strings `poli`, `dokter`, `dokter + poli`; anything else per doctor, whatever BASENOREG says
    (unlike DlgReg, whose BASENOREG=booking fallback is per clinic)."""
    return {"dokter": "dokter", "poli": "poli", "dokter + poli": "dokter+poli"}.get(settings.khanza_urutnoreg, "dokter")


def scope_key(scope: str, kd_dokter: str, kd_poli: str) -> tuple[str, ...]:
    """Which no_reg sequence a registration draws from (Khanza's URUTNOREG)."""
    values = {"kd_dokter": kd_dokter, "kd_poli": kd_poli}
    return tuple(values[column] for column in scope_columns(scope))


@dataclass
class DayBook:
    """What one registration day already holds, read once per batch under the numbering lock and kept
    current as the batch inserts: the last no_rawat counter, the highest no_reg of every sequence
    (visits and bookings apart), and the registrations that count against the quota as Khanza counts them:
    every reg_periksa row per (doctor, clinic), cancelled ones included (Mobile JKN `ambilantrean`), and
    every booking_registrasi row per doctor whatever its status (the desk's booking dialogs)."""

    day: date
    scope: str
    last_rawat: int = 0
    visit_max: dict[tuple, int] = field(default_factory=dict)
    booking_max: dict[tuple, int] = field(default_factory=dict)
    visits: Counter = field(default_factory=Counter)  # (kd_dokter, kd_poli) -> reg_periksa rows, Batal included
    bookings: Counter = field(default_factory=Counter)  # kd_dokter -> booking_registrasi rows, any status

    def next_no_rawat(self) -> str:
        return format_no_rawat(self.day, self.last_rawat + 1)

    def next_no_reg(self, kd_dokter: str, kd_poli: str, *, visits: bool, bookings: bool) -> str:
        key = scope_key(self.scope, kd_dokter, kd_poli)
        top = max(self.visit_max.get(key, 0) if visits else 0, self.booking_max.get(key, 0) if bookings else 0)
        return format_no_reg(top + 1)

    def taken(self, kd_dokter: str, kd_poli: str, *, booking: bool = False) -> int:
        """Places used in the quota: visits for the doctor and clinic (Mobile JKN counts every reg_periksa
        row, Batal included), or, for a booking, the doctor's bookings that day whatever their status."""
        return self.bookings[kd_dokter] if booking else self.visits[(kd_dokter, kd_poli)]

    def add(self, kd_dokter: str, kd_poli: str, no_reg: str, *, no_rawat: str | None = None,
            booking: bool = False, new_registration: bool = True) -> None:
        """Record numbers now in use (and, for a new registration, one more place taken in the quota)."""
        self._hold(kd_dokter, kd_poli, int(no_reg), 1 if new_registration else 0, booking=booking)
        if no_rawat:
            self.last_rawat = max(self.last_rawat, int(no_rawat[-6:]))

    def _hold(self, kd_dokter: str, kd_poli: str, top_reg: int, count: int, *, booking: bool) -> None:
        """no_reg up to `top_reg` is in use in its sequence; `count` more rows count for the quota."""
        key = scope_key(self.scope, kd_dokter, kd_poli)
        sequence = self.booking_max if booking else self.visit_max
        sequence[key] = max(sequence.get(key, 0), top_reg)
        if count:
            if booking:
                self.bookings[kd_dokter] += count
            else:
                self.visits[(kd_dokter, kd_poli)] += count


def _as_int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# The desk can move a visit to another date without changing its no_rawat (whose prefix keeps the old
# date). Day reads therefore scan this many days of no_rawat on either side and judge by tgl_registrasi;
# still an indexed range whose size depends on daily volume, not on years of history.
MOVED_VISIT_WINDOW_DAYS = 14


def _window(days: set[date]) -> tuple[str, str]:
    return (day_range(min(days) - timedelta(days=MOVED_VISIT_WINDOW_DAYS))[0],
            day_range(max(days) + timedelta(days=MOVED_VISIT_WINDOW_DAYS))[1])


def read_days(conn: Connection, days: set[date], scope: str) -> dict[date, DayBook]:
    """One indexed read of reg_periksa (a no_rawat range around the batch's days) and one of bookings.

    A day's no_rawat counter follows the no_rawat prefix (the primary key is what must stay unique);
    its queue numbers and quota use follow tgl_registrasi, as Khanza's own max(no_reg) does."""
    books = {day: DayBook(day=day, scope=scope) for day in days}
    if not days:
        return books
    by_prefix = {no_rawat_prefix(day)[:-1]: book for day, book in books.items()}
    lo, hi = _window(days)
    stmt = text(
        "SELECT LEFT(no_rawat, 10), tgl_registrasi, kd_dokter, kd_poli, MAX(no_rawat), MAX(CAST(no_reg AS SIGNED)), "
        "COUNT(*) FROM reg_periksa WHERE no_rawat >= :lo AND no_rawat < :hi "
        "AND (LEFT(no_rawat, 10) IN :prefixes OR tgl_registrasi IN :days) "
        "GROUP BY LEFT(no_rawat, 10), tgl_registrasi, kd_dokter, kd_poli"
    ).bindparams(bindparam("prefixes", expanding=True), bindparam("days", expanding=True))
    rows = conn.execute(stmt, {"lo": lo, "hi": hi, "prefixes": sorted(by_prefix), "days": sorted(days)})
    for prefix, tgl, kd_dokter, kd_poli, top_rawat, top_reg, count in rows:
        if prefix in by_prefix and top_rawat and top_rawat[-6:].isdigit():
            book = by_prefix[prefix]
            book.last_rawat = max(book.last_rawat, int(top_rawat[-6:]))
        if tgl in books:
            books[tgl]._hold(kd_dokter, kd_poli, _as_int(top_reg), _as_int(count), booking=False)
    # booking_registrasi has no index on tanggal_periksa: one scan per batch, not per registration.
    stmt = text("SELECT tanggal_periksa, kd_dokter, kd_poli, MAX(CAST(no_reg AS SIGNED)), COUNT(*) "
                "FROM booking_registrasi WHERE tanggal_periksa IN :days GROUP BY tanggal_periksa, kd_dokter, "
                "kd_poli").bindparams(bindparam("days", expanding=True))
    for day, kd_dokter, kd_poli, top_reg, count in conn.execute(stmt, {"days": sorted(days)}):
        books[day]._hold(kd_dokter, kd_poli, _as_int(top_reg), _as_int(count), booking=True)
    return books


def shared_no_regs(conn: Connection, days: set[date], scope: str, *, visits: bool, bookings: bool
                   ) -> dict[date, set[tuple]]:
    """Per day: the (scope key, no_reg) pairs that more than one live visit / open booking holds."""
    holders: Counter = Counter()
    if visits and days:
        lo, hi = _window(days)
        stmt = text("SELECT tgl_registrasi, kd_dokter, kd_poli, no_reg FROM reg_periksa WHERE no_rawat >= :lo "
                    "AND no_rawat < :hi AND tgl_registrasi IN :days AND IFNULL(stts, '') <> 'Batal'"
                    ).bindparams(bindparam("days", expanding=True))
        for day, kd_dokter, kd_poli, no_reg in conn.execute(stmt, {"lo": lo, "hi": hi, "days": sorted(days)}):
            holders[(day, scope_key(scope, kd_dokter, kd_poli), no_reg)] += 1
    if bookings and days:
        stmt = text("SELECT tanggal_periksa, kd_dokter, kd_poli, no_reg FROM booking_registrasi "
                    "WHERE tanggal_periksa IN :days AND status = 'Belum'").bindparams(bindparam("days", expanding=True))
        for day, kd_dokter, kd_poli, no_reg in conn.execute(stmt, {"days": sorted(days)}):
            holders[(day, scope_key(scope, kd_dokter, kd_poli), no_reg)] += 1
    shared: dict[date, set[tuple]] = {day: set() for day in days}
    for (day, key, no_reg), count in holders.items():
        if count > 1:
            shared[day].add((key, no_reg))
    return shared


def read_rm_format(conn: Connection, present: bool = True) -> RmFormat:
    """set_urut_no_rkm_medis; an older Khanza without the table (`present` False) numbers Straight with no
    year or month, as Khanza did before the setting existed (and as the shipped row says)."""
    if not present:
        return RmFormat()
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
