"""Khanza offline: the flow defers every registration, says so in a Failed state, and the next run (or a
retry inside the same run) loads them all, once."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from khanza_sync.error_codes import ErrorCode
from tests.faults.helpers import registrations, run_sync


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_offline_run_defers_everything_then_next_run_syncs_once(fault_env):
    ids = fault_env.insert(registrations(12, prefix="off"))

    fault_env.proxy.refuse()  # Khanza stopped before the run, and stays down for all its retries
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    state = run_sync(batch_size=5)

    assert state.is_failed(), state
    assert "Khanza offline: 12 deferred" in state.message
    assert fault_env.proxy.connections == 0  # nothing ever got through
    rows = fault_env.rows(ids)
    assert {r["status"] for r in rows.values()} == {"pending"}
    assert {r["error_code"] for r in rows.values()} == {ErrorCode.KHANZA_UNREACHABLE.value}
    # The claimed batch counts an attempt; the rows it never reached wait with the shared retry time.
    claimed = [r for r in rows.values() if r["attempts"] == 1]
    assert len(claimed) == 5
    assert all(r["attempts"] in (0, 1) for r in rows.values())
    assert all(r["next_attempt_at"] is not None and r["next_attempt_at"] > started for r in rows.values())
    assert fault_env.ledger().empty and fault_env.visits() == 0

    # Still down at the next run: each registration's own backoff grows with its attempts.
    fault_env.make_due()
    second = datetime.now(timezone.utc).replace(tzinfo=None)
    state = run_sync(batch_size=20)
    assert state.is_failed() and "12 deferred" in state.message
    rows = fault_env.rows(ids)
    assert sorted(r["attempts"] for r in rows.values()) == [1] * 7 + [2] * 5
    once = [r for r in rows.values() if r["attempts"] == 1]
    twice = [r for r in rows.values() if r["attempts"] == 2]
    # base delay max(0.2 s, 1 s) * 2^(attempts-1) * jitter(0.75..1): 0.75-1 s after one attempt, 1.5-2 s after
    # two, from the same batch clock: every twice-failed row waits longer than every once-failed one.
    assert all(0.7 <= (r["next_attempt_at"] - second).total_seconds() <= 4.0 for r in once)
    assert min(r["next_attempt_at"] for r in twice) > max(r["next_attempt_at"] for r in once)
    assert {r["error_code"] for r in rows.values()} == {ErrorCode.KHANZA_UNREACHABLE.value}

    # Khanza is back: the next scheduled run syncs every registration exactly once.
    fault_env.proxy.accept()
    fault_env.make_due()
    state = run_sync(batch_size=5)
    assert state.is_completed(), state.message
    assert state.message.startswith("12 registrations: created=12")
    report = fault_env.audit(ids)
    assert report.synced == 12 and not report.problems, report.summary()
    assert fault_env.visits() == 12 and len(fault_env.ledger()) == 12
    assert all(r["error_code"] is None for r in fault_env.rows(ids).values())

    # And a further run finds nothing to do: no second visit.
    state = run_sync()
    assert state.is_completed() and state.message.startswith("0 registrations")
    assert fault_env.visits() == 12


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_khanza_started_during_the_retries(fault_env, monkeypatch):
    """Khanza down when the run starts, up again while Prefect is still retrying: the same run loads all."""
    fault_env.configure(monkeypatch, KHANZA_RETRIES=6, KHANZA_RETRY_DELAY_SECONDS=0.3)
    ids = fault_env.insert(registrations(8, prefix="up"))
    fault_env.proxy.refuse()
    timer = threading.Timer(1.5, fault_env.proxy.accept)
    timer.start()
    started = time.monotonic()
    try:
        state = run_sync()
    finally:
        timer.cancel()
    assert time.monotonic() - started >= 1.5  # it really waited for Khanza
    assert state.is_completed(), state.message
    report = fault_env.audit(ids)
    assert report.synced == 8 and not report.problems, report.summary()
