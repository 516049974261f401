"""Khanza's master data for the website: active clinics, doctors, weekly schedules and remaining quota,
and the mapping entries that no longer match Khanza. The plain logic behind the publish-master-data flow.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

import mappings
from khanza import reconcile as kr
from khanza_sync.settings import Settings
from website import master_data as wmd


def _reverse(forward: dict[str, str]) -> dict[str, str]:
    """Khanza code -> website slug (the first slug by name when several map to one code)."""
    out: dict[str, str] = {}
    for slug, code in sorted(forward.items()):
        out.setdefault(code, slug)
    return out


def build_tables(snapshot: kr.MasterSnapshot, maps: mappings.Mappings, quota: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The website tables from a Khanza snapshot: active rows only, with the website slug where one exists."""
    clinics = snapshot.clinics[snapshot.clinics["active"]].copy()
    clinics["slug"] = clinics["kd_poli"].map(_reverse(maps.poliklinik))
    doctors = snapshot.doctors[snapshot.doctors["active"]].copy()
    doctors["slug"] = doctors["kd_dokter"].map(_reverse(maps.dokter))
    return {"khanza_clinics": clinics, "khanza_doctors": doctors, "khanza_schedules": snapshot.schedules,
            "khanza_quota": quota}


def publish(k_engine, w_engine, settings: Settings, today, days_ahead: int) -> tuple[dict[str, int], list[dict], pd.DataFrame]:
    """Read Khanza, write the website tables, return (rows written per table, mapping problems, quota)."""
    hi = today + timedelta(days=days_ahead)
    with k_engine.connect() as conn, conn.begin():
        snapshot = kr.read_master(conn, today, hi)
    maps = mappings.load(settings.mappings_dir)
    quota = kr.remaining_quota(snapshot, today, hi)
    tables = build_tables(snapshot, maps, quota)
    wmd.create_tables(w_engine)
    written = wmd.replace_all(w_engine, tables, datetime.now(timezone.utc).replace(tzinfo=None))
    return written, kr.mapping_problems(maps, snapshot), quota
