"""Alerts for real: a Prefect server, the automations installed by `khanza-sync alerts`, and a local HTTP
receiver as the ALERT_URLS target (Apprise `json://`). Flow runs are separate processes tagged
`hospital:<code>` as a deployment's runs are.

Khanza unreachable (a closed port; pending rows holding a NIK, name and phone) for longer than the threshold
(ALERT_OFFLINE_MINUTES=1) makes exactly one alert arrive, though two offline runs happened; a crashed
run makes exactly one; a healthy sync none; the run that takes the hour's rejections over the threshold one,
the next run while it stays high none; no body holds the rows' NIK, name or phone; installing twice changes
nothing. A rotated Khanza password (MySQL 1045) failing every run alerts once per ALERT_REPEAT_MINUTES and once
when a run succeeds again. One server for the module.

"Nothing more came" is never a sleep: `settled()` sends a barrier event through the server's automation
pipeline (a test automation that only reacts to it) and waits until that automation has fired twice in a row;
the events before it have then been evaluated, and the automations' own `prefect.automation.triggered` events
are counted. The receiver is then awaited up to that count.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support import (KHANZA_TEST_DB, base_settings, free_port, insert_registrations, new_website_store,
                           registration, stop_process_group, wait_for)

BIN = Path(sys.executable).parent
CODE = "alerttest"
OFFLINE_SECONDS = 60  # longer than two offline runs side by side (10-30 s here): both fall in one window
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


SINCE = datetime.now(timezone.utc) - timedelta(hours=1)
BARRIER = "khanza-sync-test.barrier"


def triggered(env, automation_id: str) -> list[dict]:
    """The automation's `prefect.automation.triggered` events (one per firing), oldest first."""
    body = {"filter": {"event": {"name": ["prefect.automation.triggered"]},
                       "resource": {"id": [f"prefect.automation.{automation_id}"]},
                       "occurred": {"since": SINCE.isoformat()}}, "limit": 50}
    page = httpx.post(env["PREFECT_API_URL"] + "/events/filter", json=body, timeout=30).json()
    return sorted(page["events"], key=lambda e: e["occurred"])


def _barrier_automation(env) -> str:
    api = env["PREFECT_API_URL"]
    found = httpx.post(api + "/automations/filter", json={}, timeout=30).json()
    for a in found:
        if a["name"] == "test barrier":
            return a["id"]
    spec = {"name": "test barrier", "enabled": True, "actions": [{"type": "do-nothing"}],
            "trigger": {"type": "event", "posture": "Reactive", "expect": [BARRIER],
                        "match": {"prefect.resource.id": "khanza-sync-test.*"}, "threshold": 1, "within": 0}}
    made = httpx.post(api + "/automations/", json=spec, timeout=30)
    made.raise_for_status()
    return made.json()["id"]


def settled(env, timeout: float = 120) -> None:
    """Every event sent before this call has been evaluated by the automations: two barrier events in a row
    (the triggers consumer takes two messages at a time), each awaited until its firing is recorded."""
    barrier = _barrier_automation(env)
    for _ in range(2):
        before = len(triggered(env, barrier))
        deadline = time.time() + timeout
        mark = str(uuid.uuid4())
        event = {"id": mark, "event": BARRIER, "occurred": datetime.now(timezone.utc).isoformat(),
                 "resource": {"prefect.resource.id": f"khanza-sync-test.{mark}"}, "payload": {}, "related": []}
        sent = False
        while len(triggered(env, barrier)) <= before:
            assert time.time() < deadline, "the automation pipeline did not evaluate the barrier"
            if not sent or time.time() > resend:  # a barrier sent before the service loaded it is lost: resend
                httpx.post(env["PREFECT_API_URL"] + "/events", json=[{**event, "id": str(uuid.uuid4())}],
                           timeout=30).raise_for_status()
                sent, resend = True, time.time() + 10
            time.sleep(0.3)


def fired(env, condition: str) -> int:
    return len(triggered(env, automations(env)[f"khanza-sync {CODE}: {condition}"]))


