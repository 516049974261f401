"""Two hospitals on ONE real Prefect server, as deploy/ sets it up for production: the server on PostgreSQL
behind its basic-auth string, with the flow-run retention service on; each hospital deployed with
`khanza-sync deploy` (its own work pool, deployments, write limit, time zone) and served by its own
`khanza-sync worker` (health check on) started with that hospital's environment only.

Hospital A (Asia/Jakarta) and B (Asia/Jayapura) have their own Khanza database and website store. A sync run of
each, triggered through the server and run by the workers, must touch only its own hospital's databases;
deploying B must leave A's deployments exactly as they were; a second deploy of A changes no id; deploying
with A's code against another Khanza database is refused; a finished flow run older than the retention is
deleted by Prefect's database vacuum.

Wall time about 1.5-2 minutes on the 2-core machine (server start and migrations on PostgreSQL, four
`khanza-sync deploy` calls, two worker-run flow processes).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import bindparam, create_engine, make_url, text

from khanza.db import make_engine as make_khanza_engine
from khanza.setup import create_demo_database
from khanza_sync import ownership
from khanza_sync.deployments import JOBS
from tests.support import (KHANZA_TEST_DB, PG_ADMIN_URL, PG_TEST_DB, base_settings, free_port,
                           insert_registrations, new_website_store, registration, stop_process_group, unavailable,
                           wait_for, website_rows)

BIN = Path(sys.executable).parent
AUTH = ("khanza-admin", "test-" + uuid.uuid4().hex[:12])
HOSPITALS = {"hosp-a": "Asia/Jakarta", "hosp-b": "Asia/Jayapura"}
RUN_DEADLINE_SECONDS = 150


def clean_env() -> dict[str, str]:
    """The test process's environment without anything that would point a child at other settings."""
    prefixes = ("PREFECT_", "KHANZA_", "WEBSITE_", "HOSPITAL_", "BOOKING_", "MAPPINGS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def start(command: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


PREFECT_DB = f"{PG_TEST_DB}_prefect_multi"


def drop_prefect_database() -> None:
    """Drop the test's Prefect database, only if Khanza Sync made it (khanza_sync/ownership.py)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if ownership.postgres_owned(conn, PREFECT_DB):
                conn.exec_driver_sql(f'DROP DATABASE "{PREFECT_DB}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def prefect_database(private_servers):
    """A fresh PostgreSQL database for the Prefect server (asyncpg URL), on the tests' PostgreSQL."""
    try:
        drop_prefect_database()
        url = ownership.ensure_postgres_database(PG_ADMIN_URL, PREFECT_DB, "multi-hospital test Prefect server")
    except Exception as error:  # noqa: BLE001  (a refusal, ownership.NotOwned, is not an Exception: it errors)
        unavailable("PostgreSQL (Prefect server database)", error)
    yield str(make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False))
    drop_prefect_database()


@pytest.fixture(scope="module")
def server(prefect_database, tmp_path_factory):
    """`prefect server start` as deploy/ runs it: PostgreSQL, basic auth, flow-run retention (here 2 hours,
    checked every 5 s so the test sees it work), no scheduler (no scheduled runs to race the test's runs)."""
    home = tmp_path_factory.mktemp("prefect_server")
    port = free_port()
    env = clean_env()
    env.update(PREFECT_HOME=str(home), PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_DATABASE_CONNECTION_URL=prefect_database,
               PREFECT_SERVER_API_AUTH_STRING=":".join(AUTH),
               PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
               PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED="events,flow_runs",
               PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD="7200",
               PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS="5")
    log = home / "server.log"
    proc = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log, home)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", proc, log, "prefect server")
        yield f"http://127.0.0.1:{port}/api", log
    finally:
        stop_process_group(proc)


