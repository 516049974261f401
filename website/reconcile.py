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
from sqlalchemy import ColumnElement, Engine, and_, bindparam, false, func, or_, select, update

from website import schema
from website.store import INPUT_COLUMNS, REQUEUED, claim, due, frame, padded, readable, status_is, update_ids

RECON_COLUMNS = ["id", "created_at", "status", "poliklinik", "doctor", "visit_date", "local_queue_number",
                 "no_rkm_medis", "no_rawat", "no_reg", "error_code", "synced_at"]
CHANGE_COLUMNS = ["status", "poliklinik", "doctor", "visit_date", "no_rkm_medis", "no_rawat", "no_reg"]
_t = schema.registrations


def _select(columns: list[str]):
    return select(*[_t.c[c] for c in columns])


# ---------------------------------------------------------------- reconcile


def synced_rows(engine: Engine, lo: date, hi: date) -> pd.DataFrame:
    """Synced rows with a visit date in [lo, hi]."""
    stmt = (_select(RECON_COLUMNS).where(status_is("synced"), _t.c.visit_date >= lo, _t.c.visit_date <= hi)
            .order_by(_t.c.visit_date, _t.c.id))
    with engine.connect() as conn:
        return frame(conn.execute(stmt), RECON_COLUMNS)


def cancellation_rows(engine: Engine, today: date, khanza_side_codes: tuple[str, ...]) -> pd.DataFrame:
    """Every `cancel_requested` row, plus upcoming rows the website cancelled, whatever code they carried then
    (none, or a deferral's such as KHANZA_UNREACHABLE), except those reconcile cancelled because of Khanza
    (`khanza_side_codes`): a sync may have made the visit before the website cancelled the row."""
    website_cancelled = and_(status_is("cancelled"), _t.c.visit_date >= today,
                             or_(_t.c.error_code.is_(None), _t.c.error_code.not_in(list(khanza_side_codes))))
    stmt = (_select(RECON_COLUMNS).where(or_(status_is("cancel_requested"), website_cancelled))
            .order_by(_t.c.created_at, _t.c.id))
    with engine.connect() as conn:
        return frame(conn.execute(stmt), RECON_COLUMNS)


def existing_ids(engine: Engine, ids: list[str]) -> set[str]:
    found: set[str] = set()
    ids = list(ids)
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            found.update(conn.execute(select(_t.c.id).where(_t.c.id.in_(ids[i:i + 500]))).scalars())
    return found


def _apply_statement(touch_error: bool):
    """UPDATE for one change: `col = COALESCE(new, col)` for each CHANGE_COLUMN (NULL keeps the column),
    error_code/last_error replaced only when the change names them, and only while the status is unchanged."""
    values = {c: func.coalesce(bindparam(f"new_{c}", type_=_t.c[c].type), _t.c[c]) for c in CHANGE_COLUMNS}
    if touch_error:
        values.update(error_code=bindparam("new_error_code", type_=_t.c.error_code.type),
                      last_error=bindparam("new_last_error", type_=_t.c.last_error.type))
    return (update(_t).where(_t.c.id == bindparam("match_id"), _t.c.status == bindparam("expected_status"))
            .values(values))


_APPLY = {touch: _apply_statement(touch) for touch in (False, True)}


def apply_changes(engine: Engine, changes: list[dict]) -> int:
    """Apply reconcile changes in one transaction: only the columns a change names are written, and only
    while the row still has the status the change was computed from. Returns rows updated."""
    if not changes:
        return 0
    updated = 0
    with engine.begin() as conn:
        for change in changes:  # per row: executemany rowcount is unreliable across drivers
            touch_error = "error_code" in change or "last_error" in change
            params = {f"new_{c}": change.get(c) for c in CHANGE_COLUMNS + ["error_code", "last_error"]}
            params.update(match_id=change["id"], expected_status=change["expected_status"])
            updated += conn.execute(_APPLY[touch_error], params).rowcount or 0
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

    def condition(self, tz: ZoneInfo) -> ColumnElement[bool]:
        """The window as a condition. created_at is UTC; a submission day is a day at the hospital."""
        if self.by == "visit":
            return and_(_t.c.visit_date >= self.start, _t.c.visit_date <= self.end)
        lo = datetime.combine(self.start, time(), tz).astimezone(timezone.utc).replace(tzinfo=None)
        hi = datetime.combine(self.end + timedelta(days=1), time(), tz).astimezone(timezone.utc).replace(tzinfo=None)
        return and_(_t.c.created_at >= lo, _t.c.created_at < hi)


def count_window(engine: Engine, window: Window, tz: ZoneInfo, status: str, now: datetime | None = None) -> int:
    """Rows of a status in the window (pending rows only when due at `now`, if given)."""
    stmt = select(func.count()).select_from(_t).where(_t.c.status == status, window.condition(tz))
    if now is not None:
        stmt = stmt.where(due(now))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def select_window(engine: Engine, window: Window, tz: ZoneInfo, statuses: list[str], now: datetime,
                  limit: int, offset: int = 0) -> pd.DataFrame:
    """Read-only (dry run): the rows a backfill would take, in claim order, one page at a time.
    Pending rows only when due; rejected rows always (a backfill with status=rejected re-queues them)."""
    wanted = {"pending": and_(status_is("pending"), due(now)), "rejected": status_is("rejected")}
    taken = or_(false(), *[wanted[s] for s in statuses if s in wanted])  # no status named: no rows
    columns = readable(engine, INPUT_COLUMNS)
    stmt = (_select(columns).where(taken, window.condition(tz))
            .order_by(_t.c.created_at, _t.c.id).limit(limit).offset(offset))
    with engine.connect() as conn:
        return padded(frame(conn.execute(stmt), columns), INPUT_COLUMNS)


def claim_window(engine: Engine, window: Window, tz: ZoneInfo, limit: int, now: datetime,
                 lease_seconds: int) -> pd.DataFrame:
    """store.claim_pending restricted to the window: due pending rows, oldest first, leased to this run."""
    return claim(engine, limit, now, lease_seconds, window.condition(tz))


def _rejected(window: Window, tz: ZoneInfo, error_codes: list[str] | None) -> list[ColumnElement[bool]]:
    """Rejected rows in the window, optionally only some error codes."""
    conditions = [status_is("rejected"), window.condition(tz)]
    if error_codes:
        conditions.append(_t.c.error_code.in_(list(error_codes)))
    return conditions


def requeue_rejected(engine: Engine, window: Window, tz: ZoneInfo, error_codes: list[str] | None = None) -> list[str]:
    """Rejected rows in the window (optionally only some error codes) back to pending, error cleared,
    attempts reset. Returns their ids."""
    with engine.begin() as conn:
        return update_ids(conn, _rejected(window, tz, error_codes), REQUEUED)


def rejected_ids(engine: Engine, window: Window, tz: ZoneInfo, error_codes: list[str] | None = None) -> list[str]:
    """Read-only: what requeue_rejected would take."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(_t.c.id).where(*_rejected(window, tz, error_codes))).scalars())
