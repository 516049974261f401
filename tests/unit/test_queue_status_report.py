"""The queue-status artifact's text, built from fixed figures: headline rows, tables by code, no ids."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from khanza_sync import reporting
from tests.queue_figures import tables
from website.store import QueueStatus

NOW = datetime(2026, 11, 27, 5, 0, 0)


def test_the_artifact_shows_every_figure_and_the_codes():
    status = QueueStatus(now=NOW, day_start=datetime(2026, 11, 26, 17, 0), pending=7, due_now=2,
                         oldest_pending_created_at=NOW - timedelta(hours=2, minutes=5),
                         deferred_by_code={"KHANZA_UNREACHABLE": 4, None: 1},
                         rejected_today_by_code={"INVALID_NIK": 3, "TOO_MANY_ATTEMPTS": 1},
                         too_many_attempts_rejected=5, too_many_attempts_rejected_today=1,
                         too_many_attempts_pending=0, cancel_requested=2)
    text = reporting.queue_status_markdown(status, "rs-a", ZoneInfo("Asia/Jakarta"))
    assert text.startswith("**Queue of hospital `rs-a` at 2026-11-27 12:00 (Asia/Jakarta)**")
    assert "today is since 2026-11-27 00:00" in text
    figures, deferred, rejected = tables(text)
    assert figures == {"pending": "7", "due now": "2", "deferred (pending, not due yet)": "5",
                       "oldest pending": "2 h 5 min", "rejected today": "4",
                       "TOO_MANY_ATTEMPTS rejected": "1 today, 5 all time",
                       "TOO_MANY_ATTEMPTS pending (flagged for review)": "0", "cancellations requested": "2"}
    assert deferred == {"KHANZA_UNREACHABLE": "4", reporting.NO_CODE: "1"}
    assert rejected == {"INVALID_NIK": "3", "TOO_MANY_ATTEMPTS": "1"}


def test_an_empty_queue_says_none():
    text = reporting.queue_status_markdown(QueueStatus(now=NOW, day_start=NOW), "default", ZoneInfo("Asia/Jakarta"))
    assert "**Deferred by code**: none" in text and "**Rejected today by code**: none" in text
    assert tables(text)[0]["oldest pending"] == "-"


def test_ages_and_the_key():
    assert [reporting.age_text(timedelta(seconds=s)) for s in (30, 300, 7500, 3 * 86400 + 7300)] == [
        "< 1 min", "5 min", "2 h 5 min", "3 d 2 h"]
    assert reporting.queue_status_key("rs-a") == "queue-status-rs-a"
