"""Doctor schedules (jadwal) and quota (kuota), as Khanza's Mobile JKN service checks them."""
from __future__ import annotations

from datetime import date

from khanza.masterdata import MasterData

# Khanza's hari_kerja enum; Sunday is 'AKHAD'.
HARI_KERJA = ("SENIN", "SELASA", "RABU", "KAMIS", "JUMAT", "SABTU", "AKHAD")


def hari_kerja(day: date) -> str:
    return HARI_KERJA[day.weekday()]


def quota_for(md: MasterData, kd_dokter: str, kd_poli: str, day: date) -> int | None:
    """The day's total kuota, or None when the doctor has no session at that clinic that weekday.

    A session with no kuota (NULL) counts as 0: Khanza's Mobile JKN refuses those too."""
    key = (kd_dokter, kd_poli, hari_kerja(day))
    if key not in md.schedules:
        return None
    return md.schedules[key] or 0
