"""Extract pending website registrations -> check -> map -> load into Khanza -> write the numbers back.

    khanza-sync sync [--batch-size N] [--max-batches N]     (or: python -m flows.sync_registrations)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

import pandas as pd
from prefect import flow, get_run_logger
from prefect.states import Completed

from flows import failed_setup, flow_timeout_seconds, khanza_offline, offline_state, preflight
from khanza_sync import artifacts, checkup, outcomes, publishing, reporting, signals
from khanza_sync.error_codes import ErrorCode
from khanza_sync.params import BatchSize, MaxBatches, documented
from khanza_sync.settings import Settings, load_settings
from tasks.check import check_registrations
from tasks.extract import extract_pending
from tasks.limits import khanza_write_slot
from tasks.load import load_into_khanza, repair_from_ledger
from tasks.map import map_registrations
from tasks.queue_status import publish_queue_status
from tasks.resources import Resources, open_resources, timed
from tasks.write_back import write_back
from website import store


def sync_batch(res: Resources, batch: pd.DataFrame, now_utc: datetime, now_local: datetime,
               retry: Settings | None = None) -> tuple[pd.DataFrame, list[dict], str | None]:
    """ledger repair -> check -> map -> load -> write back for one claimed batch:
    (outcomes, data-check report, why Khanza is offline or None).

    Khanza access is retried on transient errors; when the retries are exhausted the batch's rows are
    deferred (still pending, KHANZA_UNREACHABLE), never lost. Every task has TASK_TIMEOUT_SECONDS.
    `retry`: settings whose KHANZA_RETRIES/KHANZA_RETRY_DELAY_SECONDS the Khanza tasks use instead (follow mode's
    shorter ones: tasks.retry.capped).
    Backfill runs the same function."""
    settings = res.settings
    khanza_res = res if retry is None else replace(res, settings=retry)  # the Khanza tasks' retry policy
    try:
        # The ledger first: a registration a cut-off run already loaded is repaired, never re-judged
        # (its visit date may have passed since, but the patient has the visit).
        repaired = timed(repair_from_ledger, settings)(khanza_res, batch)
    except Exception as error:
        if not khanza_offline(error):
            _defer_on_error(res, batch, now_utc)
            raise
        # Khanza is away: report only the data problems that no ledger entry could contradict.
        _, invalid, report = check_registrations(settings, batch, now_local)
        invalid = invalid[invalid["error_code"] != ErrorCode.VISIT_DATE_PASSED.value]
        return _deferred_batch(res, batch, invalid, report, now_utc, offline=_why(error, settings))
    fresh = batch[~batch["id"].isin(repaired["id"])]
    try:
        valid, invalid, report = check_registrations(settings, fresh, now_local)
        mapped, unmapped = timed(map_registrations, settings)(khanza_res, valid)
        loaded = timed(load_into_khanza, settings)(khanza_res, mapped)
    except Exception as error:
        if not khanza_offline(error):
            _defer_on_error(res, fresh, now_utc, repaired)
            raise
        return _deferred_batch(res, fresh, invalid, report, now_utc, repaired, offline=_why(error, settings))
    result = outcomes.combine(repaired, outcomes.rejected(invalid), outcomes.rejected(unmapped), loaded)
    result = outcomes.with_backoff(result, batch.set_index("id")["attempts"], now_utc, settings)
    timed(write_back, settings)(res, result, now_utc)
    return result, report, None


def _why(error: Exception, settings) -> str:
    """Which database and what happened, for the run's message (never patient data: driver messages are
    explained or cut to their first line, and bound values are hidden by the engines)."""
    line = checkup.explain(error, settings)
    if line:
        return line
    text = str(error).strip().splitlines()
    return f"{checkup.khanza_where(settings)}: {type(error).__name__}: {text[0] if text else ''}"


def sync_batches(res: Resources, claim: Callable[[datetime, int], pd.DataFrame], summary: outcomes.RunSummary,
                 checks: list, batch_size: int, max_batches: int | None = None,
                 after_batch: Callable[[pd.DataFrame], None] | None = None,
                 on_offline: Callable[[str], None] | None = None, retry: Settings | None = None) -> datetime | None:
    """Claim and sync batches until nothing is due (or `max_batches`); sync and backfill share this loop.
    Returns the time Khanza was found offline (the loop stops there), or None; `on_offline` gets the reason
    (which database, what happened: checkup.explain) for the run's message. A burst that registered people
    refreshes the website's remaining quota of their visit days at its end."""
    quota_days: set = set()
    while max_batches is None or summary.batches < max_batches:
        now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
        now_local = datetime.now(res.settings.tz).replace(tzinfo=None)
        batch = claim(now_utc, batch_size)
        if batch.empty:
            break
        result, report, offline = sync_batch(res, batch, now_utc, now_local, retry)
        checks.append(report)
        summary.add(result, report)
        quota_days |= publishing.created_days(batch, result)
        if after_batch:
            after_batch(result)
        if offline:
            summary.khanza_unreachable = True
            if on_offline:
                on_offline(offline)
            return now_utc
    publishing.refresh_quota(res.khanza, res.website, res.settings, quota_days)
    return None


