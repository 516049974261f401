"""`khanza-sync runner` against a real Prefect server on PostgreSQL, as deploy/ sets it up: the hospital deployed
with `khanza-sync deploy`, the runner started as its own process with the hospital's environment only.

- A manual `prefect deployment run` of sync-registrations-CODE is run to Completed inside the runner's process
  (the run's own logs, on the server, name the runner's PID) and the registrations are synced.
- A run whose flow raises ends Failed and the runner stays alive and runs the next one.
- A second runner and a process worker polling the same pool: every flow run is taken exactly once (one Running
  state in its history) and completes.
- Cancel in the UI: a running follow-mode run is interrupted and ends Cancelled; the runner carries on.
- SIGTERM: the runner exits 0 and a run still going is marked Crashed, not left Running.

Wall time about 2 minutes on the 2-core machine (server start, deploy, a few worker-run processes).
"""
from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import create_engine, make_url

from khanza.db import make_engine as make_khanza_engine
from khanza.setup import create_demo_database
from khanza_sync import ownership
from tests.deploy.test_multi_hospital import AUTH, BIN, Hospital, api_client, clean_env, start
from tests.support import (PG_ADMIN_URL, PG_TEST_DB, base_settings, free_port, insert_registrations, registration,
                           stop_process_group, unavailable, wait_for, website_rows)

