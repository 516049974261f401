"""Re-run the sync for a window of visit dates or submissions, optionally re-queuing rejected rows.

    python -m flows.backfill_registrations --start YYYY-MM-DD --end YYYY-MM-DD
        [--by visit|submitted] [--status rejected] [--error-code CODE ...] [--dry-run]

Uses the sync's own tasks (data checks, mapping, Khanza load, write-back), so a backfilled registration is
treated exactly like a scheduled one; the ledger makes it idempotent (a second run changes nothing).
`--status rejected` puts the window's rejected rows back to pending first (after a mapping fix).
`--dry-run` reads the window without claiming it, runs the data checks and the mapping, looks the rows
up in the ledger and the schedules, and reports what would happen: nothing is written anywhere.
"""
from __future__ import annotations

import argparse
from collections import Counter
from datetime import date, datetime, timezone

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from khanza_sync import outcomes
from flows import reporting
from flows.sync_registrations import sync_batch
from khanza import registration
from khanza_sync.settings import get_settings
from tasks.check import check_registrations
from tasks.limits import khanza_write_slot
from tasks.map import map_registrations
from tasks.resources import khanza_engine, website_engine
from website import reconcile as wr

STATUSES = (None, "pending", "rejected")


# ---------------------------------------------------------------- dry run (read-only)


def preview_table(predictions: pd.DataFrame, requeue: list[str]) -> list[dict]:
    rows = [{"would": "re-queue rejected", "error_code": "", "count": len(requeue),
             "registration_ids": ", ".join(requeue[:reporting.MAX_IDS_SHOWN])}]
    if not predictions.empty:
        grouped = predictions.fillna({"error_code": ""}).groupby(["would", "error_code"], sort=True)["id"]
        for (would, code), ids in grouped:
            ids = ids.astype(str).tolist()
            rows.append({"would": would, "error_code": code, "count": len(ids),
                         "registration_ids": ", ".join(ids[:reporting.MAX_IDS_SHOWN])
                         + (" ..." if len(ids) > reporting.MAX_IDS_SHOWN else "")})
    return rows


# ---------------------------------------------------------------- tasks


@task(name="requeue-rejected", cache_policy=NO_CACHE, persist_result=False)
def requeue_task(window: wr.Window, error_codes: list[str] | None, dry_run: bool) -> list[str]:
    settings = get_settings()
    fn = wr.rejected_ids if dry_run else wr.requeue_rejected
    return fn(website_engine(settings), window, settings.tz, error_codes)


@task(name="extract-window", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=5)
def extract_window(window: wr.Window, now_utc: datetime, batch_size: int) -> pd.DataFrame:
    settings = get_settings()
    return wr.claim_window(website_engine(settings), window, settings.tz, batch_size, now_utc,
                           settings.claim_lease_seconds)


@task(name="read-window", cache_policy=NO_CACHE, persist_result=False)
def read_window(window: wr.Window, statuses: list[str], now_utc: datetime, batch_size: int, offset: int
                ) -> pd.DataFrame:
    settings = get_settings()
    return wr.select_window(website_engine(settings), window, settings.tz, statuses, now_utc, batch_size, offset)


@task(name="preview-load", cache_policy=NO_CACHE, persist_result=False)
def preview_task(mapped: pd.DataFrame, rejections: pd.DataFrame, planned: Counter) -> pd.DataFrame:
    """What loading would do, from reads only (khanza.registration.predict)."""
    settings = get_settings()
    rows = [{"id": r["id"], "would": "reject", "error_code": r["error_code"]} for r in rejections.to_dict("records")]
    rows += registration.predict(khanza_engine(settings), mapped, settings, planned)
    return pd.DataFrame(rows, columns=["id", "would", "error_code"])


# ---------------------------------------------------------------- flow


def _run_name() -> str:
    p = flow_run.parameters
    name = f"backfill {p['start']} to {p['end']} by {p.get('by') or 'visit'}"
    if p.get("status"):
        name += f" +{p['status']}"
    return name + (" (dry run)" if p.get("dry_run") else "")


