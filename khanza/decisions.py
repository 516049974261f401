"""Staff decisions about single registrations, in Khanza Sync's own table `khanza_sync_decisions` (next to the
ledger, sql/khanza_ledger.sql): the only code reading or writing it.

Three actions: `requeue` (a rejected or deferred registration put back to pending), `link_patient` (a
PATIENT_CONFLICT resolved by staff choosing the Khanza patient, `no_rkm_medis`) and `new_patient` (staff
confirm a new patient must be created although the NIK or card matches others). Rows are appended, never
changed: they are the audit. The loader (khanza/registration.py) follows the latest link_patient/new_patient
row of each registration, read under the numbering lock; a later `requeue` row does not revoke it.

A hospital that has not re-run `khanza-sync setup` lacks the table: the loader then finds no decisions
(`patient_decisions` returns nothing) and the fix flows stop with one line (`require`).
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from khanza.db import missing_tables, mysql_code
from khanza.tables import DECISIONS

log = logging.getLogger(__name__)

TABLE = DECISIONS.name
ACTIONS = ("requeue", "link_patient", "new_patient")
PATIENT_ACTIONS = ("link_patient", "new_patient")
COLUMNS = list(DECISIONS.c.keys())
_ABSENT = (1146, 1142)  # table missing; no SELECT right on it (grants not re-applied)


class DecisionsMissing(Exception):
    """The decisions table is not in this Khanza database (setup not re-run since it was added)."""


def require(conn: Connection) -> None:
    """Raise DecisionsMissing unless the decisions table exists (and this user can see it). Its columns are the
    schema version's business (khanza/migrations.py, checked by every job's preflight)."""
    if missing_tables(conn, [TABLE]):
        raise DecisionsMissing(TABLE)


def record(conn: Connection, *, registration_id: str, action: str, decided_by: str, reason: str,
           decided_at: datetime, no_rkm_medis: str | None = None, flow_run_id: str | None = None,
           findings: str | None = None, run_by: str | None = None) -> int:
    """Append one decision (inside the caller's transaction); returns its id."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    result = conn.execute(insert(DECISIONS).values(
        registration_id=registration_id, action=action, no_rkm_medis=no_rkm_medis, decided_by=decided_by,
        reason=reason, decided_at=decided_at, flow_run_id=flow_run_id, findings=findings, run_by=run_by))
    return int(result.lastrowid)


def patient_decisions(conn: Connection, ids: list[str]) -> dict[str, dict]:
    """registration id -> its latest link_patient/new_patient decision, for the ids that have one.
    No table (or no right to read it): no decisions, so the sync works as before the table existed."""
    if not ids:
        return {}
    latest = (select(func.max(DECISIONS.c.id))
              .where(DECISIONS.c.registration_id.in_(list(ids)), DECISIONS.c.action.in_(PATIENT_ACTIONS))
              .group_by(DECISIONS.c.registration_id))
    stmt = select(DECISIONS.c.registration_id, DECISIONS.c.action, DECISIONS.c.no_rkm_medis).where(
        DECISIONS.c.id.in_(latest.scalar_subquery()))
    try:
        return {r["registration_id"]: dict(r) for r in conn.execute(stmt).mappings()}
    except Exception as error:
        if mysql_code(error) not in _ABSENT:
            raise
        if mysql_code(error) == 1142:  # the table exists but this user may not read it
            log.warning("cannot read %s (apply sql/khanza_grants.sql): staff decisions are not applied", TABLE)
        return {}


def read(conn: Connection, registration_id: str | None = None, since: datetime | None = None,
         limit: int = 200) -> list[dict]:
    """The audit: decisions newest first, optionally of one registration or since a time (UTC). The same as
    `SELECT * FROM khanza_sync_decisions [WHERE registration_id = ...] ORDER BY id DESC`."""
    stmt = select(*DECISIONS.c).order_by(DECISIONS.c.id.desc()).limit(limit)
    if registration_id is not None:
        stmt = stmt.where(DECISIONS.c.registration_id == registration_id)
    if since is not None:
        stmt = stmt.where(DECISIONS.c.decided_at >= since)
    return [dict(r) for r in conn.execute(stmt).mappings()]