def defer_others(res: Resources, offline_at: datetime) -> int:
    """Khanza went offline at `offline_at`: every other due row waits too, with one shared retry time, so the
    next runs (or the follow mode) do not hammer a dead server. Returns how many rows were deferred."""
    retry_at = outcomes.next_attempt(1, offline_at, res.settings)
    return store.defer_due(res.website, offline_at, retry_at, ErrorCode.KHANZA_UNREACHABLE.value,
                           ErrorCode.KHANZA_UNREACHABLE.message)


def _deferred_batch(res: Resources, batch, invalid, report, now_utc, repaired=None, *, offline: str):
    """Retries exhausted, Khanza offline: rejections stand, every other row waits (pending), none is lost."""
    rest = batch[~batch["id"].isin(invalid["id"])]
    result = outcomes.combine(repaired, outcomes.rejected(invalid), outcomes.deferred(rest, now_utc, res.settings))
    timed(write_back, res.settings)(res, result, now_utc)
    return result, report, offline


def _defer_on_error(res: Resources, batch, now_utc, repaired=None) -> None:
    """A fault of ours (not Khanza's, not the data's): the batch's rows wait with PIPELINE_ERROR and the
    usual backoff instead of coming back at every lease, and the run fails for the data team to see."""
    try:
        store.write_outcomes(res.website, outcomes.combine(repaired, outcomes.deferred(
            batch, now_utc, res.settings, ErrorCode.PIPELINE_ERROR)), now_utc)  # write_back's body, no task run
    except Exception:  # noqa: BLE001 - the original error is the one to report
        get_run_logger().error("could not mark the batch's registrations PIPELINE_ERROR; they return when their lease ends")


@flow(name="sync-registrations", persist_result=False, timeout_seconds=flow_timeout_seconds())
@documented
def sync_registrations(batch_size: BatchSize | None = None, max_batches: MaxBatches | None = None):
    """Pending website registrations into Khanza, real queue numbers back to the website."""
    try:
        res = open_resources(load_settings())
        reached = preflight(res)
        return run_sync(res, batch_size, max_batches, resume=reached)
    except Exception as error:
        return failed_setup(error)  # one line naming the database or setting to fix (or a bug: raised)


def run_sync(res: Resources, batch_size: int | None, max_batches: int | None, resume: bool = False):
    """The sync flow's body: the batch loop under the Khanza write slot, then the summary and artifacts.
    `resume`: Khanza answered the preflight, so registrations that wait only because it was offline
    (KHANZA_UNREACHABLE) are taken now rather than at the end of their backoff (the follow mode does the same)."""
    settings = res.settings
    logger = get_run_logger()
    summary, checks, why_offline = outcomes.RunSummary(), [], []
    started = datetime.now(settings.tz).strftime("%Y-%m-%d %H:%M")

    with khanza_write_slot(settings.khanza_concurrency_limit, settings.khanza_slot_lease_seconds):
        if resume:  # under the slot: no other run holds a lease on these rows
            waiting = store.resume_waiting(res.website, datetime.now(timezone.utc).replace(tzinfo=None),
                                           ErrorCode.KHANZA_UNREACHABLE.value)
            if waiting:
                logger.info("Khanza answers: %d registrations that waited for it are taken now", waiting)
        offline_at = sync_batches(
            res, lambda now, size: timed(extract_pending, settings)(res, now, size), summary, checks,
            batch_size or settings.batch_size, max_batches,
            after_batch=lambda result: logger.info("batch %d: %s", summary.batches, reporting.batch_line(result)),
            on_offline=why_offline.append)
        if offline_at:
            summary.by_outcome["deferred"] += defer_others(res, offline_at)
    signals.after_sync(res, summary)  # alerts: rejections per hour, registrations needing review

    if summary.total:  # an empty run (most runs) publishes nothing: its name says "nothing pending"
        artifacts.publish_sync(summary, checks, settings.hospital_code)
        timed(publish_queue_status, settings)(res)
    artifacts.name_run(reporting.sync_run_name(summary, started))
    line = summary.line() + "".join(f" ({why})" for why in why_offline)
    logger.info(line)
    if summary.khanza_unreachable:
        return offline_state(line, data=summary.as_dict())
    return Completed(message=line, data=summary.as_dict())


if __name__ == "__main__":
    from khanza_sync.cli import run_module

    raise SystemExit(run_module("sync"))
