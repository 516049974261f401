"""Fixing one registration (or a few): re-queue after staff corrected the website row, and resolve a
PATIENT_CONFLICT by linking the registration to a Khanza patient or confirming a new one. Every decision is
recorded (who, when, why) in Khanza Sync's table khanza_sync_decisions (khanza/decisions.py), then exactly those
registrations are synced now, through the sync's own batch loop under the Khanza write slot.

    khanza-sync requeue ID [ID ...] --by NAME --reason TEXT [--dry-run]
    khanza-sync resolve-conflict ID (--link NO_RKM_MEDIS | --new-patient) --by NAME --reason TEXT [--dry-run]

A dry run writes nothing: it shows per id what the re-queue would do and what the sync would do now (data
checks, mapping, the loader's prediction). A refusal (unknown id, synced row, a patient that does not exist...)
ends the run in a Failed state named `Refused` with one line saying why, and nothing written; a re-queue of
several ids refuses only the ids concerned and goes on with the rest.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flows import failed_setup, flow_timeout_seconds, offline_state, preflight
from flows.sync_registrations import sync_batches
from khanza import decisions, patients
from khanza_sync import checkup, fixes, outcomes
from khanza_sync.error_codes import ErrorCode
from khanza_sync.fixes import Plan, Refused
from khanza_sync.params import (ConflictDecision, DecidedBy, NoRkmMedis, Reason, RegistrationId, RegistrationIds,
                                documented)
from khanza_sync.settings import load_settings
from tasks.check import check_registrations
from tasks.limits import khanza_write_slot
from tasks.load import preview_load
from tasks.map import map_registrations
from tasks.queue_status import publish_queue_status
from tasks.resources import Resources, open_resources, timed
from website import store

REFUSED_STATE_NAME = "Refused"  # staff asked for something not done: not a pipeline failure (no alert)


def _requeue_name() -> str:
    p = flow_run.parameters
    dry = " (dry run)" if p.get("dry_run") else ""
    return f"requeue {len(p.get('registration_ids') or [])} registration(s){dry}"


def _resolve_name() -> str:
    p = flow_run.parameters
    dry = " (dry run)" if p.get("dry_run") else ""
    return f"resolve conflict {p.get('registration_id')}: {p.get('decision')}{dry}"


@flow(name="requeue-registrations", flow_run_name=_requeue_name, persist_result=False,
      timeout_seconds=flow_timeout_seconds())
@documented
def requeue_registrations(registration_ids: RegistrationIds, decided_by: DecidedBy, reason: Reason,
                          dry_run: bool = False):
    """Put given registrations back to pending (after staff corrected them) and sync them now; or only report."""
    try:
        res = open_resources(load_settings())
        preflight(res)
        _require_decisions(res)
        return run_requeue(res, fixes.unique(registration_ids), decided_by.strip(), reason.strip(), dry_run)
    except Refused as refusal:
        return _refused(str(refusal))
    except Exception as error:
        return failed_setup(error)  # one line naming the database or setting to fix (or a bug: raised)


@flow(name="resolve-patient-conflict", flow_run_name=_resolve_name, persist_result=False,
      timeout_seconds=flow_timeout_seconds())
@documented
def resolve_patient_conflict(registration_id: RegistrationId, decision: ConflictDecision, decided_by: DecidedBy,
                             reason: Reason, no_rkm_medis: NoRkmMedis = "", dry_run: bool = False):
    """Resolve a PATIENT_CONFLICT: link the registration to a Khanza patient, or confirm a new patient."""
    try:
        res = open_resources(load_settings())
        preflight(res)
        _require_decisions(res)
        return run_resolve(res, registration_id.strip(), decision, (no_rkm_medis or "").strip() or None,
                           decided_by.strip(), reason.strip(), dry_run)
    except Refused as refusal:
        return _refused(str(refusal))
    except Exception as error:
        return failed_setup(error)


# ---------------------------------------------------------------- re-queue


def run_requeue(res: Resources, ids: list[str], decided_by: str, reason: str, dry_run: bool):
    now = _utc_now()
    plans = fixes.requeue_plan(ids, store.states(res.website, ids), now)
    accepted = [p for p in plans if p.action != "refused"]
    if not accepted:
        raise Refused("nothing re-queued: " + "; ".join(f"{p.id}: {p.note}" for p in plans))
    if dry_run:
        rows = fixes.preview_rows(plans, _predict(res, [p.id for p in accepted]))
        return _report(res, "requeue", "DRY RUN requeue, nothing written", rows, dry_run=True)

    with khanza_write_slot(res.settings.khanza_concurrency_limit, res.settings.khanza_slot_lease_seconds):
        # Inside the slot: no other sync run holds a lease on these rows or claims them before we do.
        # Rows already due are "re-queued" too (attempts reset), so every id synced here has its decision row.
        requeued = _record_and_requeue(res, accepted, "requeue", decided_by, reason)
        plans = [p if p.action == "refused" or p.id in requeued
                 else Plan(p.id, "refused", "changed meanwhile (no longer rejected or pending): not re-queued")
                 for p in plans]
        results, offline = _sync_now(res, [p.id for p in plans if p.action != "refused"])
    timed(publish_queue_status, res.settings)(res)  # the queue changed: queue-status-<code> says so now
    rows = fixes.outcome_rows(plans, results)
    return _report(res, "requeue", f"requeue by {decided_by}", rows, offline=offline)


# ---------------------------------------------------------------- resolve a PATIENT_CONFLICT


def run_resolve(res: Resources, reg_id: str, decision: str, no_rkm_medis: str | None, decided_by: str,
                reason: str, dry_run: bool):
    if (why := fixes.decision_refusal(decision, no_rkm_medis)) is not None:
        raise Refused(why)
    if (why := fixes.conflict_refusal(store.states(res.website, [reg_id]), reg_id)) is not None:
        raise Refused(f"{reg_id}: {why}")
    findings = _check_decision(res, reg_id, decision, no_rkm_medis)
    plan = Plan(reg_id, "requeue", f"{decision}: {findings}", ErrorCode.PATIENT_CONFLICT.value)
    if dry_run:
        rows = fixes.preview_rows([plan], _predict(res, [reg_id]))
        return _report(res, "resolve", "DRY RUN resolve conflict, nothing written", rows, dry_run=True, findings=findings)

    with khanza_write_slot(res.settings.khanza_concurrency_limit, res.settings.khanza_slot_lease_seconds):
        requeued = _record_and_requeue(res, [plan], decision, decided_by, reason, no_rkm_medis=no_rkm_medis,
                                       findings=findings, error_code=ErrorCode.PATIENT_CONFLICT.value)
        if not requeued:  # the row changed between the check and now: the decision was rolled back
            raise Refused(f"{reg_id}: changed meanwhile (no longer rejected with PATIENT_CONFLICT); nothing recorded")
        results, offline = _sync_now(res, [reg_id])
    timed(publish_queue_status, res.settings)(res)
    rows = fixes.outcome_rows([plan], results)
    return _report(res, "resolve", f"resolve conflict {decision} by {decided_by}", rows, offline=offline,
                   findings=findings)


def _check_decision(res: Resources, reg_id: str, decision: str, no_rkm_medis: str | None) -> str:
    """What the check found, as field names or counts (never values). A link to a patient Khanza does not have
    is refused here, before anything is written."""
    reg = _normalised(res, reg_id)
    with res.khanza.connect() as conn:
        if decision == "link_patient":
            patient = patients.by_record(conn, [no_rkm_medis]).get(no_rkm_medis)
            if patient is None:
                raise Refused(f"{reg_id}: no patient with that no_rkm_medis in Khanza; nothing recorded")
            return fixes.findings_text(fixes.differences(reg, patient))
        by_nik, by_card = patients.holders(conn, reg.get("nik"), reg.get("bpjs_number"))
    return fixes.holders_line(by_nik, by_card, bool(reg.get("bpjs_number")))


def _normalised(res: Resources, reg_id: str) -> dict:
    """The registration as the data checks normalise it (gender L/P, NIK without spaces...), for comparing."""
    from data_checks.normalize import normalize

    row = store.read_ids(res.website, [reg_id])
    now_local = datetime.now(res.settings.tz).replace(tzinfo=None)
    return normalize(row, now_local=now_local, tz=res.settings.tz, cutoff_hour=None).iloc[0].to_dict()


# ---------------------------------------------------------------- shared steps


def _require_decisions(res: Resources) -> None:
    with res.khanza.connect() as conn:
        try:
            decisions.require(conn)
        except decisions.DecisionsMissing:
            raise checkup.SetupProblem(
                f"the decisions table {decisions.TABLE} is missing or older in {checkup.khanza_where(res.settings)}: "
                f"{checkup.SETUP_STEP}, then apply sql/khanza_grants.sql") from None


def _record_and_requeue(res: Resources, plans: list[Plan], action: str, decided_by: str, reason: str, *,
                        no_rkm_medis: str | None = None, findings: str | None = None,
                        error_code: str | None = None) -> list[str]:
    """One logical step: the website rows back to pending, and a decision row for each id actually re-queued,
    committed in Khanza only after the website's commit. A failing re-queue leaves no decision behind."""
    ids = [p.id for p in plans]
    decided_at = _utc_now()
    with res.khanza.connect() as conn, conn.begin():
        if action == "link_patient" and no_rkm_medis not in patients.by_record(conn, [no_rkm_medis]):
            raise Refused(f"{ids[0]}: no patient with that no_rkm_medis in Khanza; nothing recorded")
        requeued = store.requeue(res.website, ids, error_code)
        for plan in plans:
            if plan.id in requeued:
                decisions.record(conn, registration_id=plan.id, action=action, decided_by=decided_by, reason=reason,
                                 decided_at=decided_at, no_rkm_medis=no_rkm_medis, flow_run_id=_run_id(),
                                 run_by=fixes.run_by(),
                                 findings=findings if findings is not None else plan.note[:255])
    get_run_logger().info("%s: %d re-queued and recorded in %s", action, len(requeued), decisions.TABLE)
    return requeued


