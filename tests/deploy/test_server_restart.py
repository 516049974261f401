"""A Prefect server restart while a sync batch holds the Khanza write slot does not fail the batch.

A real Prefect server (its own home and port, leases in files as deploy/env/prefect-server.env.example sets
it) and a sync run in its own process with a 60 s slot lease (renewed after 45 s). The batch is held
deterministically, without a test hook in the code: the test holds Khanza's numbering lock
(khanza/locks.py), so the batch waits inside the slot in GET_LOCK. Then:
- the slot is taken (the limit shows one active slot) and the run waits on the lock (MariaDB's processlist);
- the server is stopped and started again (a new process on the same home and port);
- the test waits until the run has renewed its lease on the restarted server (the lease file's expiration moves
  past the restart), then releases the lock: the run completes, the registration gets its numbers, and the
  slot is free again.
With Prefect's in-memory lease storage (its default) the restarted server no longer knows the lease, the renewal
is refused, and strict Prefect (`raise_on_lease_renewal_failure` following `strict=True`) cancels the run; the
deploy recipe stores leases in files and tasks/limits.py sets the renewal failure to a warning.

Wall time about 1.5-2 minutes (two server starts, the 45 s until the first renewal).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import text

from khanza.locks import lock_name
from tests.support import (KHANZA_TEST_DB, base_settings, free_port, insert_registrations, new_website_store, registration,
                           stop_process_group, wait_for, website_rows)

BIN = Path(sys.executable).parent
CODE = "restarttest"
LIMIT = f"khanza-writes-{CODE}"
LEASE = 60  # Prefect's shortest: renewed 45 s after the slot is taken


def until(condition, what: str, timeout: float = 180):
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def active_slots(api: str) -> int | None:
    try:
        found = httpx.get(f"{api}/v2/concurrency_limits/{LIMIT}", timeout=10)
    except httpx.HTTPError:
        return None
    return found.json()["active_slots"] if found.status_code == 200 else None


def test_server_restart_during_a_batch_does_not_fail_it(khanza, tmp_path):
    cfg = base_settings()
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "KHANZA_", "WEBSITE_", "HOSPITAL_", "ALERT_", "MAPPINGS_"))}
    base.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_HOME=str(tmp_path / "prefect"),
                PREFECT_API_URL=api, PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
                PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect.server.concurrency.lease_storage.filesystem")
    server_log = tmp_path / "server.log"

    def start_server() -> subprocess.Popen:
        proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=base, cwd=tmp_path, stdout=open(server_log, "a"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        wait_for(f"{api}/health", proc, server_log, "prefect server", timeout=180)
        return proc

    website = new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    insert_registrations(website, [registration(id="during-restart")])
    hospital = {**base, "HOSPITAL_CODE": CODE, "KHANZA_DB_HOST": cfg.khanza_db_host,
                "KHANZA_DB_PORT": str(cfg.khanza_db_port), "KHANZA_DB_USER": cfg.khanza_db_user,
                "KHANZA_DB_PASSWORD": cfg.khanza_db_password.get_secret_value(), "KHANZA_DB_NAME": KHANZA_TEST_DB,
                "WEBSITE_DB_URL": website, "BOOKING_SAME_DAY_CUTOFF_HOUR": "", "KHANZA_RETRIES": "0",
                "KHANZA_SLOT_LEASE_SECONDS": str(LEASE), "KHANZA_LOCK_TIMEOUT_SECONDS": "280", "KHANZA_READ_TIMEOUT": "300"}
    server = start_server()
    run_log = tmp_path / "run.log"
    run = None
    with khanza.connect() as holder:
        try:
            got = holder.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": lock_name(KHANZA_TEST_DB)}).scalar()
            assert got == 1
            run = subprocess.Popen(
                [sys.executable, "-c", "from flows.sync_registrations import sync_registrations as s\n"
                                       "print('STATE', s(return_state=True).name)"],
                env=hospital, cwd=Path(__file__).parents[2], stdout=open(run_log, "w"), stderr=subprocess.STDOUT,
                start_new_session=True)

            def waiting_on_lock() -> bool:
                listing = holder.execute(text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK%' "
                    "AND ID <> CONNECTION_ID()")).scalar()
                return listing > 0

            until(lambda: active_slots(api) == 1 and waiting_on_lock() or run.poll() is not None,
                  "the batch to hold the slot and wait on the numbering lock")
            assert run.poll() is None, run_log.read_text()[-3000:]

            stop_process_group(server)  # the server goes away while the batch holds the slot
            server = start_server()
            restarted = datetime.now(timezone.utc)

            def renewed_after_restart() -> bool:
                files = list((tmp_path / "prefect" / "concurrency_leases").glob("*-*.json"))
                return any(datetime.fromisoformat(json.loads(f.read_text())["expiration"])
                           > restarted + timedelta(seconds=LEASE) for f in files)  # set by a renewal after it

            until(lambda: renewed_after_restart() or run.poll() is not None,
                  "the run to renew its lease on the restarted server", timeout=180)
            assert run.poll() is None, "the run ended after the restart:\n" + run_log.read_text()[-3000:]
        finally:
            holder.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name(KHANZA_TEST_DB)})
    try:
        run.wait(timeout=300)
        out = run_log.read_text()
        assert "STATE Completed" in out, out[-4000:]
        row = website_rows(website, ["during-restart"]).loc["during-restart"]
        assert row["status"] == "synced" and row["no_rawat"], row.to_dict()
        until(lambda: active_slots(api) == 0, "the write slot to be free again", timeout=180)
    finally:
        if run is not None and run.poll() is None:
            stop_process_group(run)
        stop_process_group(server)
