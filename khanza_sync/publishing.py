"""Khanza's master data for the website: active clinics, doctors, weekly schedules, remaining quota and the region
names Khanza knows,
and the mapping entries that no longer match Khanza. The plain logic behind the publish-master-data flow, and
the quota refresh that sync/follow bursts and reconcile runs do (the quota as the loader decides it).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pandas as pd

import mappings
from khanza import reconcile as kr
from khanza import regions as kregions
from khanza_sync.settings import Settings
from website import master_data as wmd

log = logging.getLogger(__name__)


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


def region_table(known: dict[str, list[tuple[object, str]]]) -> pd.DataFrame:
    """khanza_regions rows from khanza.regions.known: level, Khanza's id, name."""
    return pd.DataFrame([{"level": level, "id": int(i), "name": name} for level, rows in known.items()
                         for i, name in rows], columns=["level", "id", "name"])


def upcoming(today: date, days_ahead: int) -> set[date]:
    return {today + timedelta(days=n) for n in range(days_ahead + 1)}


def publish(k_engine, w_engine, settings: Settings, today, days_ahead: int) -> tuple[dict[str, int], list[dict], pd.DataFrame]:
    """Read Khanza, write the website tables, return (rows written per table, mapping problems, quota)."""
    with k_engine.connect() as conn, conn.begin():
        snapshot = kr.read_master(conn)
        quota = kr.read_quota(conn, settings, upcoming(today, days_ahead))
        region_rows = region_table(kregions.known(conn))
    maps = mappings.load(settings.mappings_dir)
    tables = {**build_tables(snapshot, maps, quota), "khanza_regions": region_rows}
    wmd.create_tables(w_engine)
    written = wmd.replace_all(w_engine, tables, datetime.now(timezone.utc).replace(tzinfo=None))
    return written, kr.mapping_problems(maps, snapshot), quota


def publish_quota(k_engine, w_engine, settings: Settings, days: set[date]) -> int:
    """Refresh the website's remaining quota (`khanza_quota`) of `days` only, from what Khanza holds now, as the
    loader decides it: after a sync or follow burst that registered someone for those days, and on every
    reconcile run for the whole booking window. Returns the rows written."""
    if not days:
        return 0
    with k_engine.connect() as conn, conn.begin():
        quota = kr.read_quota(conn, settings, days)
    wmd.create_tables(w_engine)
    return wmd.replace_quota(w_engine, quota, days, datetime.now(timezone.utc).replace(tzinfo=None))


def refresh_quota(k_engine, w_engine, settings: Settings, days: set[date]) -> None:
    """`publish_quota` for a run that registered people or a reconcile run: called in the flow itself, not as a
    task (follow mode adds no task run for it). Not being able to is logged and left to the next burst or
    reconcile run: it never fails the run."""
    if not days:
        return
    try:
        publish_quota(k_engine, w_engine, settings, days)
    except Exception as error:  # noqa: BLE001 - the quota is a courtesy to the website, the registrations are done
        log.warning("remaining quota not refreshed on the website (%s); the next burst or reconcile run does it",
                    type(error).__name__)


def created_days(batch: pd.DataFrame, result: pd.DataFrame) -> set[date]:
    """The visit dates of the registrations a batch created in Khanza (whose quota it changed)."""
    created = set(result.loc[result["outcome"] == "created", "id"])
    return {day for reg_id, value in zip(batch["id"], batch["visit_date"])
            if reg_id in created and (day := kr.as_date(value)) is not None}
