"""Keep the website telling the truth after Khanza changes things, and carry out website cancellations.

    khanza-sync reconcile [--days-back N] [--days-ahead N]   (or: python -m flows.reconcile_queue_numbers)

What it changes and what it only reports: khanza_sync/reconciliation.py.
"""
from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger
from prefect.states import Completed

from flows import failed_setup, flow_timeout_seconds, offline_failed, preflight
from khanza_sync import artifacts, publishing, reconciliation
from khanza_sync.params import DaysAhead, DaysBack, documented
from khanza_sync.settings import load_settings
from tasks.queue_status import publish_queue_status
from tasks.reconcile import cancel_requested, compare_with_khanza
from tasks.resources import Resources, open_resources, timed
from tasks.write_back import write_changes


@flow(name="reconcile-queue-numbers", persist_result=False, timeout_seconds=flow_timeout_seconds())
@documented
def reconcile_queue_numbers(days_back: DaysBack = 7, days_ahead: DaysAhead | None = None):
    """Website vs Khanza: cancellations both ways, moved visits and check-ins written back, findings reported."""
    try:
        res = open_resources(load_settings())
        preflight(res, mappings=False)
        return run_reconcile(res, days_back, days_ahead)
    except Exception as error:
        return failed_setup(error)  # one line naming the database or setting to fix (or a bug: raised)


def run_reconcile(res: Resources, days_back: int, days_ahead: int | None):
    """The reconcile flow's body."""
    logger = get_run_logger()
    today = datetime.now(res.settings.tz).date()
    ahead = res.settings.booking_max_days_ahead if days_ahead is None else days_ahead
    try:
        cancelled = timed(cancel_requested, res.settings)(res, today)
        compared = timed(compare_with_khanza, res.settings)(res, today, days_back, ahead)
    except Exception as error:
        return offline_failed(error, res.settings, "nothing reconciled, will run again on schedule",
                              on_offline=lambda line: _publish(res, line, {}, [], []))
    updated = timed(write_changes, res.settings)(res, compared.changes)
    # desk registrations and cancellations change the quota too: the website's copy of the window, refreshed
    publishing.refresh_quota(res.khanza, res.website, res.settings, publishing.upcoming(today, ahead))
    counts, findings = reconciliation.tally(cancelled, compared, updated)
    line = reconciliation.summary_line(counts, findings)
    logger.info(line)
    _publish(res, line, dict(counts), reconciliation.finding_rows(findings),
             reconciliation.change_rows(cancelled.changes + compared.changes))
    return Completed(message=line, data={"counts": dict(counts), "findings": len(findings)})


def _publish(res: Resources, line: str, counts: dict, finding_rows: list[dict], change_rows: list[dict]) -> None:
    """The run's own artifacts, then the queue at a glance: every run refreshes it, Khanza offline or not
    (it is the website's queue)."""
    artifacts.publish_reconcile(line, counts, finding_rows, change_rows, res.settings.hospital_code)
    timed(publish_queue_status, res.settings)(res)


if __name__ == "__main__":
    from khanza_sync.cli import run_module

    raise SystemExit(run_module("reconcile"))