class Hospital:
    def __init__(self, code: str, tz: str, api: str, root: Path):
        self.code, self.tz = code, tz
        self.dir = root / code
        self.dir.mkdir()
        self.khanza_db = f"{KHANZA_TEST_DB}_{code.replace('-', '_')}"
        self.website_url = new_website_store(f"sqlite:///{self.dir / 'website.db'}")
        self.health_port = free_port()
        cfg = base_settings()
        # What the hospital's EnvironmentFile holds (deploy/env/hospital.env.example).
        self.env = clean_env()
        self.env.update(
            PREFECT_API_URL=api, PREFECT_API_AUTH_STRING=":".join(AUTH), PREFECT_HOME=str(self.dir / "prefect"),
            HOSPITAL_CODE=code, HOSPITAL_TIMEZONE=tz,
            KHANZA_DB_HOST=cfg.khanza_db_host, KHANZA_DB_PORT=str(cfg.khanza_db_port),
            KHANZA_DB_USER=cfg.khanza_db_user, KHANZA_DB_PASSWORD=cfg.khanza_db_password.get_secret_value(),
            KHANZA_DB_NAME=self.khanza_db, WEBSITE_DB_URL=self.website_url,
            BOOKING_SAME_DAY_CUTOFF_HOUR="", KHANZA_RETRIES="0",
            PREFECT_WORKER_WEBSERVER_HOST="127.0.0.1", PREFECT_WORKER_WEBSERVER_PORT=str(self.health_port),
            PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="5")
        self.worker: subprocess.Popen | None = None

    @property
    def pool(self) -> str:
        return f"khanza-sync-{self.code}"

    def cli(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "khanza-sync"), *args], env={**self.env, **env}, cwd=self.dir,
                                capture_output=True, text=True, timeout=180)
        if check:
            assert result.returncode == 0, f"khanza-sync {' '.join(args)} ({self.code}):\n{result.stdout}\n{result.stderr}"
        return result

    def khanza_rows(self, sql: str, **params) -> list:
        engine = make_khanza_engine(base_settings(), database=self.khanza_db)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql).bindparams(bindparam("niks", expanding=True)), params))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def hospitals(server, tmp_path_factory):
    api, _ = server
    root = tmp_path_factory.mktemp("hospitals")
    made = []
    try:
        for code, tz in HOSPITALS.items():
            h = Hospital(code, tz, api, root)
            made.append(h)
            try:
                create_demo_database(base_settings(), h.khanza_db, purpose=f"multi-hospital test {code}")
            except Exception as error:  # noqa: BLE001
                unavailable("MariaDB (Khanza)", error)
        yield {h.code: h for h in made}
    finally:
        for h in made:
            if h.worker is not None:
                stop_process_group(h.worker)
        server_engine = make_khanza_engine(base_settings(), database="information_schema")
        with server_engine.begin() as conn:
            for h in made:
                if ownership.mariadb_owned(conn, h.khanza_db):
                    conn.exec_driver_sql(f"DROP DATABASE `{h.khanza_db}`")
        server_engine.dispose()


def api_client(api: str) -> httpx.Client:
    return httpx.Client(base_url=api, auth=AUTH, timeout=30)


def deployments_of(client: httpx.Client, code: str) -> dict[str, dict]:
    """A hospital's deployments as the server holds them, minus what a polling worker updates."""
    found = client.post("/deployments/filter", json={"deployments": {"tags": {"all_": [f"hospital:{code}"]}}})
    found.raise_for_status()
    out = {}
    for d in found.json():
        out[d["name"]] = {
            "id": d["id"], "updated": d["updated"], "work_pool_name": d["work_pool_name"], "tags": d["tags"],
            "entrypoint": d["entrypoint"], "description": d["description"],
            "limit": (d.get("global_concurrency_limit") or {}).get("limit"),
            "collision": (d.get("concurrency_options") or {}).get("collision_strategy"),
            "schedules": sorted((s["id"], s["slug"], s["active"], s["schedule"]["cron"], s["schedule"]["timezone"])
                                for s in d["schedules"]),
        }
    return out


