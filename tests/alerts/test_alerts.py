"""Alerts for real: a Prefect server, the automations installed by `khanza-sync alerts`, and a local HTTP
receiver as the ALERT_URLS target (Apprise `json://`). Flow runs are separate processes tagged
`hospital:<code>` as a deployment's runs are.

Khanza unreachable (a closed port; pending rows holding a NIK, name and phone) for longer than the threshold
(ALERT_OFFLINE_MINUTES=0.5, 30 s) makes exactly one alert arrive, though two offline runs happened; a crashed
run makes exactly one; a healthy sync none; the run that takes the hour's rejections over the threshold one,
the next run while it stays high none; no body holds the rows' NIK, name or phone; installing twice changes
nothing. One server for the module.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support import (KHANZA_TEST_DB, base_settings, free_port, insert_registrations, new_website_store,
                           registration, stop_process_group, wait_for)

BIN = Path(sys.executable).parent
CODE = "alerttest"
OFFLINE_SECONDS = 30  # longer than two offline runs (about 10 s each here): both fall in one window
PEOPLE = [dict(nik="3310987654320001", full_name="Siti Rahmawati Alerttest", phone="0813-9876-5432"),
          dict(nik="3310987654320002", full_name="Agus Prasetyo Alerttest", phone="0857-1122-3344")]


class Receiver(BaseHTTPRequestHandler):
    got: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.got.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


@pytest.fixture(scope="module")
def env(khanza_server, receiver, tmp_path_factory):
    """A Prefect server (its own home and port, no scheduler) and the hospital's environment for children."""
    home = tmp_path_factory.mktemp("alerts")
    port = free_port()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "KHANZA_", "WEBSITE_", "HOSPITAL_", "ALERT_", "MAPPINGS_"))}
    base.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_HOME=str(home / "prefect"),
                PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_UI_URL=f"http://127.0.0.1:{port}",
                PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false", PREFECT_SERVER_SERVICES_FOREMAN_ENABLED="false",
                # a run nobody picks up is Late after 5 s (the dead-worker alert's start)
                PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS="5", PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS="2")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=base, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cfg = base_settings()
    website = new_website_store(f"sqlite:///{home / 'website.db'}")
    hospital = {**base, "HOSPITAL_CODE": CODE, "ALERT_URLS": receiver, "ALERT_OFFLINE_MINUTES": str(OFFLINE_SECONDS / 60),
                "KHANZA_DB_HOST": cfg.khanza_db_host, "KHANZA_DB_PORT": str(cfg.khanza_db_port),
                "KHANZA_DB_USER": cfg.khanza_db_user, "KHANZA_DB_PASSWORD": cfg.khanza_db_password.get_secret_value(),
                "KHANZA_DB_NAME": KHANZA_TEST_DB, "WEBSITE_DB_URL": website, "KHANZA_RETRIES": "0",
                "KHANZA_CONNECT_TIMEOUT": "2", "BOOKING_SAME_DAY_CUTOFF_HOUR": "", "_home": str(home)}
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", proc, home / "server.log", "prefect server", timeout=120)
        yield hospital
    finally:
        stop_process_group(proc)
        log.close()


def cli(env: dict, *args: str, **extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in {**env, **extra}.items() if not k.startswith("_")}
    return subprocess.run([str(BIN / "khanza-sync"), *args], env=env, cwd=env["PREFECT_HOME"].rsplit("/", 1)[0],
                          capture_output=True, text=True, timeout=120)


TAGGED_RUN = """
import sys
from prefect import flow, tags
with tags("hospital:%s"):
    if sys.argv[1] == "sync":
        from flows.sync_registrations import sync_registrations
        print(sync_registrations(return_state=True).name)
    else:
        @flow(name="crash-probe")
        def crash_probe():
            raise KeyboardInterrupt  # what Prefect reports as Crashed (the process was interrupted)
        crash_probe()
""" % CODE


def tagged_run(env: dict, what: str, **extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in {**env, **extra}.items() if not k.startswith("_")}
    return subprocess.run([sys.executable, "-c", TAGGED_RUN, what], env=env, cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=120)


def wait_for_alerts(count: int, seconds: float) -> list[dict]:
    deadline = time.time() + seconds
    while len(Receiver.got) < count and time.time() < deadline:
        time.sleep(0.5)
    return list(Receiver.got)


def automations(env) -> dict[str, str]:
    found = httpx.post(env["PREFECT_API_URL"] + "/automations/filter", json={}, timeout=30).json()
    return {a["name"]: a["id"] for a in found if a["name"].startswith(f"khanza-sync {CODE}: ")}


