"""The website's `online_registrations` table: the only code that reads or writes it.

Claiming uses `next_attempt_at` as a lease: a claimed row is pushed `claim_lease_seconds` into the
future, so an overlapping run (or a second worker) cannot see it; a run that dies leaves rows that
become visible again when the lease ends, and the Khanza ledger stops them from being made twice.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import DateTime, Engine, bindparam, create_engine, event, text

from khanza_sync.settings import PROJECT_ROOT
from khanza_sync.sqlfiles import statements

TABLE = "online_registrations"
INPUT_COLUMNS = [
    "id", "created_at", "nik", "full_name", "birth_date", "gender", "phone", "address",
    "birth_place", "mother_name", "email", "poliklinik", "doctor", "visit_date", "payment",
    "bpjs_number", "local_queue_number", "attempts",
]
DDL_FILES = {
    "postgresql": PROJECT_ROOT / "sql" / "website_postgresql.sql",
    "sqlite": PROJECT_ROOT / "sql" / "website_sqlite.sql",
}


def make_engine(url: str) -> Engine:
    """An engine whose errors never echo bound values (they can be patient data)."""
    if url.startswith("sqlite"):
        if "///" in url and ":memory:" not in url:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets the website read while we write
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, hide_parameters=True, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    with engine.begin() as conn:
        for stmt in statements(DDL_FILES[engine.dialect.name]):
            conn.exec_driver_sql(stmt)


def _ts(name: str):
    return bindparam(name, type_=DateTime())


def claim_pending(engine: Engine, limit: int, now: datetime, lease_seconds: int) -> pd.DataFrame:
    """Take up to `limit` due pending rows, oldest first, and lease them to this run.

    PostgreSQL: FOR UPDATE SKIP LOCKED so concurrent runs take disjoint rows. SQLite: the single
    UPDATE statement is atomic and SQLite serialises writers.
    """
    lock = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
    cols = ", ".join(INPUT_COLUMNS)
    stmt = text(
        f"UPDATE {TABLE} SET next_attempt_at = :lease_until, attempts = attempts + 1 "
        f"WHERE id IN (SELECT id FROM {TABLE} WHERE status = 'pending' "
        f"AND (next_attempt_at IS NULL OR next_attempt_at <= :now) "
        f"ORDER BY created_at, id LIMIT :limit{lock}) RETURNING {cols}"
    ).bindparams(_ts("now"), _ts("lease_until"))
    with engine.begin() as conn:
        rows = conn.execute(
            stmt, {"now": now, "lease_until": now + timedelta(seconds=lease_seconds), "limit": limit}
        ).fetchall()
    df = pd.DataFrame([tuple(r) for r in rows], columns=INPUT_COLUMNS, dtype=object)
    return df.sort_values(["created_at", "id"], kind="stable", key=lambda s: s.astype(str)).reset_index(drop=True)


def count_due(engine: Engine, now: datetime) -> int:
    stmt = text(
        f"SELECT count(*) FROM {TABLE} WHERE status = 'pending' "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
    ).bindparams(_ts("now"))
    with engine.connect() as conn:
        return int(conn.execute(stmt, {"now": now}).scalar_one())


_UPDATES = {
    "synced": (
        f"UPDATE {TABLE} SET status = 'synced', no_rkm_medis = :no_rkm_medis, no_rawat = :no_rawat, "
        "no_reg = :no_reg, synced_at = :now, error_code = :error_code, last_error = :message, "
        "next_attempt_at = NULL WHERE id = :id AND status = 'pending'"
    ),
    "rejected": (
        f"UPDATE {TABLE} SET status = 'rejected', error_code = :error_code, last_error = :message, "
        "next_attempt_at = NULL WHERE id = :id AND status = 'pending'"
    ),
    "deferred": (
        f"UPDATE {TABLE} SET error_code = :error_code, last_error = :message, "
        "next_attempt_at = :next_attempt_at WHERE id = :id AND status = 'pending'"
    ),
}
_PARAMS = ["id", "error_code", "message", "no_rkm_medis", "no_rawat", "no_reg", "next_attempt_at"]


def write_outcomes(engine: Engine, outcomes: pd.DataFrame, now: datetime) -> dict[str, int]:
    """Apply outcomes in one transaction, one executemany per status. Returns rows updated per status.

    Only rows still `pending` are touched, so a row the website changed meanwhile (for example a
    cancellation request) is left for the reconcile flow rather than overwritten.
    """
    written: dict[str, int] = {}
    if outcomes.empty:
        return written
    with engine.begin() as conn:
        for status, group in outcomes.groupby("status", sort=False):
            sql = _UPDATES[status]
            stmt = text(sql).bindparams(*[_ts(n) for n in ("now", "next_attempt_at") if f":{n}" in sql])
            params = [
                {**{k: none_if_missing(row.get(k)) for k in _PARAMS}, "now": now}
                for row in group.to_dict("records")
            ]
            result = conn.execute(stmt, params)
            written[status] = result.rowcount if result.rowcount is not None else len(params)
    return written


def none_if_missing(value):
    """NaN/NaT/pd.NA from pandas become SQL NULL."""
    if value is None:
        return None
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def fetch_rows(engine: Engine, ids: list[str] | None = None) -> pd.DataFrame:
    """Read rows back (tests, demo and reconcile use this)."""
    sql = f"SELECT * FROM {TABLE}"
    params: dict = {}
    if ids is not None:
        sql += " WHERE id IN :ids"
        params = {"ids": list(ids)}
    stmt = text(sql + " ORDER BY created_at, id")
    if ids is not None:
        stmt = stmt.bindparams(bindparam("ids", expanding=True))
    with engine.connect() as conn:
        return pd.read_sql(stmt, conn, params=params)


def defer_due(engine: Engine, now: datetime, next_attempt_at: datetime, error_code: str, message: str) -> int:
    """Khanza is offline: every other due pending row gets the reason and one shared retry time,
    so the website can show it and the next runs do not hammer a dead server."""
    stmt = text(
        f"UPDATE {TABLE} SET error_code = :code, last_error = :message, next_attempt_at = :next_at "
        "WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
    ).bindparams(_ts("now"), _ts("next_at"))
    with engine.begin() as conn:
        return conn.execute(stmt, {"code": error_code, "message": message, "next_at": next_attempt_at,
                                   "now": now}).rowcount or 0
