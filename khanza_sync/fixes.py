"""Fixing one registration (flows/fix_registrations.py), as plain logic: which ids may be re-queued and why not,
what disagrees between a registration and the Khanza patient staff chose (field NAMES only, never values), and
the per-id table the data team reads. No database and no Prefect here."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from khanza_sync.error_codes import ErrorCode


class Refused(Exception):
    """Staff asked for something the pipeline will not do (one line, no patient data); nothing was written."""


@dataclass(frozen=True)
class Plan:
    """What a re-queue does with one id: `requeue` (rejected or deferred -> pending, due now), `due` (pending
    and due already: synced now as it is) or `refused` (with `note` saying why)."""

    id: str
    action: str
    note: str
    was_code: str | None = None


REFUSALS = {
    "synced": "already synced (in Khanza): nothing to re-queue",
    "cancelled": "cancelled: a cancelled registration is never re-queued",
    "cancel_requested": "cancellation requested: reconcile cancels it, it is never re-queued",
}


def unique(ids: list[str]) -> list[str]:
    """The ids stripped, without repeats, in the order given."""
    return list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))


def requeue_plan(ids: list[str], states: pd.DataFrame, now_utc: datetime) -> list[Plan]:
    """One Plan per id, from the website rows' states (store.states)."""
    by_id = {r["id"]: r for r in states.to_dict("records")}
    plans = []
    for reg_id in ids:
        row = by_id.get(reg_id)
        if row is None:
            plans.append(Plan(reg_id, "refused", "no such registration on the website"))
            continue
        status, code = row["status"], _text(row["error_code"])
        if status == "rejected":
            plans.append(Plan(reg_id, "requeue", f"was rejected {code or ''}".strip(), code))
        elif status == "pending" and _due(row["next_attempt_at"], now_utc) and not code:
            plans.append(Plan(reg_id, "due", "pending and due already: synced now as it is"))
        elif status == "pending":
            plans.append(Plan(reg_id, "requeue", f"was deferred {code or '(leased)'}", code))
        else:
            plans.append(Plan(reg_id, "refused", REFUSALS.get(status, f"status {status}: not re-queued")))
    return plans


def conflict_refusal(states: pd.DataFrame, reg_id: str) -> str | None:
    """Why resolving a PATIENT_CONFLICT is refused for this registration, or None (it is rejected with it)."""
    rows = states[states["id"] == reg_id]
    if rows.empty:
        return "no such registration on the website"
    status, code = rows.iloc[0]["status"], _text(rows.iloc[0]["error_code"])
    if status != "rejected" or code != ErrorCode.PATIENT_CONFLICT.value:
        return (f"only a registration rejected with {ErrorCode.PATIENT_CONFLICT.value} can be resolved; this one is "
                f"{status}" + (f" ({code})" if code else ""))
    return None


def decision_refusal(decision: str, no_rkm_medis: str | None) -> str | None:
    """Why the decision's parameters do not fit together, or None."""
    if decision == "link_patient" and not (no_rkm_medis or "").strip():
        return "link_patient needs no_rkm_medis: the Khanza patient the registration belongs to"
    if decision == "new_patient" and (no_rkm_medis or "").strip():
        return "new_patient takes no no_rkm_medis (a new patient gets the next number); leave it empty"
    return None


# ---------------------------------------------------------------- what disagrees (names only)


def differences(reg: dict, patient: dict) -> list[str]:
    """Which of NIK, BPJS card, birth date, name and gender disagree between the registration (normalised
    as the data checks normalise it) and the Khanza patient. Field names only: never the values."""
    found = []
    if _text(reg.get("nik")) != _text(patient.get("no_ktp")):
        found.append("nik differs")
    card, theirs = _text(reg.get("bpjs_number")), _card(patient.get("no_peserta"))
    if card and theirs and card != theirs:
        found.append("bpjs card differs")
    elif card and not theirs:
        found.append("bpjs card not in Khanza")
    if reg.get("birth_date") and patient.get("tgl_lahir") and _day(reg["birth_date"]) != _day(patient["tgl_lahir"]):
        found.append(BIRTH_DIFFERS)
    elif reg.get("birth_date") and not patient.get("tgl_lahir"):
        found.append(BIRTH_UNKNOWN)
    if _name(reg.get("full_name")) != _name(patient.get("nm_pasien")):
        found.append("name differs")
    gender, their_gender = _text(reg.get("gender")), _text(patient.get("jk"))
    if gender and their_gender and gender != their_gender:
        found.append(GENDER_DIFFERS)
    elif gender and not their_gender:
        found.append("gender not in Khanza")
    return found


