"""The queue at a glance (store.queue_status) against the website table, on SQLite and PostgreSQL: rows seeded in
every state with fixed times; the expected figures are worked out from the same rows in plain Python."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from tasks.queue_status import hospital_day_start_utc
from tests.queue_figures import expected
from tests.support import insert_registrations, registration
from website import store

NOW = datetime(2026, 11, 27, 5, 0, 0)  # 12:00 in Jakarta
DAY_START = datetime(2026, 11, 26, 17, 0, 0)  # 00:00 in Jakarta, in UTC


def _row(reg_id, status, *, code=None, created=timedelta(minutes=5), next_at=None, synced_at=None):
    return registration(id=reg_id, status=status, error_code=code, created_at=NOW - created, next_attempt_at=next_at,
                        synced_at=synced_at)


SEEDED = [
    _row("p-new", "pending"),  # never tried: due
    _row("p-old", "pending", code="KHANZA_UNREACHABLE", created=timedelta(days=2, hours=3),
         next_at=NOW - timedelta(minutes=1)),  # its retry time has come: due
    _row("p-at-now", "pending", code="KHANZA_BUSY", next_at=NOW),  # due at exactly now
    _row("p-wait-1", "pending", code="KHANZA_UNREACHABLE", next_at=NOW + timedelta(minutes=10)),
    _row("p-wait-2", "pending", code="KHANZA_UNREACHABLE", next_at=NOW + timedelta(hours=1)),
    _row("p-busy", "pending", code="KHANZA_BUSY", next_at=NOW + timedelta(minutes=2)),
    _row("p-leased", "pending", next_at=NOW + timedelta(minutes=5)),  # being synced by a run now
    _row("p-flagged", "pending", code="TOO_MANY_ATTEMPTS", next_at=NOW + timedelta(days=1)),
    _row("r-nik-1", "rejected", code="INVALID_NIK", synced_at=NOW - timedelta(hours=1)),
    _row("r-nik-2", "rejected", code="INVALID_NIK", synced_at=DAY_START),  # the day's first moment: today
    _row("r-nik-old", "rejected", code="INVALID_NIK", synced_at=DAY_START - timedelta(seconds=1)),  # yesterday
    _row("r-poli", "rejected", code="UNKNOWN_POLI", synced_at=NOW - timedelta(minutes=1)),
    _row("r-legacy", "rejected", code="UNKNOWN_POLI"),  # rejected before synced_at was stamped: not today
    _row("r-tma-today", "rejected", code="TOO_MANY_ATTEMPTS", synced_at=NOW - timedelta(hours=2)),
    _row("r-tma-old-1", "rejected", code="TOO_MANY_ATTEMPTS", synced_at=NOW - timedelta(days=10)),
    _row("r-tma-old-2", "rejected", code="TOO_MANY_ATTEMPTS", synced_at=None),
    _row("s-1", "synced", code="DUPLICATE_REGISTRATION", synced_at=NOW - timedelta(hours=1)),
    _row("s-2", "synced", synced_at=NOW - timedelta(minutes=1)),
    _row("c-1", "cancel_requested", synced_at=NOW - timedelta(days=1)),
    _row("c-2", "cancel_requested", synced_at=NOW - timedelta(hours=1)),
    _row("x-1", "cancelled", code="CANCELLED", synced_at=NOW - timedelta(hours=1)),
]


def test_queue_status_matches_the_website_table(website_url):
    insert_registrations(website_url, SEEDED)
    engine = store.make_engine(website_url)
    got = store.queue_status(engine, NOW, DAY_START)
    engine.dispose()

    want = expected(SEEDED, NOW, DAY_START)
    # the expectation itself, counted by hand, so a mistake shared by both sides still fails
    assert (want["pending"], want["due_now"], want["cancel_requested"]) == (8, 3, 2)
    assert want["rejected_today_by_code"] == {"INVALID_NIK": 2, "UNKNOWN_POLI": 1, "TOO_MANY_ATTEMPTS": 1}
    assert {k: getattr(got, k) for k in want} == want
    assert got.deferred == 5 and got.rejected_today == 4
    assert got.oldest_pending_age == timedelta(days=2, hours=3)


def test_an_empty_queue(website_url):
    engine = store.make_engine(website_url)
    got = store.queue_status(engine, NOW, DAY_START)
    engine.dispose()
    assert (got.pending, got.due_now, got.rejected_today, got.cancel_requested) == (0, 0, 0, 0)
    assert got.oldest_pending_age is None and got.deferred_by_code == {} == got.rejected_today_by_code


def test_a_rejection_is_stamped_with_when_it_was_decided(website_url):
    insert_registrations(website_url, [registration(id="bad")])
    engine = store.make_engine(website_url)
    outcome = pd.DataFrame([{"id": "bad", "status": "rejected", "error_code": "INVALID_NIK", "message": "NIK ..."}])
    assert store.write_outcomes(engine, outcome, NOW) == {"rejected": 1}
    row = store.fetch_rows(engine).iloc[0]
    assert row["status"] == "rejected" and pd.Timestamp(row["synced_at"]) == pd.Timestamp(NOW)
    assert store.queue_status(engine, NOW, DAY_START).rejected_today_by_code == {"INVALID_NIK": 1}
    engine.dispose()


def test_the_hospital_day_starts_at_local_midnight():
    jakarta, jayapura = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")  # UTC+7, UTC+9
    assert hospital_day_start_utc(NOW, jakarta) == DAY_START
    assert hospital_day_start_utc(datetime(2026, 11, 26, 16, 59), jakarta) == datetime(2026, 11, 25, 17, 0)
    assert hospital_day_start_utc(datetime(2026, 11, 26, 15, 0), jayapura) == datetime(2026, 11, 26, 15, 0)
