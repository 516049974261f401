"""Khanza Sync's ledger: website registration id -> what it became in Khanza.

Written in the same transaction as the visit, so a registration is in Khanza if and only if it is
in the ledger. A run that crashed after Khanza's commit is repaired from here, never re-inserted.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, text

from khanza.tables import LEDGER, insert_row
from khanza_sync.settings import PROJECT_ROOT
from khanza_sync.sqlfiles import statements

DDL = PROJECT_ROOT / "sql" / "khanza_ledger.sql"
COLUMNS = list(LEDGER.c.keys())


def create_table(conn: Connection) -> None:
    for stmt in statements(DDL):
        conn.exec_driver_sql(stmt)


def lookup(conn: Connection, ids: list[str]) -> dict[str, dict]:
    if not ids:
        return {}
    stmt = select(*LEDGER.c).where(LEDGER.c.registration_id.in_(list(ids)))
    return {r["registration_id"]: dict(r) for r in conn.execute(stmt).mappings()}


def record(conn: Connection, *, registration_id: str, outcome: str, target: str, no_rkm_medis: str,
           no_rawat: str | None, no_reg: str, kd_poli: str, kd_dokter: str, tanggal, patient_created: bool,
           created_at: datetime) -> None:
    insert_row(
        conn, LEDGER,
        {"registration_id": registration_id, "outcome": outcome, "target": target, "no_rkm_medis": no_rkm_medis,
         "no_rawat": no_rawat, "no_reg": no_reg, "kd_poli": kd_poli, "kd_dokter": kd_dokter, "tanggal": tanggal,
         "patient_created": int(patient_created), "created_at": created_at},
    )


def update_no_reg(conn: Connection, registration_id: str, no_reg: str) -> None:
    conn.execute(text("UPDATE khanza_sync_ledger SET no_reg = :no_reg WHERE registration_id = :id"),
                 {"no_reg": no_reg, "id": registration_id})