def wait_for_run(client: httpx.Client, run_id: str, hospital: Hospital) -> dict:
    deadline = time.time() + RUN_DEADLINE_SECONDS
    while time.time() < deadline:
        run = client.get(f"/flow_runs/{run_id}").json()
        if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run
        time.sleep(1)
    pytest.fail(f"{hospital.code}'s run {run_id} did not finish in {RUN_DEADLINE_SECONDS} s; worker log:\n"
                + (hospital.dir / "worker.log").read_text()[-3000:])


def test_two_hospitals_on_one_server(server, hospitals):
    api, server_log = server
    a, b = hospitals["hosp-a"], hospitals["hosp-b"]
    client = api_client(api)

    # The API and UI are behind the auth string; only the health probe is open.
    assert httpx.post(f"{api}/deployments/filter", json={}, timeout=10).status_code == 401
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200

    # Deploy A, then B: A's deployments are untouched by B's deploy; a second deploy of A keeps every id.
    a.cli("deploy")
    a_before = deployments_of(client, a.code)
    assert sorted(a_before) == [f"{flow}-{a.code}" for flow in ("backfill-registrations", "follow-registrations",
                                                                 "publish-master-data", "reconcile-queue-numbers",
                                                                 "requeue-registrations", "resolve-patient-conflict",
                                                                 "sync-registrations")]
    b.cli("deploy")
    assert deployments_of(client, a.code) == a_before, "deploying hospital B changed hospital A's deployments"
    b_deps = deployments_of(client, b.code)
    a.cli("deploy")
    a_again = deployments_of(client, a.code)
    assert {n: d["id"] for n, d in a_again.items()} == {n: d["id"] for n, d in a_before.items()}
    assert {n: d["schedules"] for n, d in a_again.items()} == {n: d["schedules"] for n, d in a_before.items()}

    # Same code, another Khanza database (two hospitals given one code by mistake): refused, nothing changed.
    refused = a.cli("deploy", check=False, KHANZA_DB_NAME=b.khanza_db)
    assert refused.returncode == 2 and "another hospital's code" in refused.stderr, refused.stderr
    assert {n: d["updated"] for n, d in deployments_of(client, a.code).items()} == \
        {n: d["updated"] for n, d in a_again.items()}

    # Each hospital: its own pool, its own write limit, schedules in its own time zone, limit 1 per deployment.
    for h, deps in ((a, a_again), (b, b_deps)):
        assert len(deps) == len(JOBS)
        for name, d in deps.items():
            assert d["work_pool_name"] == h.pool, name
            assert f"hospital:{h.code}" in d["tags"] and d["limit"] == 1, name
            assert {s[4] for s in d["schedules"]} <= {h.tz}, name
        assert {s[3] for s in deps[f"sync-registrations-{h.code}"]["schedules"]} == {"*/15 5-20 * * *",
                                                                                      "0 0-4,21-23 * * *"}
        assert {s[4] for s in deps[f"sync-registrations-{h.code}"]["schedules"]} == {h.tz}
        assert deps[f"backfill-registrations-{h.code}"]["schedules"] == []
        assert client.post("/v2/concurrency_limits/filter", json={}).status_code == 200
        limit = client.get(f"/v2/concurrency_limits/khanza-writes-{h.code}")
        assert limit.status_code == 200 and limit.json()["limit"] == 1

    # Registrations in each website store: A gets 2, B gets 3 (NIKs differ).
    regs = {}
    for h, n in ((a, 2), (b, 3)):
        visit = datetime.now(ZoneInfo(h.tz)).date() + timedelta(days=1)
        regs[h.code] = [registration(visit_date=visit) for _ in range(n)]
        insert_registrations(h.website_url, regs[h.code])

    # A worker per hospital, with that hospital's environment only, health check on.
    for h in (a, b):
        h.worker = start([str(BIN / "khanza-sync"), "worker"], h.env, h.dir / "worker.log", h.dir)
    for h in (a, b):
        wait_for(f"http://127.0.0.1:{h.health_port}/health", h.worker, h.dir / "worker.log", f"{h.code}'s worker",
                 timeout=60)

    # One sync run of each hospital's deployment, through the server and its workers.
    runs = {}
    for h in (a, b):
        dep_id = a_again[f"sync-registrations-{a.code}"]["id"] if h is a else b_deps[f"sync-registrations-{b.code}"]["id"]
        created = client.post(f"/deployments/{dep_id}/create_flow_run", json={})
        assert created.status_code == 201, created.text
        runs[h.code] = created.json()["id"]
    finished = {h.code: wait_for_run(client, runs[h.code], h) for h in (a, b)}

    for h in (a, b):
        run = finished[h.code]
        assert run["state"]["type"] == "COMPLETED", (h.code, run["state"], (h.dir / "worker.log").read_text()[-3000:])
        assert run["work_pool_name"] == h.pool
        niks = {r["nik"] for r in regs[h.code]}
        every_nik = sorted({r["nik"] for rs in regs.values() for r in rs})
        # Khanza: this hospital's patients and visits, none of the other hospital's.
        patients = {row[0] for row in h.khanza_rows("SELECT no_ktp FROM pasien WHERE no_ktp IN :niks",
                                                    niks=every_nik)}
        assert patients == niks, h.code
        visits = h.khanza_rows("SELECT r.jam_reg FROM reg_periksa r JOIN pasien p USING (no_rkm_medis) "
                               "WHERE p.no_ktp IN :niks", niks=every_nik)
        assert len(visits) == len(niks), h.code
        # The run used its hospital's clock: jam_reg is now in HOSPITAL_TIMEZONE (A and B are 2 hours apart).
        now = datetime.now(ZoneInfo(h.tz))
        for (jam_reg,) in visits:
            minutes = jam_reg.total_seconds() / 60 if isinstance(jam_reg, timedelta) else jam_reg.hour * 60 + jam_reg.minute
            assert min(abs(now.hour * 60 + now.minute - minutes), 1440 - abs(now.hour * 60 + now.minute - minutes)) <= 10, \
                (h.code, jam_reg, now)
        # Website: every row of this store synced with Khanza's numbers.
        rows = website_rows(h.website_url)
        assert set(rows.index) == {r["id"] for r in regs[h.code]}
        assert (rows["status"] == "synced").all(), rows[["status", "error_code"]]
        assert rows["no_rawat"].notna().all()

    # Retention: a finished flow run whose end lies past the retention period is deleted by the server's vacuum.
    old = client.post("/flow_runs/", json={"flow_id": client.get(f"/deployments/{b_deps[f'sync-registrations-{b.code}']['id']}").json()["flow_id"],
                                           "name": "old-finished-run", "state": {"type": "COMPLETED", "name": "Completed"}})
    assert old.status_code in (200, 201), old.text
    old_id = old.json()["id"]
    pg = create_engine(server_db_sync_url(), isolation_level="AUTOCOMMIT")
    with pg.connect() as conn:
        conn.execute(text("UPDATE flow_run SET end_time = now() - interval '40 days', "
                          "state_type = 'COMPLETED' WHERE id = :id"), {"id": old_id})
    pg.dispose()
    deadline = time.time() + 60
    while client.get(f"/flow_runs/{old_id}").status_code != 404:
        if time.time() > deadline:
            pytest.fail("the database vacuum did not delete a flow run past retention:\n" + server_log.read_text()[-3000:])
        time.sleep(1)
    # ...and runs inside the retention period stay.
    for h in (a, b):
        assert client.get(f"/flow_runs/{runs[h.code]}").status_code == 200


def server_db_sync_url() -> str:
    return make_url(PG_ADMIN_URL).set(database=PREFECT_DB).render_as_string(hide_password=False)
