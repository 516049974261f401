"""Keep the website telling the truth after Khanza changes things, and carry out website cancellations.

    python -m flows.reconcile_queue_numbers [--days-back N] [--days-ahead N]

1. Cancellations: rows the website set to `cancel_requested` are cancelled in Khanza the Khanza way
   (visit stts 'Batal' while not served, booking status 'Batal') and set `cancelled`; a served visit is
   not cancelled and the reason is written back (status stays `synced`).
2. Compare every synced row in the window with Khanza (ledger -> reg_periksa / booking_registrasi) and
   write back what changed: cancelled or deleted in Khanza, doctor/clinic/date moved, booking checked in
   (no_rawat), queue number changed.
3. Report, without changing Khanza: queue numbers shared in one scope, synced rows with no visit, ledger
   visits with no website row, provisional numbers that differ from the final one.
"""
# (no `from __future__ import annotations`: the Outcome dataclass must build when loaded by file path)

import argparse
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from sqlalchemy import Engine

import mappings
from flows import reporting
from khanza import cancellation, ledger
from khanza import reconcile as kr
from khanza.db import is_transient
from khanza_sync.settings import Settings, get_settings
from tasks.limits import khanza_write_slot
from tasks.resources import khanza_engine, website_engine
from tasks.retry import khanza_retry_options
from website import reconcile as wr


