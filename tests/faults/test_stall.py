"""A hung Khanza (the network stalls, every byte held) must end in a transient error after PyMySQL's
read timeout, never a hung run; a stall in the middle of a batch is retried like a dropped link."""
from __future__ import annotations

import time

import pytest

from khanza_sync.error_codes import ErrorCode
from tests.support import insert_registrations
from tests.faults.helpers import (
    make_due,
    registrations,
    rows_by_id,
    run_sync,
    visit_count,
)
from tests.faults.invariants import audit


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_stalled_khanza_times_out_instead_of_hanging(fault_env, monkeypatch):
    fault_env.configure(monkeypatch, KHANZA_RETRIES=1, KHANZA_RETRY_DELAY_SECONDS=0.1, KHANZA_CONNECT_TIMEOUT=1,
                        KHANZA_READ_TIMEOUT=1, KHANZA_WRITE_TIMEOUT=1)
    regs = registrations(10, prefix="stall")
    ids = [r["id"] for r in regs]
    insert_registrations(fault_env.website_url, regs)
    proxy = fault_env.proxy

    # 1. Khanza accepts TCP connections but never answers (held for far longer than any timeout).
    proxy.stall(45)
    started = time.monotonic()
    state = run_sync()
    elapsed = time.monotonic() - started
    assert proxy.connections >= 2  # the first attempt and the retry both connected and were held
    assert elapsed < 20, f"a stalled Khanza held the run for {elapsed:.0f}s"
    assert state.is_failed() and "Khanza offline: 10 deferred" in state.message
    rows = rows_by_id(fault_env.web, ids)
    assert {(r["status"], r["error_code"]) for r in rows.values()} == {("pending", ErrorCode.KHANZA_UNREACHABLE.value)}
    assert visit_count(fault_env.khanza) == 0

    # 2. Khanza answers again, but the link stalls in the middle of the batch (right on a COMMIT, then
    #    again on a later query) for longer than the read timeout: each stall is one transient failure.
    proxy.unstall()
    fault_env.configure(monkeypatch, KHANZA_RETRIES=5)
    proxy.stall_at_query(6, 1.6, match=b"COMMIT")
    proxy.stall_at_query(40, 1.6)
    make_due(fault_env.web)
    state = run_sync()
    assert state.is_completed(), state.message
    assert proxy.stalls == 3 and proxy.pending_triggers == 0
    report = audit(fault_env.khanza, fault_env.web, ids)
    assert report.synced == 10 and not report.problems, report.summary()
    assert visit_count(fault_env.khanza) == 10