# What keeps a registration off an existing patient's record without a staff decision: the NIK (or card) says
# which record, these say whether it is the same person. Names are not among them: spellings differ too often
# (Muhammad / Mohammad / M.), and neither Khanza's desk nor Mobile JKN matches on them (README).
BIRTH_DIFFERS, BIRTH_UNKNOWN, GENDER_DIFFERS = "birth date differs", "birth date not in Khanza", "gender differs"
IDENTITY = (BIRTH_DIFFERS, BIRTH_UNKNOWN, GENDER_DIFFERS)


def identity_disagreements(reg: dict, patient: dict) -> list[str]:
    """Why the patient found by NIK is not this registration's person (field names only), or [] when they
    agree: the birth date must be Khanza's, and the gender too where Khanza has one. The same comparison
    staff see in resolve-conflict (`differences`), limited to what blocks an automatic link."""
    return [found for found in differences(reg, patient) if found in IDENTITY]


def holders_line(by_nik: int, by_card: int, has_card: bool) -> str:
    """For new_patient: how many Khanza patients carry the registration's NIK and card (counts only)."""
    parts = [f"nik on {by_nik} patient{'s' if by_nik != 1 else ''}"]
    if has_card:
        parts.append(f"bpjs card on {by_card} patient{'s' if by_card != 1 else ''}")
    return ", ".join(parts)


def findings_text(found: list[str]) -> str:
    return ", ".join(found) if found else "nothing differs"


# ---------------------------------------------------------------- the per-id table


OUTCOME_FIELDS = ["registration_id", "outcome", "error_code", "no_reg", "note"]


def outcome_rows(plans: list[Plan], results: pd.DataFrame | None) -> list[dict]:
    """The table artifact: one row per id given (ids, outcome, code, no_reg, a note; no patient data)."""
    by_id = {} if results is None or results.empty else {r["id"]: r for r in results.to_dict("records")}
    rows = []
    for plan in plans:
        if plan.action == "refused":
            rows.append(_row(plan.id, "refused", None, None, plan.note))
        elif plan.id in by_id:
            r = by_id[plan.id]
            rows.append(_row(plan.id, r["outcome"], _text(r["error_code"]), _text(r.get("no_reg")), plan.note))
        else:  # accepted but not claimed: another run took it meanwhile
            rows.append(_row(plan.id, "not synced now", None, None, plan.note + "; another run has it"))
    return rows


def preview_rows(plans: list[Plan], predictions: pd.DataFrame) -> list[dict]:
    """A dry run's table: per id, what the re-queue would do, then what the sync would do (nothing written)."""
    by_id = {r["id"]: r for r in predictions.to_dict("records")}
    rows = []
    for plan in plans:
        p = by_id.get(plan.id)
        if plan.action == "refused" or p is None:
            rows.append(_row(plan.id, "refused" if plan.action == "refused" else "no prediction", None, None,
                             plan.note))
        else:
            rows.append(_row(plan.id, f"would {p['would']}", _text(p["error_code"]), None, plan.note))
    return rows


def summary_line(prefix: str, rows: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return f"{prefix}: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def _row(reg_id, outcome, code, no_reg, note) -> dict:
    return {"registration_id": reg_id, "outcome": outcome, "error_code": code or "", "no_reg": no_reg or "",
            "note": note}


def _text(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).strip() or None


def _card(value) -> str | None:
    text = _text(value)
    return None if text in (None, "-") else text


def _name(value) -> str:
    return " ".join((_text(value) or "").casefold().split())


def _day(value) -> date | None:
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None


def _due(next_attempt_at, now_utc: datetime) -> bool:
    if next_attempt_at is None or (not isinstance(next_attempt_at, str) and pd.isna(next_attempt_at)):
        return True
    try:
        return pd.Timestamp(next_attempt_at).tz_localize(None) <= pd.Timestamp(now_utc)
    except (TypeError, ValueError):
        return False


def run_by() -> str:
    """What the machine can vouch for about who wrote a decision (the `run_by` column): the Prefect flow run and
    its deployment, and the Unix user and host of the process. Prefect's open-source server has no user
    accounts and one shared API auth string, so nothing names the person who pressed "Run": `decided_by` is
    what they typed. With one Unix user per hospital (deploy/) the user says which hospital's worker ran it."""
    import getpass
    import socket

    from prefect.runtime import deployment, flow_run

    run = f"flow run {flow_run.id}" if flow_run.id else "no flow run"
    where = f"deployment {deployment.name}" if deployment.id else "no deployment (started by hand)"
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid (a container): the number is still the truth
        import os

        user = f"uid {os.getuid()}"
    return f"{run}; {where}; os user {user}@{socket.gethostname()}; Prefect OSS: no user identity"[:255]