def test_alerts_offline_crash_healthy(env):
    # installed by the command; a second run changes nothing
    first = cli(env, "alerts")
    assert first.returncode == 0, first.stdout + first.stderr
    installed = automations(env)
    assert len(installed) == 5, first.stdout
    second = cli(env, "alerts")
    assert second.returncode == 0 and second.stdout.count("unchanged") == 6, second.stdout
    assert automations(env) == installed
    assert env["ALERT_URLS"] not in first.stdout + second.stdout  # the URL is a secret

    # healthy: Khanza reached, a registration synced; no alert
    insert_registrations(env["WEBSITE_DB_URL"], [registration()])
    healthy = tagged_run(env, "sync")
    assert healthy.stdout.strip().endswith("Completed"), healthy.stdout + healthy.stderr[-3000:]

    # Khanza unreachable, two runs in a row, pending rows with patient data: one alert after the threshold
    insert_registrations(env["WEBSITE_DB_URL"], [registration(**p) for p in PEOPLE])
    offline_since = time.time()
    for _ in range(2):
        # retry base 0: the deferred rows are due again at once, so the second run meets Khanza offline too
        run = tagged_run(env, "sync", KHANZA_DB_PORT=str(free_port()), KHANZA_RETRY_DELAY_SECONDS="0")
        assert run.stdout.strip().endswith("KhanzaOffline"), run.stdout + run.stderr[-3000:]
        assert Receiver.got == [], "none for the healthy run, none before the offline threshold"
    got = wait_for_alerts(1, OFFLINE_SECONDS + 20 - (time.time() - offline_since))
    time.sleep(3)  # a second alert would come with the same evaluation
    assert len(Receiver.got) == 1, Receiver.got
    assert "Khanza unreachable" in got[0]["title"] and CODE in got[0]["message"], got[0]
    assert "/runs/flow-run/" in got[0]["message"], got[0]  # a link to the run

    # a crashed run: exactly one alert
    crash = tagged_run(env, "crash")
    assert crash.returncode != 0
    got = wait_for_alerts(2, 30)
    time.sleep(3)
    assert len(Receiver.got) == 2, Receiver.got
    assert "Crashed" in got[1]["title"] and "crash-probe" in got[1]["message"], got[1]

    # rejections: the run that takes the last hour's count over ALERT_REJECTIONS_PER_HOUR alerts once; a later
    # run while it stays high does not
    bad = [registration(id=f"bad-{i}", nik="12345") for i in range(3)]
    insert_registrations(env["WEBSITE_DB_URL"], bad[:2])
    run = tagged_run(env, "sync", ALERT_REJECTIONS_PER_HOUR="1")
    assert run.stdout.strip().endswith("Completed"), run.stdout + run.stderr[-3000:]
    got = wait_for_alerts(3, 30)
    assert len(got) == 3 and "rejections above 1 per hour" in got[2]["title"], got
    assert "2 registrations rejected" in got[2]["message"] and "INVALID_NIK" in got[2]["message"], got[2]
    insert_registrations(env["WEBSITE_DB_URL"], bad[2:])
    run = tagged_run(env, "sync", ALERT_REJECTIONS_PER_HOUR="1")
    assert run.stdout.strip().endswith("Completed"), run.stdout + run.stderr[-3000:]
    time.sleep(5)
    assert len(Receiver.got) == 3, "still above the threshold: no second rejections alert"

    # no patient data in any alert
    text = json.dumps(Receiver.got)
    for person in PEOPLE:
        for value in person.values():
            assert value not in text and value.replace("-", "") not in text


NO_SYNC_SECONDS = 15


def test_dead_worker_alert(env):
    """`khanza-sync deploy` (ALERT_URLS set) installs the alerts too. A scheduled sync run that no worker picks
    up goes Late; with no sync run completed within ALERT_NO_SYNC_MINUTES one alert names the pool."""
    hospital = {**env, "ALERT_NO_SYNC_MINUTES": str(NO_SYNC_SECONDS / 60)}
    deployed = cli(hospital, "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "automation khanza-sync alerttest: no successful sync" in deployed.stdout, deployed.stdout
    before = len(Receiver.got)
    prefect = {k: v for k, v in hospital.items() if not k.startswith("_")}
    run = subprocess.run([str(BIN / "prefect"), "deployment", "run", f"sync-registrations/sync-registrations-{CODE}"],
                         env=prefect, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    got = wait_for_alerts(before + 1, NO_SYNC_SECONDS + 60)  # Late after ~5 s, then the window
    time.sleep(3)
    assert len(Receiver.got) == before + 1, Receiver.got[before:]
    alert = got[before]
    assert "no successful sync" in alert["title"] and f"khanza-sync-{CODE}" in alert["message"], alert
    assert "/runs/flow-run/" in alert["message"], alert


SPEC_DIGEST = """
import hashlib, json, uuid
from khanza_sync import alerts
from khanza_sync.settings import Settings
specs = alerts.automation_specs(Settings(hospital_code="x", alert_urls="json://a/b"), uuid.UUID(int=1))
print(hashlib.sha256(json.dumps([alerts._comparable(a) for a in specs], sort_keys=True).encode()).hexdigest())
"""


def test_an_unchanged_automation_compares_equal_in_any_process():
    """The triggers' sets are dumped in an order that follows the process's string hashing: re-running
    `khanza-sync alerts` from another process must still find every automation unchanged."""
    digests = {subprocess.run([sys.executable, "-c", SPEC_DIGEST], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(digests) == 1, digests