@flow(name="backfill-registrations", flow_run_name=_run_name, persist_result=False)
def backfill_registrations(start: date, end: date, by: str = "visit", status: str | None = None,
                           error_codes: list[str] | None = None, dry_run: bool = False,
                           batch_size: int | None = None):
    settings = get_settings()
    logger = get_run_logger()
    if status not in STATUSES:
        raise ValueError("status must be empty, 'pending' or 'rejected'")
    window = wr.Window(start, end, by)
    size = batch_size or settings.batch_size
    label = f"{start} to {end} by {by}"
    now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
    requeued = requeue_task(window, error_codes, dry_run) if status == "rejected" else []
    web = website_engine(settings)
    total = wr.count_window(web, window, settings.tz, "pending", now_utc) + (len(requeued) if dry_run else 0)
    progress = create_progress_artifact(progress=0.0, key="backfill-progress",
                                        description=f"Backfill {label}: {total} registrations to process")
    summary, checks, done = outcomes.RunSummary(), [], 0

    if dry_run:
        predictions, planned = [], Counter()
        statuses = ["pending"] + (["rejected"] if status == "rejected" else [])
        while True:
            batch = read_window(window, statuses, now_utc, size, done)
            if batch.empty:
                break
            now_local = datetime.now(settings.tz).replace(tzinfo=None)
            valid, invalid, report = check_registrations(batch, now_local)
            checks.append(report)
            mapped, unmapped = map_registrations(valid)
            predictions.append(preview_task(mapped, pd.concat([invalid, unmapped], ignore_index=True), planned))
            done += len(batch)
            update_progress_artifact(progress, progress=min(100.0, 100.0 * done / max(total, 1)))
        frame = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(
            columns=["id", "would", "error_code"])
        would = Counter(frame["would"])
        line = ", ".join([f"DRY RUN {label}: {len(frame)} registrations, nothing written | "
                          f"re-queue {len(requeued)} rejected"] + [f"{k} {v}" for k, v in sorted(would.items())])
        logger.info(line)
        reporting.publish_backfill(line, summary, checks, preview_table(frame, requeued))
        update_progress_artifact(progress, progress=100.0)
        return Completed(message=line, data={"dry_run": True, "would": dict(would), "requeue": len(requeued)})

    with khanza_write_slot(settings.khanza_concurrency_limit):
        while True:
            now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
            now_local = datetime.now(settings.tz).replace(tzinfo=None)
            batch = extract_window(window, now_utc, size)
            if batch.empty:
                break
            result, report, unreachable = sync_batch(batch, now_utc, now_local, settings)
            checks.append(report)
            summary.add(result)
            done += len(batch)
            update_progress_artifact(progress, progress=min(100.0, 100.0 * done / max(total, 1)))
            if unreachable:
                summary.khanza_unreachable = True
                break
    line = f"backfill {label}: re-queued {len(requeued)} rejected | {summary.line()}"
    logger.info(line)
    reporting.publish_backfill(line, summary, checks, None)
    if summary.khanza_unreachable:
        return Failed(message=line, data=summary.as_dict())
    update_progress_artifact(progress, progress=100.0)
    return Completed(message=line, data={**summary.as_dict(), "requeued": len(requeued)})


def _date(value: str) -> date:
    return date.fromisoformat(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=_date, required=True)
    parser.add_argument("--end", type=_date, required=True)
    parser.add_argument("--by", choices=["visit", "submitted"], default="visit")
    parser.add_argument("--status", choices=["pending", "rejected"], default=None)
    parser.add_argument("--error-code", action="append", dest="error_codes", default=None,
                        help="with --status rejected: only rows rejected with this code (repeatable)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    state = backfill_registrations(start=args.start, end=args.end, by=args.by, status=args.status,
                                   error_codes=args.error_codes, dry_run=args.dry_run, batch_size=args.batch_size,
                                   return_state=True)
    print(state.message)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
