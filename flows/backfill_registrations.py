"""Re-run the sync for a window of visit dates or submissions, optionally re-queuing rejected rows.

    khanza-sync backfill --start YYYY-MM-DD --end YYYY-MM-DD [--by visit|submitted] [--status rejected]
        [--error-code CODE ...] [--dry-run]                   (or: python -m flows.backfill_registrations ...)

Uses the sync's own tasks (data checks, mapping, Khanza load, write-back), so a backfilled registration is
treated exactly like a scheduled one; the ledger makes it idempotent (a second run changes nothing).
`status=rejected` puts the window's rejected rows back to pending first (after a mapping fix).
`dry_run` reads the window without claiming it, runs the data checks and the mapping, looks the rows
up in the ledger and the schedules, and reports what would happen: nothing is written anywhere.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run
from prefect.states import Completed

from flows import failed_setup, flow_timeout_seconds, offline_state, preflight
from flows.sync_registrations import sync_batches
from khanza_sync import artifacts, outcomes, reporting
from khanza_sync.error_codes import ErrorCode
from khanza_sync.params import BatchSize, RequeueStatus, WindowBy, documented
from khanza_sync.settings import load_settings
from tasks.check import check_registrations
from tasks.extract import extract_window, read_window
from tasks.limits import khanza_write_slot
from tasks.load import preview_load
from tasks.map import map_registrations
from tasks.resources import Resources, open_resources, timed
from tasks.write_back import requeue_rejected
from website import reconcile as wr


def _run_name() -> str:
    p = flow_run.parameters
    name = f"backfill {p['start']} to {p['end']} by {p.get('by') or 'visit'}"
    if p.get("status"):
        name += f" +{p['status']}"
    return name + (" (dry run)" if p.get("dry_run") else "")


@flow(name="backfill-registrations", flow_run_name=_run_name, persist_result=False,
      timeout_seconds=flow_timeout_seconds())
@documented
def backfill_registrations(start: date, end: date, by: WindowBy = "visit", status: RequeueStatus | None = None,
                           error_codes: list[ErrorCode] | None = None, dry_run: bool = False,
                           batch_size: BatchSize | None = None):
    """Re-run the sync for a window; optionally re-queue rejected rows first; or only report (dry run)."""
    try:
        res = open_resources(load_settings())
        preflight(res)
        return run_backfill(res, start, end, by, status, error_codes, dry_run, batch_size)
    except Exception as error:
        return failed_setup(error)  # one line naming the database or setting to fix (or a bug: raised)


def run_backfill(res: Resources, start: date, end: date, by: str, status: str | None, error_codes, dry_run: bool,
                 batch_size: int | None):
    """The backfill flow's body."""
    window = wr.Window(start, end, by)
    codes = [ErrorCode(c).value for c in error_codes] if error_codes else None
    size = batch_size or res.settings.batch_size
    now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
    requeued = timed(requeue_rejected, res.settings)(res, window, codes, dry_run) if status == "rejected" else []
    total = wr.count_window(res.website, window, res.settings.tz, "pending", now_utc) + (len(requeued) if dry_run else 0)
    label = f"{start} to {end} by {by}"
    progress = create_progress_artifact(progress=0.0,
                                        key=artifacts.key("backfill-progress", res.settings.hospital_code),
                                        description=f"Backfill {label}: {total} registrations to process")
    if dry_run:
        statuses = ["pending"] + (["rejected"] if status == "rejected" else [])
        return preview_window(res, window, label, statuses, requeued, progress, total, size)
    return load_window(res, window, label, requeued, progress, total, size)


def preview_window(res: Resources, window: wr.Window, label: str, statuses: list[str], requeued: list[str],
                   progress, total: int, size: int):
    """The dry-run path: page through the window read-only, check, map and predict; nothing is written."""
    now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
    predictions, checks, planned, done = [], [], Counter(), 0
    while not (batch := timed(read_window, res.settings)(res, window, statuses, now_utc, size, done)).empty:
        now_local = datetime.now(res.settings.tz).replace(tzinfo=None)
        valid, invalid, report = check_registrations(res.settings, batch, now_local)
        checks.append(report)
        mapped, unmapped = timed(map_registrations, res.settings)(res, valid)
        predictions.append(timed(preview_load, res.settings)(res, mapped, pd.concat([invalid, unmapped],
                                                                                    ignore_index=True), planned))
        done += len(batch)
        update_progress_artifact(progress, progress=min(100.0, 100.0 * done / max(total, 1)))
    frame = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(
        columns=["id", "would", "error_code"])
    would = Counter(frame["would"])
    line = ", ".join([f"DRY RUN {label}: {len(frame)} registrations, nothing written | "
                      f"re-queue {len(requeued)} rejected"] + [f"{k} {v}" for k, v in sorted(would.items())])
    get_run_logger().info(line)
    artifacts.publish_backfill(line, outcomes.RunSummary(), checks, reporting.preview_table(frame, requeued),
                               res.settings.hospital_code)
    update_progress_artifact(progress, progress=100.0)
    return Completed(message=line, data={"dry_run": True, "would": dict(would), "requeue": len(requeued)})


def load_window(res: Resources, window: wr.Window, label: str, requeued: list[str], progress, total: int, size: int):
    """The load path: claim the window's due pending rows batch by batch and sync them as the schedule would."""
    summary, checks, why_offline = outcomes.RunSummary(), [], []

    def advance(_result) -> None:
        update_progress_artifact(progress, progress=min(100.0, 100.0 * summary.total / max(total, 1)))

    with khanza_write_slot(res.settings.khanza_concurrency_limit, res.settings.khanza_slot_lease_seconds):
        sync_batches(res, lambda now, n: timed(extract_window, res.settings)(res, window, now, n), summary, checks,
                     size, after_batch=advance, on_offline=why_offline.append)
    line = f"backfill {label}: re-queued {len(requeued)} rejected | {summary.line()}" + "".join(
        f" ({why})" for why in why_offline)
    get_run_logger().info(line)
    artifacts.publish_backfill(line, summary, checks, None, res.settings.hospital_code)
    if summary.khanza_unreachable:
        return offline_state(line, data=summary.as_dict())
    update_progress_artifact(progress, progress=100.0)
    return Completed(message=line, data={**summary.as_dict(), "requeued": len(requeued)})


if __name__ == "__main__":
    from khanza_sync.cli import run_module

    raise SystemExit(run_module("backfill"))