def test_alerts_offline_crash_healthy(env):
    # installed by the command; a second run changes nothing
    first = cli(env, "alerts")
    assert first.returncode == 0, first.stdout + first.stderr
    installed = automations(env)
    assert len(installed) == 6, first.stdout
    second = cli(env, "alerts")
    assert second.returncode == 0 and second.stdout.count("unchanged") == 7, second.stdout
    assert automations(env) == installed
    assert env["ALERT_URLS"] not in first.stdout + second.stdout  # the URL is a secret

    # healthy: Khanza reached, a registration synced; no alert
    insert_registrations(env["WEBSITE_DB_URL"], [registration()])
    healthy = tagged_run(env, "sync")
    assert healthy.stdout.strip().endswith("Completed"), healthy.stdout + healthy.stderr[-3000:]

    settled(env)
    assert Receiver.got == [] and all(len(triggered(env, i)) == 0 for i in installed.values()), Receiver.got

    # Khanza unreachable, two runs side by side, pending rows with patient data: one alert after the threshold
    insert_registrations(env["WEBSITE_DB_URL"], [registration(**p) for p in PEOPLE])
    offline_since = time.time()

    def offline_run():
        # retry base 0: the deferred rows are due again at once, so both runs meet Khanza offline
        run = tagged_run(env, "sync", KHANZA_DB_PORT=str(free_port()), KHANZA_RETRY_DELAY_SECONDS="0")
        assert run.stdout.strip().endswith("KhanzaOffline"), run.stdout + run.stderr[-3000:]

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(offline_run) for _ in range(2)]:
            done.result()
    assert time.time() < offline_since + OFFLINE_SECONDS, "both runs must fall in one window: raise OFFLINE_SECONDS"
    got = wait_for_alerts(1, OFFLINE_SECONDS + 60 - (time.time() - offline_since))
    assert len(got) == 1, got
    settled(env)
    firing = triggered(env, installed[f"khanza-sync {CODE}: Khanza offline"])[0]
    waited = (datetime.fromisoformat(firing["occurred"])
              - datetime.fromisoformat(firing["payload"]["triggering_event"]["occurred"])).total_seconds()
    assert waited >= OFFLINE_SECONDS, f"alerted {waited:.1f} s after the first offline run, before the threshold"
    assert "Khanza unreachable" in got[0]["title"] and CODE in got[0]["message"], got[0]
    assert "/runs/flow-run/" in got[0]["message"], got[0]  # a link to the run

    # a crashed run: exactly one alert
    crash = tagged_run(env, "crash")
    assert crash.returncode != 0
    got = wait_for_alerts(2, 60)
    settled(env)
    assert fired(env, "run failed or crashed") == 1 and fired(env, "Khanza offline") == 1
    assert len(Receiver.got) == 2, Receiver.got
    assert "Crashed" in got[1]["title"] and "crash-probe" in got[1]["message"], got[1]

    # rejections: the run that takes the last hour's count over ALERT_REJECTIONS_PER_HOUR alerts once; a later
    # run while it stays high does not
    bad = [registration(id=f"bad-{i}", nik="12345") for i in range(3)]
    insert_registrations(env["WEBSITE_DB_URL"], bad[:2])
    run = tagged_run(env, "sync", ALERT_REJECTIONS_PER_HOUR="1")
    assert run.stdout.strip().endswith("Completed"), run.stdout + run.stderr[-3000:]
    got = wait_for_alerts(3, 60)
    assert len(got) == 3 and "rejections above 1 per hour" in got[2]["title"], got
    assert "2 registrations rejected" in got[2]["message"] and "INVALID_NIK" in got[2]["message"], got[2]
    insert_registrations(env["WEBSITE_DB_URL"], bad[2:])
    run = tagged_run(env, "sync", ALERT_REJECTIONS_PER_HOUR="1")
    assert run.stdout.strip().endswith("Completed"), run.stdout + run.stderr[-3000:]
    settled(env)
    assert fired(env, "rejections high") == 1, "still above the threshold: no second rejections alert"
    assert len(Receiver.got) == 3, Receiver.got

    # no patient data in any alert
    text = json.dumps(Receiver.got)
    for person in PEOPLE:
        for value in person.values():
            assert value not in text and value.replace("-", "") not in text


REPEAT_SECONDS = 120  # the repeat window: two more failing runs side by side (10-30 s here) fit in it


def test_rotated_password_alerts_once_per_window_and_once_when_fixed(env):
    """A rotated Khanza password (MySQL 1045: not transient, every run Failed) alerts at the first failed run,
    not at the next ones inside ALERT_REPEAT_MINUTES, again at the first failed run after it (it persists), and
    once when a run completes again; a second good run adds nothing."""
    installed = cli(env, "alerts", ALERT_REPEAT_MINUTES=str(REPEAT_SECONDS / 60))
    assert installed.returncode == 0 and "updated   automation khanza-sync alerttest: run failed" in installed.stdout, \
        installed.stdout + installed.stderr
    failing, recovered = "run failed or crashed", "runs succeed again"
    settled(env)  # earlier tests' events are behind us
    base_failing, base_recovered, before = fired(env, failing), fired(env, recovered), len(Receiver.got)
    insert_registrations(env["WEBSITE_DB_URL"], [registration(id="after-rotation")])

    def failed_run():
        run = tagged_run(env, "sync", KHANZA_DB_PASSWORD="rotated-" + uuid.uuid4().hex[:8])
        assert run.stdout.strip().endswith("Failed"), run.stdout + run.stderr[-3000:]
        assert "refused the login" in run.stderr, run.stderr[-2000:]  # MySQL 1045, as the run says it

    failed_run()
    got = wait_for_alerts(before + 1, 60)
    assert "sync-registrations run Failed" in got[before]["title"], got[before:]
    assert f"after {REPEAT_SECONDS / 60:g} min" in got[before]["message"], got[before]
    settled(env)
    first = datetime.fromisoformat(triggered(env, automations(env)[f"khanza-sync {CODE}: {failing}"])[-1]
                                   ["payload"]["triggering_event"]["occurred"])
    with ThreadPoolExecutor(2) as pool:  # two more runs failing inside the window, side by side
        for done in [pool.submit(failed_run) for _ in range(2)]:
            done.result()
    assert time.time() < first.timestamp() + REPEAT_SECONDS, "the runs outlasted the window: raise REPEAT_SECONDS"
    settled(env)
    assert fired(env, failing) == base_failing + 1, "failures inside the window: no second alert"

    while time.time() < first.timestamp() + REPEAT_SECONDS + 1:  # the window's end (a clock condition)
        time.sleep(0.5)
    failed_run()  # it persists: one more alert
    got = wait_for_alerts(before + 2, 60)
    assert "sync-registrations run Failed" in got[before + 1]["title"], got[before:]

    for _ in range(2):  # the password fixed: one "cleared" alert, not one per good run
        run = tagged_run(env, "sync")
        assert run.stdout.strip().endswith("Completed"), run.stdout + run.stderr[-3000:]
    got = wait_for_alerts(before + 3, 60)
    assert "sync-registrations runs succeed again" in got[before + 2]["title"], got[before:]
    settled(env)
    assert fired(env, failing) == base_failing + 2 and fired(env, recovered) == base_recovered + 1
    assert len(Receiver.got) == before + 3, Receiver.got[before:]


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
    settled(env)
    # one firing: the Late run opened one window; nothing else can open another (no further Late run)
    assert fired(env, "no successful sync") == 1
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
