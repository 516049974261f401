"""Plain helpers shared by the test folders (imported as `tests.support`): settings for the test
databases, fake registrations, reading and writing the website table.

The tests run on the project's own MariaDB and PostgreSQL (khanza_sync/localdb.py, started by ./dev test, or
on demand by the fixtures), never the machine's servers: KHANZA_DB_HOST/PORT/USER/PASSWORD and
TEST_POSTGRES_ADMIN_URL default to the private servers' coordinates (the environment may override them).
Databases the tests drop or empty must carry Khanza Sync's ownership marker (khanza_sync/ownership.py).

A missing service skips locally but fails under CI=true: CI must never pass by skipping.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
from sqlalchemy import Engine, insert
from sqlalchemy import text as sql_text

from khanza_sync import localdb, ownership
from khanza_sync.settings import PROJECT_ROOT, Settings
from website import store
from website.schema import registrations

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PRIVATE = localdb.coordinates()
# Flows and helpers read the Khanza connection from the environment: the private server unless overridden.
for _key, _value in PRIVATE.client_env().items():
    os.environ.setdefault(_key, _value)
# Under pytest-xdist (./dev test runs the whole suite on 2 workers) each worker gets its own test databases:
# "<name>_gw0", "<name>_gw1". Written back to the environment so code reading it (and subprocesses, which
# inherit PYTEST_XDIST_WORKER) see the same names; a name already suffixed is kept.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def per_worker(name: str) -> str:
    """`name` with this xdist worker's suffix ("_gw0"...); unchanged outside xdist. Any database, account or
    shared path a test names must go through this (or derive from KHANZA_TEST_DB / PG_TEST_DB)."""
    if not XDIST_WORKER or name.endswith(f"_{XDIST_WORKER}"):
        return name
    return f"{name}_{XDIST_WORKER}"


KHANZA_TEST_DB = per_worker(os.environ.get("KHANZA_TEST_DB", "khanza_sync_test"))
PG_ADMIN_URL = os.environ["TEST_POSTGRES_ADMIN_URL"]
PG_TEST_DB = per_worker(os.environ.get("PG_TEST_DB", "khanza_sync_test"))
if XDIST_WORKER:
    os.environ["KHANZA_TEST_DB"], os.environ["PG_TEST_DB"] = KHANZA_TEST_DB, PG_TEST_DB
# The website on MySQL/MariaDB: a second database on the Khanza test server (the private MariaDB), utf8mb4.
MYSQL_WEB_TEST_DB = KHANZA_TEST_DB + "_web"


def mysql_server_url(database: str = "") -> str:
    """A PyMySQL URL of the test MariaDB server (KHANZA_DB_HOST/PORT/USER/PASSWORD), optionally of `database`."""
    from sqlalchemy import URL

    return URL.create("mysql+pymysql", username=os.environ["KHANZA_DB_USER"],
                      password=os.environ.get("KHANZA_DB_PASSWORD") or None, host=os.environ["KHANZA_DB_HOST"],
                      port=int(os.environ["KHANZA_DB_PORT"]), database=database or None
                      ).render_as_string(hide_password=False)
KHANZA_REFERENCE = Path(os.environ.get("KHANZA_REFERENCE_DIR", PROJECT_ROOT.parent / "shared" / "khanza"))
TRANSACTIONAL_TABLES = ["khanza_sync_ledger", "khanza_sync_decisions", "booking_registrasi", "reg_periksa", "pasien", "jadwal",
                        "set_no_rkm_medis", "set_urut_no_rkm_medis", "dokter", "poliklinik", "penjab",
                        "spesialis", "perusahaan_pasien", "suku_bangsa", "bahasa_pasien", "cacat_fisik",
                        "kelurahan", "kecamatan", "kabupaten", "propinsi"]


def unavailable(what: str, error: Exception):
    message = f"{what} is not available: {type(error).__name__}: {error}"
    if CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def khanza_reference() -> tuple[Path, Path]:
    """Khanza's real schema and its sample rows (schema.sql, seed_sample.sql in KHANZA_REFERENCE_DIR); a test
    without them skips, or fails under CI=true."""
    schema, seed = KHANZA_REFERENCE / "schema.sql", KHANZA_REFERENCE / "seed_sample.sql"
    if not schema.exists() or not seed.exists():
        message = f"Khanza reference schema not found at {KHANZA_REFERENCE}"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return schema, seed


def stop_process_group(proc: subprocess.Popen) -> None:
    """End a server the test started in its own session: SIGTERM to its process group, SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def local_prefect_server(home: Path, **env: str):
    """A real `prefect server` of the test's own (SQLite in `home`, a free port, no UI) for the with-block. Yields
    the environment that points Prefect clients at it (this process's, without PREFECT_* settings, plus `env`)."""
    import sys

    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    server_env.update(PREFECT_HOME=str(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api", DO_NOT_TRACK="1",
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false", **env)
    with open(home / "server.log", "w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
                                 "127.0.0.1", "--port", str(port)], env=server_env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(f"http://127.0.0.1:{port}/api/health", proc, home / "server.log", "prefect server")
            yield server_env
        finally:
            stop_process_group(proc)


def wait_for(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 180) -> None:
    """Wait until `url` answers 200 (a server the test started); fail with the end of its log if the process
    exits or `timeout` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"{what} did not come up:\n" + log.read_text()[-3000:])
        time.sleep(0.5)


def khanza_reference_db(name: str) -> Engine:
    """A fresh MariaDB database `name` with Khanza's real schema and sample rows (khanza_reference())."""
    from khanza.db import make_engine
    from khanza.setup import recreate_database

    schema, seed = khanza_reference()
    settings = base_settings()
    recreate_database(settings, name, schema, seed)
    return make_engine(settings, database=name)


def rows(engine: Engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sql_text(sql), params).mappings()]


def count(engine: Engine, sql: str, **params) -> int:
    """The column `n` of the first row of `sql` (SELECT COUNT(*) n ...)."""
    return rows(engine, sql, **params)[0]["n"]


def base_settings(**overrides) -> Settings:
    values = dict(khanza_db_host=os.environ["KHANZA_DB_HOST"],
                  khanza_db_port=int(os.environ["KHANZA_DB_PORT"]),
                  khanza_db_user=os.environ["KHANZA_DB_USER"],
                  khanza_db_password=os.environ.get("KHANZA_DB_PASSWORD", ""),
                  khanza_db_name=KHANZA_TEST_DB, khanza_retries=1, khanza_retry_delay_seconds=0.1,
                  booking_same_day_cutoff_hour=None, _env_file=None)
    values.update(overrides)
    return Settings(**values)


def hospital_today() -> date:
    return datetime.now(ZoneInfo("Asia/Jakarta")).date()


def registration(**overrides) -> dict:
    """A valid website registration for tomorrow at the internal-medicine clinic (fake data)."""
    base = {
        "id": f"web-{uuid.uuid4().hex[:12]}",
        "created_at": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5),
        "nik": "3310" + str(uuid.uuid4().int)[:12],
        "full_name": "Budi Santoso",
        "birth_date": date(1985, 3, 14),
        "gender": "Laki-laki",
        "phone": "0812-3456-7890",
        "address": "Jl. Pemuda No. 5, Klaten",
        "birth_place": "Klaten",
        "mother_name": "Sri Wahyuni",
        "email": "budi@example.com",
        "poliklinik": "penyakit-dalam",
        "doctor": "dr-ahmad-sppd",
        "visit_date": hospital_today() + timedelta(days=1),
        "payment": "umum",
        "bpjs_number": None,
        "local_queue_number": None,
    }
    base.update(overrides)
    return base


