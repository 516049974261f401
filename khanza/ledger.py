"""Khanza Sync's ledger: website registration id -> what it became in Khanza.

Written in the same transaction as the visit, so a registration is in Khanza if and only if it is
in the ledger. A run that crashed after Khanza's commit is repaired from here, never re-inserted.
Reconcile records here, in the transaction that carried it out, what it decided about a website
cancellation (`cancel_result`), so no later run acts on that registration in Khanza again.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select, text

from khanza import migrations
from khanza.tables import LEDGER, insert_row

log = logging.getLogger(__name__)

COLUMNS = list(LEDGER.c.keys())
TABLE = LEDGER.name


def create_table(conn: Connection, tz: ZoneInfo | None = None) -> None:
    """The pipeline's own tables, created or brought up to this release's schema version (khanza/migrations.py;
    `tz`, HOSPITAL_TIMEZONE, converts the created_at of rows older releases wrote in hospital time)."""
    migrations.upgrade(conn, tz)


def utc_stamp(local: datetime, tz: ZoneInfo) -> tuple[datetime, int]:
    """A naive hospital-clock time as (naive UTC, minutes the hospital clock is ahead of UTC), to the second."""
    aware = local.replace(microsecond=0, tzinfo=tz)
    offset = int(aware.utcoffset().total_seconds() // 60)
    return aware.astimezone(timezone.utc).replace(tzinfo=None), offset


def written_local(entry: dict) -> datetime | None:
    """When the entry was written by the hospital's clock, as Khanza's own columns hold it (tanggal_booking +
    jam_booking): created_at (UTC) plus the recorded offset."""
    made = entry.get("created_at")
    if not isinstance(made, datetime):
        return None
    offset = entry.get("created_utc_offset")
    return made if offset is None else made + timedelta(minutes=int(offset))


def lookup(conn: Connection, ids: list[str]) -> dict[str, dict]:
    if not ids:
        return {}
    stmt = select(*LEDGER.c).where(LEDGER.c.registration_id.in_(list(ids)))
    return {r["registration_id"]: dict(r) for r in conn.execute(stmt).mappings()}


def record(conn: Connection, *, registration_id: str, outcome: str, target: str, no_rkm_medis: str,
           no_rawat: str | None, no_reg: str, kd_poli: str, kd_dokter: str, tanggal, patient_created: bool,
           written_at: datetime, tz: ZoneInfo) -> None:
    """One ledger row; `written_at` is the hospital-clock time the visit or booking was written (its own columns
    say so), stored as UTC with the offset."""
    created_at, offset = utc_stamp(written_at, tz)
    insert_row(
        conn, LEDGER,
        {"registration_id": registration_id, "outcome": outcome, "target": target, "no_rkm_medis": no_rkm_medis,
         "no_rawat": no_rawat, "no_reg": no_reg, "kd_poli": kd_poli, "kd_dokter": kd_dokter, "tanggal": tanggal,
         "patient_created": int(patient_created), "created_at": created_at, "created_utc_offset": offset},
    )


def update_no_reg(conn: Connection, registration_id: str, no_reg: str) -> None:
    conn.execute(text("UPDATE khanza_sync_ledger SET no_reg = :no_reg WHERE registration_id = :id"),
                 {"no_reg": no_reg, "id": registration_id})


# ---------------------------------------------------------------- reconcile's record of cancellations

_CANCEL_RECORDS = text(f"SELECT registration_id, cancel_result, cancel_decided_at FROM {TABLE} "
                       "WHERE registration_id IN :ids").bindparams(bindparam("ids", expanding=True))


def cancel_records(conn: Connection, ids: list[str]) -> dict[str, dict]:
    """registration id -> {cancel_result, cancel_decided_at} for the ids whose cancellation reconcile decided."""
    if not ids:
        return {}
    return {r["registration_id"]: {"cancel_result": r["cancel_result"], "cancel_decided_at": r["cancel_decided_at"]}
            for r in conn.execute(_CANCEL_RECORDS, {"ids": list(ids)}).mappings() if r["cancel_result"]}


def cancel_record_for_update(conn: Connection, registration_id: str) -> str | None:
    """The recorded cancellation decision of one registration (None: none yet), its ledger row locked for this
    transaction, so two runs never both act on it."""
    return conn.execute(text(f"SELECT cancel_result FROM {TABLE} WHERE registration_id = :id FOR UPDATE"),
                        {"id": registration_id}).scalar()


def record_cancel(conn: Connection, registration_id: str, result: str, decided_at: datetime) -> None:
    """Record reconcile's decision (an ErrorCode value) in the transaction that carried it out."""
    conn.execute(text(f"UPDATE {TABLE} SET cancel_result = :r, cancel_decided_at = :t WHERE registration_id = :id "
                      "AND cancel_result IS NULL"), {"r": result, "t": decided_at, "id": registration_id})
