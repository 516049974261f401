"""A crash after Khanza committed and before the website heard about it: the next run repairs every
registration from the ledger with the numbers Khanza already gave, and never makes a second visit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from khanza_sync.settings import PROJECT_ROOT
from tests.faults.helpers import claim_and_map, registrations, run_sync
from website import store


def start_worker(mapped, tmp_path) -> subprocess.Popen:
    path = tmp_path / "batch.pkl"
    mapped.to_pickle(path)
    return subprocess.Popen([sys.executable, "-m", "tests.faults.crash_worker", str(path)], cwd=PROJECT_ROOT,
                            env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def lease_is_honoured_then_expires(fault_env, n_claimed: int) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    total = len(store.fetch_rows(fault_env.web))
    assert store.count_due(fault_env.web, now) == total - n_claimed  # a run now would not touch them
    fault_env.make_due()  # ...until the lease ends


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_crash_after_commit_before_write_back_is_repaired(fault_env, tmp_path):
    ids = fault_env.insert(registrations(12, prefix="crash"))
    mapped = claim_and_map(fault_env, 12)

    worker = start_worker(mapped, tmp_path)
    worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL, worker.stderr.read()[-2000:]
    ledger_before = fault_env.ledger()
    assert len(ledger_before) == 12 and fault_env.visits() == 12
    assert {r["status"] for r in fault_env.rows(ids).values()} == {"pending"}  # never told

    lease_is_honoured_then_expires(fault_env, 12)
    state = run_sync()
    assert state.is_completed(), state.message
    assert state.message.startswith("12 registrations: created=12")
    assert fault_env.visits() == 12  # no second visit
    assert fault_env.ledger().equals(ledger_before)
    rows = fault_env.rows(ids)
    for entry in ledger_before.itertuples():  # the very numbers Khanza gave before the crash
        row = rows[entry.registration_id]
        assert (row["status"], row["no_rawat"], row["no_reg"], row["no_rkm_medis"]) == \
            ("synced", entry.no_rawat, entry.no_reg, entry.no_rkm_medis)
    report = fault_env.audit(ids)
    assert not report.problems, report.summary()


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_process_killed_mid_batch_is_repaired(fault_env, tmp_path):
    """SIGKILL while the batch is loading (a transaction may be open, the numbering lock is held): the
    server rolls back the open one and frees the lock; the next run loads the rest and repairs the others."""
    ids = fault_env.insert(registrations(40, prefix="kill"))
    mapped = claim_and_map(fault_env, 40)
    fault_env.proxy.stall_at_query(120, 30)  # slow the worker down mid-batch so the kill lands inside it

    worker = start_worker(mapped, tmp_path)
    deadline = time.monotonic() + 30
    while fault_env.proxy.stalls == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    committed = fault_env.ledger()
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    fault_env.proxy.unstall()
    assert fault_env.proxy.stalls == 1
    assert 0 < len(committed) < 40, "the kill must land mid-batch"

    lease_is_honoured_then_expires(fault_env, 40)
    state = run_sync()
    assert state.is_completed(), state.message
    assert fault_env.visits() == 40 and len(fault_env.ledger()) == 40
    rows = fault_env.rows(ids)
    for entry in committed.itertuples():
        assert rows[entry.registration_id]["no_rawat"] == entry.no_rawat
    report = fault_env.audit(ids)
    assert report.synced == 40 and not report.problems, report.summary()