@dataclass
class Outcome:
    """What one reconcile step did. Changes and findings carry ids, codes, dates only."""

    changes: list[dict] = field(default_factory=list)
    findings: list[kr.Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


# ---------------------------------------------------------------- plain functions (tests call these)


def _numbers(entry: dict | None) -> dict:
    if not entry:
        return {}
    return {k: entry[k] for k in ("no_rkm_medis", "no_rawat", "no_reg") if entry.get(k)}


def process_cancellations(k_engine: Engine, w_engine: Engine, today: date) -> Outcome:
    """Carry out website cancellations in Khanza, then write the result to the website."""
    out = Outcome()
    rows = wr.cancellation_rows(w_engine, today, cancellation.WEBSITE_CANCEL_CODES)
    if rows.empty:
        return out
    with k_engine.connect() as conn:
        with conn.begin():
            entries = ledger.lookup(conn, rows["id"].tolist())
        for row in rows.to_dict("records"):
            entry = entries.get(row["id"])
            swept = row["status"] == "cancelled"
            if swept and (entry is None or entry["outcome"] != "created"):
                continue  # nothing of ours in Khanza to finish cancelling
            result = cancellation.cancel(conn, row["id"], entry, kr.as_date(row["visit_date"]), today)
            if result.khanza_changed:
                out.counts["cancelled in Khanza"] += 1
            if swept:
                if not result.cancelled:
                    out.findings.append(kr.Finding("cancelled_but_live", row["id"], result.detail,
                                                   kr.as_date(row["visit_date"])))
                continue
            if result.cancelled:
                out.counts["cancelled"] += 1
                out.changes.append({"id": row["id"], "expected_status": "cancel_requested", "status": "cancelled",
                                    "error_code": result.reason.value, "last_error": result.reason.message,
                                    **_numbers(entry), "reason": f"cancel requested: {result.detail}"})
            else:
                out.counts["cancel refused"] += 1
                out.changes.append({"id": row["id"], "expected_status": "cancel_requested", "status": "synced",
                                    "error_code": result.reason.value, "last_error": result.reason.message,
                                    **_numbers(entry), "reason": f"cancel refused: {result.detail}"})
                out.findings.append(kr.Finding("cancel_refused", row["id"], result.reason.value,
                                               kr.as_date(row["visit_date"])))
    out.counts["website rows updated"] += wr.apply_changes(w_engine, out.changes)
    return out


def compare_with_khanza(k_engine: Engine, w_engine: Engine, settings: Settings, today: date,
                        days_back: int, days_ahead: int) -> Outcome:
    """Read both sides (read-only) and work out the website changes and the findings."""
    out = Outcome()
    lo, hi = today - timedelta(days=days_back), today + timedelta(days=days_ahead)
    web = wr.synced_rows(w_engine, lo, hi)
    maps = mappings.load(settings.mappings_dir)
    booking = settings.khanza_target == "booking"
    shared = settings.noreg_shared_with_booking
    with k_engine.connect() as conn, conn.begin():
        entries = kr.ledger_entries(conn, web["id"].tolist(), lo, hi)
        snap = kr.read_snapshot(conn, list(entries.values()), lo, hi)
        out.findings += kr.shared_no_reg(conn, lo, hi, settings.noreg_scope,
                                         visits=shared or not booking, bookings=shared or booking)
    owned = {(e["no_rkm_medis"], e["tanggal"]) for e in entries.values() if e["target"] == "booking"}
    out.counts["synced rows checked"] = len(web)
    for row in web.to_dict("records"):
        entry = entries.get(row["id"])
        state = kr.locate(entry, kr.as_date(row["visit_date"]), snap, owned) if entry else None
        change, findings = kr.compare(row, entry, state, maps, today)
        out.findings += findings
        if change:
            out.changes.append(change)
    on_website = set(web["id"])
    unseen = [i for i, e in entries.items() if i not in on_website and lo <= e["tanggal"] <= hi]
    existing = wr.existing_ids(w_engine, unseen) if unseen else set()
    for reg_id in sorted(set(unseen) - existing):
        out.findings.append(kr.Finding("ledger_without_website_row", reg_id,
                                       f"{entries[reg_id]['target']} kd_poli={entries[reg_id]['kd_poli']}",
                                       entries[reg_id]["tanggal"]))
    return out


def finding_rows(findings: list[kr.Finding]) -> list[dict]:
    return [{**f.as_row(), "meaning": kr.FINDING_MEANING.get(f.kind, "")} for f in findings]


def change_rows(changes: list[dict]) -> list[dict]:
    return [{"registration_id": c["id"], "change": c.get("reason", "")} for c in changes]


# ---------------------------------------------------------------- tasks


@task(name="cancel-requested", cache_policy=NO_CACHE, persist_result=False)
def cancel_requested(today: date) -> Outcome:
    settings = get_settings()
    with khanza_write_slot(settings.khanza_concurrency_limit):
        return process_cancellations(khanza_engine(settings), website_engine(settings), today)


@task(name="compare-with-khanza", cache_policy=NO_CACHE, persist_result=False)
def compare_task(today: date, days_back: int, days_ahead: int) -> Outcome:
    settings = get_settings()
    return compare_with_khanza(khanza_engine(settings), website_engine(settings), settings, today,
                               days_back, days_ahead)


@task(name="write-back-changes", cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=5)
def write_changes(changes: list[dict]) -> int:
    return wr.apply_changes(website_engine(get_settings()), changes)


# ---------------------------------------------------------------- flow


def summary_line(counts: Counter, findings: list[kr.Finding]) -> str:
    kinds = Counter(f.kind for f in findings)
    parts = [f"{counts.get('synced rows checked', 0)} synced rows checked",
             f"{counts.get('changed', 0)} updated from Khanza",
             f"{counts.get('cancelled/deleted in Khanza', 0)} cancelled/deleted in Khanza",
             f"{counts.get('cancelled', 0)} cancellations done",
             f"{counts.get('cancel refused', 0)} refused"]
    text = ", ".join(parts)
    if findings:
        text += " | findings: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
    return text


@flow(name="reconcile-queue-numbers", persist_result=False)
def reconcile_queue_numbers(days_back: int = 7, days_ahead: int | None = None):
    settings = get_settings()
    logger = get_run_logger()
    today = datetime.now(settings.tz).date()
    ahead = settings.booking_max_days_ahead if days_ahead is None else days_ahead
    retry = khanza_retry_options(settings)
    counts: Counter = Counter()
    try:
        cancelled = cancel_requested.with_options(**retry)(today)
        compared = compare_task.with_options(**retry)(today, days_back, ahead)
    except Exception as error:
        if not is_transient(error):
            raise
        line = "Khanza offline: nothing reconciled, will run again on schedule"
        logger.warning(line)
        reporting.publish_reconcile(line, {}, [], [])
        return Failed(message=line)
    counts.update(cancelled.counts)
    counts.update({k: v for k, v in compared.counts.items()})
    updated = write_changes(compared.changes)
    by_reason = Counter(("cancelled in Khanza" if c.get("status") == "cancelled" else "changed")
                        for c in compared.changes)
    counts["changed"] = by_reason.get("changed", 0)
    counts["cancelled/deleted in Khanza"] = by_reason.get("cancelled in Khanza", 0)
    counts["website rows updated"] += updated
    findings = cancelled.findings + compared.findings
    counts["findings"] = len(findings)
    line = summary_line(counts, findings)
    logger.info(line)
    reporting.publish_reconcile(line, dict(counts), finding_rows(findings),
                                change_rows(cancelled.changes + compared.changes))
    return Completed(message=line, data={"counts": dict(counts), "findings": len(findings)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days-back", type=int, default=7)
    parser.add_argument("--days-ahead", type=int, default=None)
    args = parser.parse_args(argv)
    state = reconcile_queue_numbers(days_back=args.days_back, days_ahead=args.days_ahead, return_state=True)
    print(state.message)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