def _sync_now(res: Resources, ids: list[str]) -> tuple[pd.DataFrame | None, str | None]:
    """Exactly these registrations through the sync's batch loop (the caller holds the Khanza write slot):
    their outcomes, and why Khanza was offline (or None)."""
    if not ids:
        return None, None
    results, why_offline, summary = [], [], outcomes.RunSummary()
    sync_batches(res, lambda now, n: store.claim_ids(res.website, ids, n, now, res.settings.claim_lease_seconds),
                 summary, [], min(len(ids), res.settings.batch_size), after_batch=results.append,
                 on_offline=why_offline.append)
    frame = pd.concat(results, ignore_index=True) if results else None
    return frame, (why_offline[0] if why_offline else None)


def _predict(res: Resources, ids: list[str]) -> pd.DataFrame:
    """What the sync would do now with these rows, from reads only (as backfill's dry run)."""
    batch = store.read_ids(res.website, ids)
    now_local = datetime.now(res.settings.tz).replace(tzinfo=None)
    valid, invalid, _ = check_registrations(res.settings, batch, now_local)
    mapped, unmapped = timed(map_registrations, res.settings)(res, valid)
    return timed(preview_load, res.settings)(res, mapped, pd.concat([invalid, unmapped], ignore_index=True),
                                             Counter())


def _report(res: Resources, kind: str, prefix: str, rows: list[dict], *, dry_run: bool = False, offline: str | None = None,
            findings: str | None = None):
    """The run's table artifact (ids, outcome, code, no_reg, note: no patient data) and its final state."""
    line = fixes.summary_line(prefix, rows) + (f" | check: {findings}" if findings else "")
    if offline:
        line += f" | Khanza offline ({offline})"
    key = {"requeue": "requeue-registrations", "resolve": "resolve-patient-conflict"}[kind]
    create_table_artifact(key=f"{key}{'-dry-run' if dry_run else ''}-{res.settings.hospital_code}", table=rows,
                          description=line[:500])
    get_run_logger().info(line)
    data = {"dry_run": dry_run, "outcomes": rows, "findings": findings}
    return offline_state(line, data=data) if offline else Completed(message=line, data=data)


def _refused(line: str):
    get_run_logger().warning("refused: %s", line)
    return Failed(name=REFUSED_STATE_NAME, message=f"refused: {line}")


def _run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


if __name__ == "__main__":
    from khanza_sync.cli import run_module

    raise SystemExit(run_module("requeue"))
