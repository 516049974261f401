"""Publish Khanza's active clinics, doctors, weekly schedules and remaining quota to the website database,
and report mapping entries that no longer match Khanza.

    python -m flows.publish_master_data [--days-ahead N]

The website then offers only slots that exist and can show the remaining quota per day. Tables (created
if missing, DDL in sql/website_master_*.sql): khanza_clinics, khanza_doctors, khanza_schedules, khanza_quota.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

import mappings
from flows import reporting
from khanza import reconcile as kr
from khanza.db import is_transient
from khanza_sync.settings import Settings, get_settings
from tasks.resources import khanza_engine, website_engine
from tasks.retry import khanza_retry_options
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


@task(name="publish-master-data", cache_policy=NO_CACHE, persist_result=False)
def publish_task(today, days_ahead: int):
    settings = get_settings()
    return publish(khanza_engine(settings), website_engine(settings), settings, today, days_ahead)


@flow(name="publish-master-data", persist_result=False)
def publish_master_data(days_ahead: int | None = None):
    settings = get_settings()
    logger = get_run_logger()
    today = datetime.now(settings.tz).date()
    ahead = settings.booking_max_days_ahead if days_ahead is None else days_ahead
    try:
        written, problems, quota = publish_task.with_options(**khanza_retry_options(settings))(today, ahead)
    except Exception as error:
        if not is_transient(error):
            raise
        line = "Khanza offline: master data not published (the website keeps the previous copy)"
        logger.warning(line)
        return Failed(message=line)
    full = int((quota["remaining"] == 0).sum()) if not quota.empty else 0
    line = (f"published {written['khanza_clinics']} clinics, {written['khanza_doctors']} doctors, "
            f"{written['khanza_schedules']} sessions, {written['khanza_quota']} doctor-days "
            f"({full} full) for {today} to {today + timedelta(days=ahead)}")
    if problems:
        line += f" | {len(problems)} mapping problems"
    logger.info(line)
    quota_rows = [{**r, "visit_date": r["visit_date"].isoformat()} for r in quota.to_dict("records")]
    reporting.publish_master_data(line, written, problems, quota_rows)
    return Completed(message=line, data={"written": written, "mapping_problems": len(problems)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days-ahead", type=int, default=None)
    args = parser.parse_args(argv)
    state = publish_master_data(days_ahead=args.days_ahead, return_state=True)
    print(state.message)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
