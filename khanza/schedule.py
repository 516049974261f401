"""Doctor schedules (jadwal) and quota (kuota), as Khanza's Mobile JKN service checks them.

The quota rules live here once: the loader (`registration.register`), the dry run (`registration.predict`)
and the remaining quota published to the website (`quota_rows`, read by `reconcile.read_quota` with the
loader's own master data and day reads) all ask these functions, so a place the website shows is a place
the loader gives, in either mode.

How Khanza counts (webapps/api-bpjsfktl/index.php `ambilantrean`): every reg_periksa row for the clinic,
doctor and date, cancelled (Batal) ones included, must stay below the kuota of the jadwal session the
patient chose. The count is the whole day's, the kuota the session's. The website has no notion of a
session, so a day's sessions combine as their largest kuota: that is the most visits Khanza itself would
accept that day (through its most generous session); a sum would let the day overrun every session.
"""
from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Mapping

import pandas as pd

from khanza_sync.error_codes import ErrorCode

if TYPE_CHECKING:  # masterdata imports this module (session_kuota)
    from khanza.masterdata import MasterData
    from khanza.numbering import DayBook

# Khanza's hari_kerja enum; Sunday is 'AKHAD'.
HARI_KERJA = ("SENIN", "SELASA", "RABU", "KAMIS", "JUMAT", "SABTU", "AKHAD")


def hari_kerja(day: date) -> str:
    return HARI_KERJA[day.weekday()]


def session_kuota(kuota) -> int:
    """One jadwal session's kuota towards the day's total: a NULL kuota counts 0 (Mobile JKN refuses it)."""
    return 0 if kuota is None or pd.isna(kuota) else int(kuota)


def day_kuota(so_far: int | None, kuota) -> int:
    """Fold one more jadwal session into the day's kuota: the largest session wins (see the module doc)."""
    return max(so_far or 0, session_kuota(kuota))


def quota_for(md: MasterData, kd_dokter: str, kd_poli: str, day: date) -> int | None:
    """The day's kuota (the largest of its sessions, `day_kuota`), or None when the doctor has no
    session at that clinic that weekday."""
    return md.schedules.get((kd_dokter, kd_poli, hari_kerja(day)))


def quota_left(taken: int, quota: int) -> int:
    """Places still free: the day's kuota minus what Khanza counts against it, never negative."""
    return max(quota - taken, 0)


def quota_full(taken: int, quota: int) -> bool:
    """No place left for one more registration (a kuota of 0 is always full)."""
    return quota_left(taken, quota) == 0


def refusal(md: MasterData, kd_dokter: str, kd_poli: str, day: date, *, taken: int) -> ErrorCode | None:
    """Why one more registration for this doctor, clinic and day is refused, or None when it fits.
    `taken`: what Khanza counts that day (`DayBook.taken`: every visit for the pair, Batal included, or the
    doctor's bookings whatever their status), plus any the caller has planned."""
    quota = quota_for(md, kd_dokter, kd_poli, day)
    if quota is None:
        return ErrorCode.NO_SCHEDULE
    if quota_full(taken, quota):
        return ErrorCode.QUOTA_FULL
    return None


def quota_rows(md: MasterData, books: Mapping[date, DayBook], *, booking: bool) -> list[dict]:
    """The remaining quota per day of `books` and active doctor + clinic with a session that weekday, as the
    loader decides it: `registered` is what the loader counts (`DayBook.taken`: the pair's visits, Batal
    included, or, in booking mode, the doctor's bookings that day whatever their status and clinic), `kuota`
    the day's (`quota_for`), `remaining` the places left (`quota_left`). `refusal` says QUOTA_FULL exactly
    where `remaining` is 0."""
    rows = []
    for day, book in sorted(books.items()):
        hari = hari_kerja(day)
        for (kd_dokter, kd_poli, weekday), kuota in sorted(md.schedules.items()):
            if weekday != hari or kd_dokter not in md.active_dokter or kd_poli not in md.active_poli:
                continue
            taken = book.taken(kd_dokter, kd_poli, booking=booking)
            rows.append({"visit_date": day, "kd_dokter": kd_dokter, "kd_poli": kd_poli, "hari_kerja": hari,
                         "kuota": kuota, "registered": taken, "remaining": quota_left(taken, kuota)})
    return rows
