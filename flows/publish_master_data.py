"""Publish Khanza's active clinics, doctors, weekly schedules and remaining quota to the website database,
and report mapping entries that no longer match Khanza.

    khanza-sync publish-master-data [--days-ahead N]          (or: python -m flows.publish_master_data)

The website then offers only slots that exist and can show the remaining quota per day. Tables (created
if missing, defined in website/schema.py): khanza_clinics, khanza_doctors, khanza_schedules, khanza_quota,
khanza_regions (the village, district, regency and province names Khanza knows, for a form that offers them).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from prefect import flow, get_run_logger
from prefect.states import Completed

from flows import failed_setup, flow_timeout_seconds, offline_failed, preflight
from khanza_sync import artifacts
from khanza_sync.params import DaysAhead, documented
from khanza_sync.settings import load_settings
from tasks.master_data import publish_master_data as publish_task
from tasks.resources import Resources, open_resources, timed


@flow(name="publish-master-data", persist_result=False, timeout_seconds=flow_timeout_seconds())
@documented
def publish_master_data(days_ahead: DaysAhead | None = None):
    """Khanza's active clinics, doctors, schedules and remaining quota -> website tables."""
    try:
        res = open_resources(load_settings())
        preflight(res)
        return run_publish(res, days_ahead)
    except Exception as error:
        return failed_setup(error)  # one line naming the database or setting to fix (or a bug: raised)


def run_publish(res: Resources, days_ahead: int | None):
    """The master-data flow's body."""
    logger = get_run_logger()
    today = datetime.now(res.settings.tz).date()
    ahead = res.settings.booking_max_days_ahead if days_ahead is None else days_ahead
    try:
        written, problems, quota = timed(publish_task, res.settings)(
            res, today, ahead)
    except Exception as error:
        return offline_failed(error, res.settings, "master data not published (the website keeps the previous copy)")
    full = int((quota["remaining"] == 0).sum()) if not quota.empty else 0
    line = (f"published {written['khanza_clinics']} clinics, {written['khanza_doctors']} doctors, "
            f"{written['khanza_schedules']} sessions, {written['khanza_quota']} doctor-days "
            f"({full} full) for {today} to {today + timedelta(days=ahead)}")
    if "khanza_regions" in written:
        line += f", {written['khanza_regions']} region names"
    if problems:
        line += f" | {len(problems)} mapping problems"
    logger.info(line)
    quota_rows = [{**r, "visit_date": r["visit_date"].isoformat()} for r in quota.to_dict("records")]
    artifacts.publish_master_data(line, written, problems, quota_rows, res.settings.hospital_code)
    return Completed(message=line, data={"written": written, "mapping_problems": len(problems)})


if __name__ == "__main__":
    from khanza_sync.cli import run_module

    raise SystemExit(run_module("publish-master-data"))