def loader_registration(**fields) -> dict:
    """A registration as khanza.registration.load_batch takes it (slugs already mapped to Khanza codes; fake
    data): a fresh id and NIK and the contact fields the loader tests share, then `fields` (which override)."""
    base = dict(id=f"web-{uuid.uuid4().hex[:10]}", nik="3310" + str(uuid.uuid4().int)[:12], phone="081234567890",
                address="Jl. Pemuda No. 5", birth_place="Klaten", mother_name="Sri", email="-", kd_pj="A09",
                payment="umum", bpjs_number=None, attempts=1)
    base.update(fields)
    return base


def website_rows(url: str, ids: list[str] | None = None) -> pd.DataFrame:
    """The website table (or the rows `ids`) as a DataFrame indexed by registration id."""
    engine = store.make_engine(url)
    try:
        return store.fetch_rows(engine, ids).set_index("id")
    finally:
        engine.dispose()


def ensure_mysql_website_database(name: str = MYSQL_WEB_TEST_DB) -> str:
    """The MariaDB website test database `name` (created and marked when absent, refused when it exists unmarked:
    khanza_sync/ownership.py). Returns its URL."""
    from sqlalchemy import create_engine

    engine = create_engine(mysql_server_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            ownership.ensure_mariadb_database(conn, name, "test website database (MySQL/MariaDB)")
    finally:
        engine.dispose()
    return mysql_server_url(name)


def new_website_store(url: str, *, drop: bool = False) -> str:
    """The website tables at `url` from the shipped DDL, marked as Khanza Sync's (`drop`: a fresh store,
    refused unless Khanza Sync created the database: khanza_sync/ownership.py)."""
    if drop:
        return ownership.fresh_website_store(url, "test website store")
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        ownership.mark_website_store(url, "test website store")
    engine = store.make_engine(url)
    try:
        store.create_schema(engine)
    finally:
        engine.dispose()
    return url


def insert_registrations(url: str, rows: list[dict]) -> None:
    engine = store.make_engine(url)
    with engine.begin() as conn:
        for row in rows:  # one statement each: rows may name different columns
            conn.execute(insert(registrations).values(**row))
    engine.dispose()


def check_and_map(batch: pd.DataFrame, settings: Settings, khanza: Engine, now_local: datetime | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the sync flow does between extract and load, as plain functions (no Prefect): the data checks,
    then the slugs mapped against Khanza's active master data. Returns (mapped, invalid, unmapped)."""
    import data_checks
    import mappings
    from khanza import masterdata

    if now_local is None:
        now_local = datetime.now(settings.tz).replace(tzinfo=None)
    valid, invalid, _ = data_checks.check(batch, settings, now_local)
    with khanza.connect() as conn:
        md = masterdata.load(conn)
    codes = mappings.KhanzaCodes(poli=frozenset(md.active_poli), dokter=frozenset(md.active_dokter),
                                 penjab=frozenset(md.active_penjab))
    mapped, unmapped = mappings.apply(valid, mappings.load(settings.mappings_dir), codes)
    return mapped, invalid, unmapped


# ---------------------------------------------------------------- flows on the real Prefect engine


def set_flow_env(monkeypatch, **env) -> None:
    """Point the flows at other settings: they read them from the environment once per run, as in
    production. Pools made for the previous settings are closed."""
    from tasks.resources import dispose_all

    for key, value in env.items():
        monkeypatch.setenv(key.upper(), str(value))
    dispose_all()


def flows_with_mappings(monkeypatch, mappings_dir: Path, khanza_db: str, website_url: str, *, poliklinik: str,
                        dokter: str) -> None:
    """The flows on the Khanza database `khanza_db` and `website_url`, no retries, no same-day cutoff, mapping
    the website's slugs with files written to `mappings_dir` (`poliklinik`, `dokter`: those files' text;
    payers: umum and asuransi A09, bpjs BPJ)."""
    (mappings_dir / "poliklinik.yaml").write_text(poliklinik)
    (mappings_dir / "dokter.yaml").write_text(dokter)
    (mappings_dir / "penjab.yaml").write_text("umum: A09\nbpjs: BPJ\nasuransi: A09\n")
    set_flow_env(monkeypatch, KHANZA_DB_NAME=khanza_db, WEBSITE_DB_URL=website_url, MAPPINGS_DIR=mappings_dir,
                 KHANZA_RETRIES=0, BOOKING_SAME_DAY_CUTOFF_HOUR="")


def flows_as(monkeypatch, tmp_path: Path, website_url: str, **env):
    """For a fixture to `yield from`: the flows on the test Khanza database (as root unless `env` names
    another user) and `website_url`, no retries, run from `tmp_path` (no stray .env). Yields
    `website_url`; closes the flows' pools afterwards."""
    from tasks.resources import dispose_all

    cfg = base_settings()
    set_flow_env(monkeypatch, **{
        "KHANZA_DB_HOST": cfg.khanza_db_host, "KHANZA_DB_PORT": cfg.khanza_db_port,
        "KHANZA_DB_USER": cfg.khanza_db_user, "KHANZA_DB_PASSWORD": cfg.khanza_db_password.get_secret_value(),
        "KHANZA_DB_NAME": cfg.khanza_db_name, "WEBSITE_DB_URL": website_url, "KHANZA_RETRIES": 0,
        "KHANZA_RETRY_DELAY_SECONDS": 0, "BOOKING_SAME_DAY_CUTOFF_HOUR": 23, **env})
    monkeypatch.chdir(tmp_path)
    yield website_url
    dispose_all()


def completed(flow, **params):
    """Run `flow` on the real Prefect engine and assert it completed; returns its final state."""
    state = flow(return_state=True, **params)
    assert state.is_completed(), state.message
    return state


def flow_run_artifacts(*states) -> dict:
    """The artifacts the flow runs of `states` published, by key."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[s.state_details.flow_run_id for s in states])))
    return {a.key: a for a in asyncio.run(read())}


def extra_mappings(monkeypatch, tmp_path: Path, **lines: str) -> Path:
    """A copy of the project's mapping files with `lines` appended (dokter="dr-x: D001\\n" adds to
    dokter.yaml), used by the flows from now on (MAPPINGS_DIR)."""
    maps = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", maps)
    for name, text in lines.items():
        with open(maps / f"{name}.yaml", "a") as f:
            f.write(text)
    monkeypatch.setenv("MAPPINGS_DIR", str(maps))
    return maps