PREFECT_DB = f"{PG_TEST_DB}_prefect_runner"
CODE = "hosp-r"
DEADLINE = 150
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _drop() -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if ownership.postgres_owned(conn, PREFECT_DB):
                conn.exec_driver_sql(f'DROP DATABASE "{PREFECT_DB}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def server(private_servers, tmp_path_factory):
    """`prefect server start` on PostgreSQL with basic auth, scheduler off (only the test's runs exist)."""
    try:
        _drop()
        url = ownership.ensure_postgres_database(PG_ADMIN_URL, PREFECT_DB, "runner test Prefect server")
    except Exception as error:  # noqa: BLE001
        unavailable("PostgreSQL (Prefect server database)", error)
    home = tmp_path_factory.mktemp("prefect_server")
    port = free_port()
    env = clean_env()
    env.update(PREFECT_HOME=str(home), PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_DATABASE_CONNECTION_URL=make_url(url).set(drivername="postgresql+asyncpg")
               .render_as_string(hide_password=False),
               PREFECT_SERVER_API_AUTH_STRING=":".join(AUTH),
               PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false")
    log = home / "server.log"
    proc = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log, home)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", proc, log, "prefect server")
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop_process_group(proc)
        _drop()


@pytest.fixture(scope="module")
def hospital(server, tmp_path_factory):
    h = Hospital(CODE, "Asia/Jakarta", server, tmp_path_factory.mktemp("runner_hospital"))
    try:
        create_demo_database(base_settings(), h.khanza_db, purpose=f"runner test {CODE}")
    except Exception as error:  # noqa: BLE001
        unavailable("MariaDB (Khanza)", error)
    h.cli("deploy")
    procs: list[subprocess.Popen] = []
    h.procs = procs
    yield h
    for proc in procs:
        stop_process_group(proc)
    engine = make_khanza_engine(base_settings(), database="information_schema")
    with engine.begin() as conn:
        if ownership.mariadb_owned(conn, h.khanza_db):
            conn.exec_driver_sql(f"DROP DATABASE `{h.khanza_db}`")
    engine.dispose()


def start_runner(h: Hospital, name: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    log = h.dir / f"{name}.log"
    proc = start([str(BIN / "khanza-sync"), "runner", "--name", name, "--poll-seconds", "1", *extra], h.env, log,
                 h.dir)
    h.procs.append(proc)
    wait_until(lambda: "polling work pool" in log.read_text(), f"{name} to start", proc, log)
    return proc, log


def wait_until(condition, what: str, proc: subprocess.Popen | None = None, log: Path | None = None,
               timeout: float = DEADLINE):
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline or (proc is not None and proc.poll() is not None):
            pytest.fail(f"waiting for {what}" + (f"; log:\n{log.read_text()[-3000:]}" if log else ""))
        time.sleep(0.5)


def deployment_run(h: Hospital, flow: str, *params: str) -> str:
    """A manual run, as staff start one: `prefect deployment run`; returns the flow run id."""
    args = [str(BIN / "prefect"), "deployment", "run", f"{flow}/{flow}-{h.code}"]
    for p in params:
        args += ["--param", p]
    done = subprocess.run(args, env=h.env, cwd=h.dir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout).group(1)


def final_run(client: httpx.Client, run_id: str, log: Path) -> dict:
    def final():
        run = client.get(f"/flow_runs/{run_id}").json()
        return run if run["state"]["type"] in FINAL else None
    return wait_until(final, f"flow run {run_id} to end", log=log)


def run_logs(client: httpx.Client, run_id: str) -> list[str]:
    found = client.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    found.raise_for_status()
    return [entry["message"] for entry in found.json()]


def state_types(client: httpx.Client, run_id: str) -> list[str]:
    states = client.get("/flow_run_states/", params={"flow_run_id": run_id})
    states.raise_for_status()
    return [s["type"] for s in sorted(states.json(), key=lambda s: s["timestamp"])]


def test_runner_runs_in_process_once_survives_failures_cancels_and_stops(hospital):
    h = hospital
    client = api_client(h.env["PREFECT_API_URL"])
    visit = datetime.now(ZoneInfo(h.tz)).date() + timedelta(days=1)
    regs = [registration(visit_date=visit) for _ in range(2)]
    insert_registrations(h.website_url, regs)

    runner, runner_log = start_runner(h, "runner-1", "--stop-seconds", "2")
    # It shows in the UI as a worker of the hospital's pool (heartbeats), so the pool is Ready.
    wait_until(lambda: "runner-1" in {w["name"] for w in client.post(f"/work_pools/{h.pool}/workers/filter",
                                                                        json={}).json()}, "runner-1's heartbeat")
    assert client.get(f"/work_pools/{h.pool}").json()["status"] == "READY"

    # A manual run, in the runner's own process; its logs reach the server.
    run_id = deployment_run(h, "sync-registrations")
    run = final_run(client, run_id, runner_log)
    assert run["state"]["type"] == "COMPLETED", (run["state"], runner_log.read_text()[-3000:])
    # (logs are sent in batches, shortly after they are written)
    wait_until(lambda: any("Finished in state Completed" in m for m in run_logs(client, run_id)), "the run's logs")
    logs = run_logs(client, run_id)
    assert any(f"khanza-sync runner runner-1 (pid {runner.pid})" in m for m in logs), logs
    rows = website_rows(h.website_url)
    assert set(rows.index) == {r["id"] for r in regs} and (rows["status"] == "synced").all()

    # A run whose flow raises (a backfill window that ends before it starts) ends Failed; the runner lives on and
    # runs the next one.
    bad = deployment_run(h, "backfill-registrations", 'start="2026-11-07"', 'end="2026-11-01"')
    assert final_run(client, bad, runner_log)["state"]["type"] == "FAILED"
    assert runner.poll() is None, runner_log.read_text()[-3000:]
    again = deployment_run(h, "sync-registrations")
    assert final_run(client, again, runner_log)["state"]["type"] == "COMPLETED"
    wait_until(lambda: any(f"(pid {runner.pid})" in m for m in run_logs(client, again)), "the runner's PID in the logs")

    # Cancel in the UI: a follow-mode run (it would follow for 10 minutes) is interrupted and ends Cancelled.
    follow = deployment_run(h, "follow-registrations", "seconds=600")
    wait_until(lambda: client.get(f"/flow_runs/{follow}").json()["state"]["type"] == "RUNNING", "follow run to run",
               runner, runner_log)
    cancelling = client.post(f"/flow_runs/{follow}/set_state",
                             json={"state": {"type": "CANCELLING", "name": "Cancelling"}})
    assert cancelling.status_code in (200, 201) and cancelling.json()["status"] == "ACCEPT", cancelling.text
    assert final_run(client, follow, runner_log)["state"]["type"] == "CANCELLED"
    assert runner.poll() is None, runner_log.read_text()[-3000:]

    # A second runner and a process worker on the same pool: each run is taken once, by one of the three.
    runner2, runner2_log = start_runner(h, "runner-2")
    worker_log = h.dir / "worker.log"
    worker = start([str(BIN / "khanza-sync"), "worker"], h.env, worker_log, h.dir)
    h.procs.append(worker)
    wait_for(f"http://127.0.0.1:{h.health_port}/health", worker, worker_log, "worker", timeout=90)
    more = [registration(visit_date=visit) for _ in range(3)]
    insert_registrations(h.website_url, more)
    runs = [deployment_run(h, "sync-registrations") for _ in range(4)]
    runs += [deployment_run(h, "reconcile-queue-numbers") for _ in range(2)]  # CANCEL_NEW: may give way
    for rid in runs:
        end = final_run(client, rid, runner_log)["state"]
        history = state_types(client, rid)
        if end["type"] == "CANCELLED":  # the server cancelled it on the Pending proposal: it never ran
            assert "RUNNING" not in history and end["message"] == "Deployment concurrency limit reached.", history
            continue
        assert end["type"] == "COMPLETED", (end, history)
        # One Running, one Completed: run once. (A worker-run run shows two Pending states: the worker's claim and
        # its subprocess's own; the claim is the one that counts, and a second claim is aborted by the server.)
        assert history.count("RUNNING") == 1 and history.count("COMPLETED") == 1, (rid, history)
    rows = website_rows(h.website_url)
    assert (rows["status"] == "synced").all(), rows[["status", "error_code"]]

    # SIGTERM while a long run is going: the runner exits 0, the run is marked Crashed, not left Running.
    stop_process_group(runner2)
    stop_process_group(worker)
    follow = deployment_run(h, "follow-registrations", "seconds=600")
    wait_until(lambda: client.get(f"/flow_runs/{follow}").json()["state"]["type"] == "RUNNING", "follow run to run",
               runner, runner_log)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=DEADLINE) == 0, runner_log.read_text()[-3000:]
    assert client.get(f"/flow_runs/{follow}").json()["state"]["type"] == "CRASHED"
