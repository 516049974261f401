"""Extract pending website registrations -> check -> map -> load into Khanza -> write the numbers back.

    python -m flows.sync_registrations [--batch-size N] [--max-batches N]
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pandas as pd
from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from khanza_sync import outcomes
from khanza_sync.error_codes import ErrorCode
from flows import reporting
from khanza.db import is_transient
from khanza_sync.settings import Settings, get_settings
from tasks.check import check_registrations
from tasks.extract import extract_pending
from tasks.limits import khanza_write_slot
from tasks.load import load_into_khanza, repair_from_ledger
from tasks.map import map_registrations
from tasks.resources import website_engine
from tasks.retry import khanza_retry_options
from tasks.write_back import write_back
from website import store


def sync_batch(batch: pd.DataFrame, now_utc: datetime, now_local: datetime, settings: Settings
               ) -> tuple[pd.DataFrame, list[dict], bool]:
    """ledger repair -> check -> map -> load -> write back for one claimed batch:
    (outcomes, data-check report, Khanza offline).

    Khanza access is retried on transient errors; when the retries are exhausted the batch's rows are
    deferred (still pending, KHANZA_UNREACHABLE), never lost. Backfill runs the same function."""
    khanza_retry = khanza_retry_options(settings)
    try:
        # The ledger first: a registration a cut-off run already loaded is repaired, never re-judged
        # (its visit date may have passed since, but the patient has the visit).
        repaired = repair_from_ledger.with_options(**khanza_retry)(batch)
    except Exception as error:
        if not is_transient(error):
            _defer_on_error(batch, now_utc, settings)
            raise
        # Khanza is away: report only the data problems that no ledger entry could contradict.
        _, invalid, report = check_registrations(batch, now_local)
        invalid = invalid[invalid["error_code"] != ErrorCode.VISIT_DATE_PASSED.value]
        return _deferred_batch(batch, invalid, report, now_utc, settings)
    fresh = batch[~batch["id"].isin(repaired["id"])]
    try:
        valid, invalid, report = check_registrations(fresh, now_local)
        mapped, unmapped = map_registrations.with_options(**khanza_retry)(valid)
        loaded = load_into_khanza.with_options(**khanza_retry)(mapped)
    except Exception as error:
        if not is_transient(error):
            _defer_on_error(fresh, now_utc, settings, repaired)
            raise
        return _deferred_batch(fresh, invalid, report, now_utc, settings, repaired)
    result = outcomes.combine(repaired, outcomes.rejected(invalid), outcomes.rejected(unmapped), loaded)
    result = outcomes.with_backoff(result, batch.set_index("id")["attempts"], now_utc, settings)
    write_back(result, now_utc)
    return result, report, False


def _deferred_batch(batch, invalid, report, now_utc, settings, repaired=None):
    """Retries exhausted, Khanza offline: rejections stand, every other row waits (pending), none is lost."""
    rest = batch[~batch["id"].isin(invalid["id"])]
    result = outcomes.combine(repaired, outcomes.rejected(invalid), outcomes.deferred(rest, now_utc, settings))
    write_back(result, now_utc)
    return result, report, True


def _defer_on_error(batch, now_utc, settings, repaired=None) -> None:
    """A fault of ours (not Khanza's, not the data's): the batch's rows wait with PIPELINE_ERROR and the
    usual backoff instead of coming back at every lease, and the run fails for the data team to see."""
    try:
        write_back.fn(outcomes.combine(repaired, outcomes.deferred(batch, now_utc, settings,
                                                                   ErrorCode.PIPELINE_ERROR)), now_utc)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        get_run_logger().error("could not mark the batch's registrations PIPELINE_ERROR; they return when their lease ends")


@flow(name="sync-registrations", persist_result=False)
def sync_registrations(batch_size: int | None = None, max_batches: int | None = None):
    settings = get_settings()
    logger = get_run_logger()
    summary, checks = outcomes.RunSummary(), []
    started = datetime.now(settings.tz).strftime("%Y-%m-%d %H:%M")

    with khanza_write_slot(settings.khanza_concurrency_limit):
        while max_batches is None or summary.batches < max_batches:
            now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
            now_local = datetime.now(settings.tz).replace(tzinfo=None)
            batch = extract_pending(now_utc, batch_size or settings.batch_size)
            if batch.empty:
                break
            result, report, unreachable = sync_batch(batch, now_utc, now_local, settings)
            checks.append(report)
            summary.add(result)
            logger.info("batch %d: %s", summary.batches, outcomes_line(result))
            if unreachable:
                summary.khanza_unreachable = True
                retry_at = outcomes.next_attempt(1, now_utc, settings)
                others = store.defer_due(website_engine(settings), now_utc, retry_at,
                                         ErrorCode.KHANZA_UNREACHABLE.value, ErrorCode.KHANZA_UNREACHABLE.message)
                summary.by_outcome["deferred"] += others
                break

    reporting.publish_sync(summary, checks)
    reporting.name_run(reporting.sync_run_name(summary, started))
    line = summary.line()
    logger.info(line)
    if summary.khanza_unreachable:
        return Failed(message=line, data=summary.as_dict())
    return Completed(message=line, data=summary.as_dict())


def outcomes_line(result) -> str:
    return ", ".join(f"{k}={v}" for k, v in result["outcome"].value_counts().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-batches", type=int, default=None)
    args = parser.parse_args(argv)
    state = sync_registrations(batch_size=args.batch_size, max_batches=args.max_batches, return_state=True)
    print(state.message)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
