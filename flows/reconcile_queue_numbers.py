"""Keep the website telling the truth after Khanza changes things, and carry out website cancellations.

    khanza-sync reconcile [--days-back N] [--days-ahead N]   (or: python -m flows.reconcile_queue_numbers)

What it changes and what it only reports: khanza_sync/reconciliation.py.
"""
from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from khanza.db import is_transient
from khanza_sync import artifacts, reconciliation
from khanza_sync.params import DaysAhead, DaysBack, documented
from khanza_sync.settings import load_settings
from tasks.reconcile import cancel_requested, compare_with_khanza
from tasks.resources import open_resources
from tasks.retry import khanza_retry_options
from tasks.write_back import write_changes


@flow(name="reconcile-queue-numbers", persist_result=False)
@documented
def reconcile_queue_numbers(days_back: DaysBack = 7, days_ahead: DaysAhead | None = None):
    """Website vs Khanza: cancellations both ways, moved visits and check-ins written back, findings reported."""
    res = open_resources(load_settings())
    logger = get_run_logger()
    today = datetime.now(res.settings.tz).date()
    ahead = res.settings.booking_max_days_ahead if days_ahead is None else days_ahead
    retry = khanza_retry_options(res.settings)
    try:
        cancelled = cancel_requested.with_options(**retry)(res, today)
        compared = compare_with_khanza.with_options(**retry)(res, today, days_back, ahead)
    except Exception as error:
        if not is_transient(error):
            raise
        line = "Khanza offline: nothing reconciled, will run again on schedule"
        logger.warning(line)
        artifacts.publish_reconcile(line, {}, [], [])
        return Failed(message=line)
    updated = write_changes(res, compared.changes)
    counts, findings = reconciliation.tally(cancelled, compared, updated)
    line = reconciliation.summary_line(counts, findings)
    logger.info(line)
    artifacts.publish_reconcile(line, dict(counts), reconciliation.finding_rows(findings),
                                reconciliation.change_rows(cancelled.changes + compared.changes))
    return Completed(message=line, data={"counts": dict(counts), "findings": len(findings)})


if __name__ == "__main__":
    from khanza_sync.cli import run_module

    raise SystemExit(run_module("reconcile"))
