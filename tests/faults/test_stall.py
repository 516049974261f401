"""A hung Khanza (the network stalls, every byte held) must end in a transient error after PyMySQL's
read timeout, never a hung run; a stall in the middle of a batch is retried like a dropped link."""
from __future__ import annotations

import time

import pytest

from khanza_sync.error_codes import ErrorCode
from tests.faults.helpers import registrations, run_sync


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_stalled_khanza_times_out_instead_of_hanging(fault_env, monkeypatch):
    fault_env.configure(monkeypatch, KHANZA_RETRIES=1, KHANZA_RETRY_DELAY_SECONDS=0.1, KHANZA_CONNECT_TIMEOUT=1,
                        KHANZA_READ_TIMEOUT=2, KHANZA_WRITE_TIMEOUT=1, KHANZA_LOCK_TIMEOUT_SECONDS=1)
    ids = fault_env.insert(registrations(10, prefix="stall"))
    proxy = fault_env.proxy

    # 1. Khanza accepts TCP connections but never answers (held for far longer than any timeout).
    proxy.stall(45)
    started = time.monotonic()
    state = run_sync()
    elapsed = time.monotonic() - started
    assert proxy.connections >= 2  # the first attempt and the retry both connected and were held
    assert elapsed < 20, f"a stalled Khanza held the run for {elapsed:.0f}s"
    assert state.is_failed() and "Khanza offline: 10 deferred" in state.message
    rows = fault_env.rows(ids)
    assert {(r["status"], r["error_code"]) for r in rows.values()} == {("pending", ErrorCode.KHANZA_UNREACHABLE.value)}
    assert fault_env.visits() == 0

    # 2. Khanza answers again, but the link stalls in the middle of the batch (right on a COMMIT, then
    #    again on a later query) for longer than the read timeout: each stall is one transient failure.
    proxy.unstall()
    fault_env.configure(monkeypatch, KHANZA_RETRIES=5)
    proxy.stall_at_query(6, 1.6, match=b"COMMIT")
    proxy.stall_at_query(40, 1.6)
    fault_env.make_due()
    state = run_sync()
    assert state.is_completed(), state.message
    assert proxy.stalls == 3 and proxy.pending_triggers == 0
    report = fault_env.audit(ids)
    assert report.synced == 10 and not report.problems, report.summary()
    assert fault_env.visits() == 10
