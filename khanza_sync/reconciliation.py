"""Reconciliation of the website with Khanza: the plain logic behind the reconcile flow.

1. Cancellations: rows the website set to `cancel_requested` are cancelled in Khanza the Khanza way
   (visit stts 'Batal' and biaya_reg 0 while not served, as DlgReg; a booking deleted, as the booking
   dialogs do) and set `cancelled`; a served visit is not cancelled and the reason is written back
   (status stays `synced`). Only the visit or booking the ledger says the pipeline wrote, by its exact
   identity, is touched, once: the decision is recorded in the ledger (khanza/cancellation.py). Rows the
   website set `cancelled` itself (also while deferred) are finished in Khanza the same way.
2. Compare every synced row in the window with Khanza (ledger -> reg_periksa / booking_registrasi) and
   work out what changed: cancelled or deleted in Khanza, doctor/clinic/date moved, booking checked in
   (no_rawat), queue number changed.
3. Findings, without changing Khanza: queue numbers shared in one scope, synced rows with no visit, ledger
   visits with no website row, provisional numbers that differ from the final one.

Khanza SQL stays in khanza/, website SQL in website/; this module joins the two sides.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Engine

import mappings
from khanza import cancellation, ledger
from khanza import reconcile as kr
from khanza_sync.settings import Settings
from website import reconcile as wr


@dataclass
class Outcome:
    """What one reconcile step did. Changes and findings carry ids, codes, dates only."""

    changes: list[dict] = field(default_factory=list)
    findings: list[kr.Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def _numbers(entry: dict | None) -> dict:
    if not entry:
        return {}
    return {k: entry[k] for k in ("no_rkm_medis", "no_rawat", "no_reg") if entry.get(k)}


def process_cancellations(k_engine: Engine, w_engine: Engine, today: date) -> Outcome:
    """Carry out website cancellations in Khanza, once each (the ledger records the decision), then write the
    result to the website. Rows the website set `cancelled` itself are finished in Khanza the first time only."""
    out = Outcome()
    rows = wr.cancellation_rows(w_engine, today, cancellation.KHANZA_SIDE_CODES)
    if rows.empty:
        return out
    with k_engine.connect() as conn:
        with conn.begin():
            entries = ledger.lookup(conn, rows["id"].tolist())
            decided = ledger.cancel_records(conn, list(entries))
        for row in rows.to_dict("records"):
            entry = entries.get(row["id"])
            swept = row["status"] == "cancelled"
            if swept and (entry is None or entry["outcome"] != "created" or row["id"] in decided):
                continue  # nothing of ours in Khanza to finish cancelling, or finished by an earlier run
            result = cancellation.cancel(conn, row["id"], entry, kr.as_date(row["visit_date"]), today)
            if result.khanza_changed:
                out.counts["cancelled in Khanza"] += 1
            if result.left_alone:
                out.findings.append(kr.Finding("not_ours_left_alone", row["id"], result.left_alone,
                                               kr.as_date(row["visit_date"])))
            if swept:
                if not result.cancelled:
                    out.findings.append(kr.Finding("cancelled_but_live", row["id"], result.detail,
                                                   kr.as_date(row["visit_date"])))
                continue
            if result.cancelled:
                out.counts["cancelled"] += 1
                out.changes.append({"id": row["id"], "expected_status": "cancel_requested", "status": "cancelled",
                                    "error_code": result.reason.value, "last_error": result.reason.website_message,
                                    **_numbers(entry), "reason": f"cancel requested: {result.detail}"})
            else:
                out.counts["cancel refused"] += 1
                out.changes.append({"id": row["id"], "expected_status": "cancel_requested", "status": "synced",
                                    "error_code": result.reason.value, "last_error": result.reason.website_message,
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
    latest = kr.latest_booking_owners(entries.values())
    out.counts["synced rows checked"] = len(web)
    for row in web.to_dict("records"):
        entry = entries.get(row["id"])
        state = kr.locate(entry, kr.as_date(row["visit_date"]), snap, owned, latest) if entry else None
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


def tally(cancelled: Outcome, compared: Outcome, updated: int) -> tuple[Counter, list[kr.Finding]]:
    """One run's counts and findings from its two steps (`updated`: website rows the comparison changed)."""
    counts: Counter = Counter()
    counts.update(cancelled.counts)
    counts.update(compared.counts)
    by_reason = Counter(("cancelled in Khanza" if c.get("status") == "cancelled" else "changed")
                        for c in compared.changes)
    counts["changed"] = by_reason.get("changed", 0)
    counts["cancelled/deleted in Khanza"] = by_reason.get("cancelled in Khanza", 0)
    counts["website rows updated"] += updated
    findings = cancelled.findings + compared.findings
    counts["findings"] = len(findings)
    return counts, findings
