"""The queue-status-<hospital> artifact from real flow runs (Prefect engine, MariaDB, SQLite website): reconcile
publishes it with or without Khanza, a sync run or a follow hour with work publishes it, an empty sync run publishes
nothing. The figures read back from the Prefect server are compared with the website rows, counted in plain Python."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from flows import OFFLINE_STATE_NAME
from flows.follow_registrations import follow_registrations
from flows.reconcile_queue_numbers import reconcile_queue_numbers
from flows.sync_registrations import sync_registrations
from khanza_sync import reporting
from tasks.queue_status import hospital_day_start_utc
from tests.queue_figures import expected, rows_as_dicts, tables
from tests.support import base_settings, completed, flow_run_artifacts, insert_registrations, registration
from website import store

KEY = "queue-status-qs-test"
pytestmark = pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)  # PostgreSQL: tests/integration


@pytest.fixture
def env(flow_env, monkeypatch):
    monkeypatch.setenv("HOSPITAL_CODE", "qs-test")
    return flow_env


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def rejected(reg_id: str, code: str, at: datetime) -> dict:
    return registration(id=reg_id, status="rejected", error_code=code, synced_at=at)


def seed(url) -> None:
    """Rows no sync run takes (not due, or not pending), in every state the artifact counts."""
    now = _now()
    day_start = hospital_day_start_utc(now, base_settings().tz)
    later = now + timedelta(hours=1)
    insert_registrations(url, [
        registration(id="wait-1", error_code="KHANZA_UNREACHABLE", next_attempt_at=later,
                     created_at=now - timedelta(days=3, hours=2, minutes=30)),
        registration(id="wait-2", error_code="KHANZA_BUSY", next_attempt_at=later),
        registration(id="flagged", error_code="TOO_MANY_ATTEMPTS", next_attempt_at=later),
        rejected("rej-today", "UNKNOWN_POLI", day_start + timedelta(seconds=1)),
        rejected("rej-old", "UNKNOWN_POLI", day_start - timedelta(hours=1)),
        rejected("tma-old", "TOO_MANY_ATTEMPTS", now - timedelta(days=9)),
        registration(id="cancel-me", status="cancel_requested"),
    ])


def published(state) -> list[dict[str, str]]:
    arts = flow_run_artifacts(state)
    assert KEY in arts, f"no {KEY} artifact among {sorted(arts)}"
    return tables(arts[KEY].data)


def figures_of_website(url) -> tuple[dict, dict, dict]:
    """What the artifact should say now: (figures, deferred by code, rejected today by code)."""
    engine = store.make_engine(url)
    rows = rows_as_dicts(store.fetch_rows(engine))
    engine.dispose()
    now = _now()
    want = expected(rows, now, hospital_day_start_utc(now, base_settings().tz))
    age = now - want["oldest_pending_created_at"] if want["oldest_pending_created_at"] else None
    waiting = sum(want["deferred_by_code"].values())
    figures = {"pending": str(want["pending"]), "due now": str(want["due_now"]),
               "deferred (pending, not due yet)": str(waiting), "oldest pending": reporting.age_text(age),
               "rejected today": str(sum(want["rejected_today_by_code"].values())),
               "TOO_MANY_ATTEMPTS rejected": f"{want['too_many_attempts_rejected_today']} today, "
                                             f"{want['too_many_attempts_rejected']} all time",
               "TOO_MANY_ATTEMPTS pending (flagged for review)": str(want["too_many_attempts_pending"]),
               "cancellations requested": str(want["cancel_requested"])}

    def by_code(counts):
        return {code or reporting.NO_CODE: str(n) for code, n in counts.items()}
    return figures, by_code(want["deferred_by_code"]), by_code(want["rejected_today_by_code"])


def test_reconcile_publishes_the_queue_online_and_offline(env, khanza, monkeypatch):
    seed(env)
    khanza_port = base_settings().khanza_db_port
    monkeypatch.setenv("KHANZA_DB_PORT", "1")  # nothing listens there: Khanza offline, the queue still reported
    offline = reconcile_queue_numbers(return_state=True)
    assert offline.is_failed() and offline.name == OFFLINE_STATE_NAME, offline.message
    figures, deferred, rejected = published(offline)
    assert (figures, deferred, rejected) == figures_of_website(env)
    assert figures["cancellations requested"] == "1" and figures["oldest pending"] == "3 d 2 h"
    assert deferred == {"KHANZA_UNREACHABLE": "1", "KHANZA_BUSY": "1", "TOO_MANY_ATTEMPTS": "1"}

    monkeypatch.setenv("KHANZA_DB_PORT", str(khanza_port))
    online = completed(reconcile_queue_numbers)
    assert published(online) == list(figures_of_website(env))


def test_a_sync_run_with_work_publishes_it_an_empty_one_nothing(env, khanza):
    seed(env)
    insert_registrations(env, [registration(id="ok"), registration(id="bad-nik", nik="12AB")])
    worked = completed(sync_registrations)
    # wait-1 waited only for Khanza: a run that reaches Khanza takes it at once (the other waits keep their backoff)
    assert worked.message.startswith("3 registrations: created=2 duplicate=0 rejected=1")
    figures, deferred, rejected = published(worked)
    assert (figures, deferred, rejected) == figures_of_website(env)
    assert rejected == {"INVALID_NIK": "1", "UNKNOWN_POLI": "1"} and figures["pending"] == "2"

    empty = completed(sync_registrations)
    assert empty.message.startswith("0 registrations")
    assert flow_run_artifacts(empty) == {}


def test_a_follow_hour_with_work_publishes_it(env, khanza):
    insert_registrations(env, [registration(id="arrived")])
    state = completed(follow_registrations, seconds=2)
    assert state.message.startswith("1 registrations: created=1"), state.message
    figures = published(state)[0]
    assert figures["pending"] == "0" and figures["rejected today"] == "0"
