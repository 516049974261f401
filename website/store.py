"""The website's `online_registrations` table: the only code that reads or writes it.

Claiming uses `next_attempt_at` as a lease: a claimed row is pushed `claim_lease_seconds` into the
future, so an overlapping run (or a second worker) cannot see it; a run that dies leaves rows that
become visible again when the lease ends, and the Khanza ledger stops them from being made twice.

The table is defined once in website/schema.py; every statement here is built from it with SQLAlchemy Core.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import ColumnElement, Engine, bindparam, create_engine, event, func, literal, null, or_, select, update

from website import schema

TABLE = schema.registrations.name
INPUT_COLUMNS = [
    "id", "created_at", "nik", "full_name", "birth_date", "gender", "phone", "address",
    "birth_place", "mother_name", "email", "poliklinik", "doctor", "visit_date", "payment",
    "bpjs_number", "local_queue_number", "attempts",
]
_t = schema.registrations


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
    schema.create(engine, schema.REGISTRATION_TABLES)


def status_is(status: str) -> ColumnElement[bool]:
    """`status = '<status>'` with the value written into the SQL, not bound: PostgreSQL
    can then use the partial index (WHERE status = 'pending') even for a prepared statement."""
    return _t.c.status == literal(status, literal_execute=True)


def due(now) -> ColumnElement[bool]:
    """Rows without a retry time (or lease), or whose retry time has come at `now`."""
    return or_(_t.c.next_attempt_at.is_(None), _t.c.next_attempt_at <= now)


def frame(rows, columns: list[str]) -> pd.DataFrame:
    """Result rows as they came from the driver (object columns, no type guessing)."""
    return pd.DataFrame([tuple(r) for r in rows], columns=columns, dtype=object)


def claim_statement(limit: int, now: datetime, lease_seconds: int, *conditions):
    """UPDATE ... WHERE id IN (SELECT id ... ORDER BY created_at, id LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING INPUT_COLUMNS: due pending rows matching `conditions`, oldest first, leased until now + lease.

    PostgreSQL: FOR UPDATE SKIP LOCKED so concurrent runs take disjoint rows. SQLite (where SQLAlchemy
    leaves the lock clause out): the single UPDATE statement is atomic and SQLite serialises writers.
    """
    oldest = (select(_t.c.id).where(status_is("pending"), due(now), *conditions)
              .order_by(_t.c.created_at, _t.c.id).limit(limit).with_for_update(skip_locked=True))
    return (update(_t).where(_t.c.id.in_(oldest))
            .values(next_attempt_at=now + timedelta(seconds=lease_seconds), attempts=_t.c.attempts + 1)
            .returning(*[_t.c[c] for c in INPUT_COLUMNS]))


def claim(engine: Engine, limit: int, now: datetime, lease_seconds: int, *conditions) -> pd.DataFrame:
    """Take up to `limit` due pending rows matching `conditions`, oldest first, and lease them to this run."""
    with engine.begin() as conn:
        rows = conn.execute(claim_statement(limit, now, lease_seconds, *conditions)).fetchall()
    df = frame(rows, INPUT_COLUMNS)  # RETURNING gives no order
    return df.sort_values(["created_at", "id"], kind="stable", key=lambda s: s.astype(str)).reset_index(drop=True)


def claim_pending(engine: Engine, limit: int, now: datetime, lease_seconds: int) -> pd.DataFrame:
    """Take up to `limit` due pending rows, oldest first, and lease them to this run (see `claim_statement`)."""
    return claim(engine, limit, now, lease_seconds)


def count_due(engine: Engine, now: datetime) -> int:
    stmt = select(func.count()).select_from(_t).where(status_is("pending"), due(now))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _new(column: str):
    """A bound value for SET <column>; named apart from the column (SQLAlchemy reserves column names)."""
    return bindparam(f"new_{column}", type_=_t.c[column].type)


_OUTCOME_VALUES = {
    "synced": dict(status="synced", no_rkm_medis=_new("no_rkm_medis"), no_rawat=_new("no_rawat"),
                   no_reg=_new("no_reg"), synced_at=_new("synced_at"), error_code=_new("error_code"),
                   last_error=_new("last_error"), next_attempt_at=null()),
    "rejected": dict(status="rejected", error_code=_new("error_code"), last_error=_new("last_error"),
                     next_attempt_at=null()),
    "deferred": dict(error_code=_new("error_code"), last_error=_new("last_error"),
                     next_attempt_at=_new("next_attempt_at")),
}
# the status is bound here, not written in: executemany cannot inline values, and the id finds the row anyway
_OUTCOMES = {status: update(_t).where(_t.c.id == bindparam("match_id"), _t.c.status == "pending").values(values)
             for status, values in _OUTCOME_VALUES.items()}
_OUTCOME_PARAMS = {"match_id": "id", "new_error_code": "error_code", "new_last_error": "message",
                   "new_no_rkm_medis": "no_rkm_medis", "new_no_rawat": "no_rawat", "new_no_reg": "no_reg",
                   "new_next_attempt_at": "next_attempt_at"}  # bound name -> outcome column


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
            params = [{**{name: none_if_missing(row.get(key)) for name, key in _OUTCOME_PARAMS.items()},
                       "new_synced_at": now} for row in group.to_dict("records")]
            result = conn.execute(_OUTCOMES[status], params)
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
    stmt = select(_t).order_by(_t.c.created_at, _t.c.id)
    if ids is not None:
        stmt = stmt.where(_t.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return pd.read_sql(stmt, conn)


def defer_due(engine: Engine, now: datetime, next_attempt_at: datetime, error_code: str, message: str) -> int:
    """Khanza is offline: every other due pending row gets the reason and one shared retry time,
    so the website can show it and the next runs do not hammer a dead server."""
    stmt = (update(_t).where(status_is("pending"), due(now))
            .values(error_code=error_code, last_error=message, next_attempt_at=next_attempt_at))
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0
