"""Website SQL for the reconcile and backfill flows (the `online_registrations` table).

Reconcile reads only the columns it compares (never NIK, name, phone, address or birth date) and applies
changes with a guard on the status it saw, so a row the website changed meanwhile is left for the next run.
Backfill selects a window read-only (dry runs), claims a window under the same lease as the sync, and
re-queues rejected rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Date, DateTime, Engine, bindparam, text

from website.store import INPUT_COLUMNS, TABLE

RECON_COLUMNS = ["id", "created_at", "status", "poliklinik", "doctor", "visit_date", "local_queue_number",
                 "no_rkm_medis", "no_rawat", "no_reg", "error_code", "synced_at"]
CHANGE_COLUMNS = ["status", "poliklinik", "doctor", "visit_date", "no_rkm_medis", "no_rawat", "no_reg"]


def _frame(rows, columns) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns, dtype=object)


def _d(name: str):
    return bindparam(name, type_=Date())


def _ts(name: str):
    return bindparam(name, type_=DateTime())


# ---------------------------------------------------------------- reconcile


def synced_rows(engine: Engine, lo: date, hi: date) -> pd.DataFrame:
    """Synced rows with a visit date in [lo, hi]."""
    stmt = text(f"SELECT {', '.join(RECON_COLUMNS)} FROM {TABLE} WHERE status = 'synced' "
                "AND visit_date >= :lo AND visit_date <= :hi ORDER BY visit_date, id").bindparams(_d("lo"), _d("hi"))
    with engine.connect() as conn:
        return _frame(conn.execute(stmt, {"lo": lo, "hi": hi}), RECON_COLUMNS)


def cancellation_rows(engine: Engine, today: date, website_cancel_codes: tuple[str, ...]) -> pd.DataFrame:
    """Every `cancel_requested` row, plus upcoming rows the website cancelled (error_code NULL or one of
    `website_cancel_codes`): a sync that was loading such a row when it was cancelled may have made the visit."""
    stmt = text(
        f"SELECT {', '.join(RECON_COLUMNS)} FROM {TABLE} WHERE status = 'cancel_requested' "
        "OR (status = 'cancelled' AND visit_date >= :today AND (error_code IS NULL OR error_code IN :codes)) "
        "ORDER BY created_at, id").bindparams(_d("today"), bindparam("codes", expanding=True))
    with engine.connect() as conn:
        return _frame(conn.execute(stmt, {"today": today, "codes": list(website_cancel_codes)}), RECON_COLUMNS)


def existing_ids(engine: Engine, ids: list[str]) -> set[str]:
    found: set[str] = set()
    ids = list(ids)
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            stmt = text(f"SELECT id FROM {TABLE} WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
            found.update(r[0] for r in conn.execute(stmt, {"ids": ids[i:i + 500]}))
    return found


_APPLY = text(
    f"UPDATE {TABLE} SET "
    + ", ".join(f"{c} = COALESCE(:{c}, {c})" for c in CHANGE_COLUMNS)
    + ", error_code = CASE WHEN :touch_error = 1 THEN :error_code ELSE error_code END"
    ", last_error = CASE WHEN :touch_error = 1 THEN :last_error ELSE last_error END"
    " WHERE id = :id AND status = :expected_status"
).bindparams(_d("visit_date"))


def apply_changes(engine: Engine, changes: list[dict]) -> int:
    """Apply reconcile changes in one transaction: only the columns a change names are written, and only
    while the row still has the status the change was computed from. Returns rows updated."""
    if not changes:
        return 0
    params = []
    for change in changes:
        row = {c: change.get(c) for c in CHANGE_COLUMNS}
        touch = "error_code" in change or "last_error" in change
        row.update(id=change["id"], expected_status=change["expected_status"], touch_error=1 if touch else 0,
                   error_code=change.get("error_code"), last_error=change.get("last_error"))
        params.append(row)
    updated = 0
    with engine.begin() as conn:
        for row in params:  # per row: executemany rowcount is unreliable across drivers
            updated += conn.execute(_APPLY, row).rowcount or 0
    return updated


# ---------------------------------------------------------------- backfill windows


@dataclass(frozen=True)
class Window:
    """Registrations by visit date, or by submission day (hospital calendar days), inclusive."""

    start: date
    end: date
    by: str = "visit"  # visit | submitted

    def __post_init__(self):
        if self.by not in ("visit", "submitted"):
            raise ValueError("by must be 'visit' or 'submitted'")
        if self.end < self.start:
            raise ValueError("end is before start")

    def where(self, tz: ZoneInfo) -> tuple[str, dict]:
        """SQL condition and parameters. created_at is UTC; a submission day is a day at the hospital."""
        if self.by == "visit":
            return "visit_date >= :w_lo AND visit_date <= :w_hi", {"w_lo": self.start, "w_hi": self.end}
        lo = datetime.combine(self.start, time(), tz).astimezone(timezone.utc).replace(tzinfo=None)
        hi = datetime.combine(self.end + timedelta(days=1), time(), tz).astimezone(timezone.utc).replace(tzinfo=None)
        return "created_at >= :w_lo AND created_at < :w_hi", {"w_lo": lo, "w_hi": hi}

    def binds(self) -> list:
        return [_d("w_lo"), _d("w_hi")] if self.by == "visit" else [_ts("w_lo"), _ts("w_hi")]


_DUE = "(next_attempt_at IS NULL OR next_attempt_at <= :now)"


def count_window(engine: Engine, window: Window, tz: ZoneInfo, status: str, now: datetime | None = None) -> int:
    """Rows of a status in the window (pending rows only when due at `now`, if given)."""
    cond, params = window.where(tz)
    sql = f"SELECT count(*) FROM {TABLE} WHERE status = :status AND {cond}"
    binds = window.binds()
    if now is not None:
        sql += f" AND {_DUE}"
        params["now"] = now
        binds.append(_ts("now"))
    with engine.connect() as conn:
        return int(conn.execute(text(sql).bindparams(*binds), {**params, "status": status}).scalar_one())


def select_window(engine: Engine, window: Window, tz: ZoneInfo, statuses: list[str], now: datetime,
                  limit: int, offset: int = 0) -> pd.DataFrame:
    """Read-only (dry run): the rows a backfill would take, in claim order, one page at a time.
    Pending rows only when due; rejected rows always (a backfill with status=rejected re-queues them)."""
    cond, params = window.where(tz)
    status_cond = " OR ".join(
        f"(status = 'pending' AND {_DUE})" if s == "pending" else "status = 'rejected'" for s in statuses
        if s in ("pending", "rejected"))
    stmt = text(f"SELECT {', '.join(INPUT_COLUMNS)} FROM {TABLE} WHERE ({status_cond}) AND {cond} "
                "ORDER BY created_at, id LIMIT :limit OFFSET :offset").bindparams(*window.binds(), _ts("now"))
    with engine.connect() as conn:
        rows = conn.execute(stmt, {**params, "now": now, "limit": limit, "offset": offset}).fetchall()
    return _frame(rows, INPUT_COLUMNS)


def claim_window(engine: Engine, window: Window, tz: ZoneInfo, limit: int, now: datetime,
                 lease_seconds: int) -> pd.DataFrame:
    """store.claim_pending restricted to the window: due pending rows, oldest first, leased to this run."""
    cond, params = window.where(tz)
    lock = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
    stmt = text(
        f"UPDATE {TABLE} SET next_attempt_at = :lease_until, attempts = attempts + 1 "
        f"WHERE id IN (SELECT id FROM {TABLE} WHERE status = 'pending' AND {_DUE} AND {cond} "
        f"ORDER BY created_at, id LIMIT :limit{lock}) RETURNING {', '.join(INPUT_COLUMNS)}"
    ).bindparams(_ts("now"), _ts("lease_until"), *window.binds())
    with engine.begin() as conn:
        rows = conn.execute(stmt, {**params, "now": now, "lease_until": now + timedelta(seconds=lease_seconds),
                                   "limit": limit}).fetchall()
    df = _frame(rows, INPUT_COLUMNS)
    return df.sort_values(["created_at", "id"], kind="stable", key=lambda s: s.astype(str)).reset_index(drop=True)


def requeue_rejected(engine: Engine, window: Window, tz: ZoneInfo, error_codes: list[str] | None = None) -> list[str]:
    """Rejected rows in the window (optionally only some error codes) back to pending, error cleared,
    attempts reset. Returns their ids."""
    cond, params = window.where(tz)
    sql = f"UPDATE {TABLE} SET status = 'pending', error_code = NULL, last_error = NULL, next_attempt_at = NULL, " \
          f"attempts = 0 WHERE status = 'rejected' AND {cond}"
    binds = window.binds()
    if error_codes:
        sql += " AND error_code IN :codes"
        binds.append(bindparam("codes", expanding=True))
        params["codes"] = list(error_codes)
    with engine.begin() as conn:
        return sorted(r[0] for r in conn.execute(text(sql + " RETURNING id").bindparams(*binds), params))


def rejected_ids(engine: Engine, window: Window, tz: ZoneInfo, error_codes: list[str] | None = None) -> list[str]:
    """Read-only: what requeue_rejected would take."""
    cond, params = window.where(tz)
    sql = f"SELECT id FROM {TABLE} WHERE status = 'rejected' AND {cond}"
    binds = window.binds()
    if error_codes:
        sql += " AND error_code IN :codes"
        binds.append(bindparam("codes", expanding=True))
        params["codes"] = list(error_codes)
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text(sql).bindparams(*binds), params))
