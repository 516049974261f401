"""An installation of the previous release, upgraded in place to this checkout, keeps its queue.

The previous release's code (the newest CHANGELOG release with a recorded commit other than this version; until a
second release exists, PRE_RELEASE: the last commit before versioned schemas) is taken from git into a fresh
folder and installed into a fresh venv. It sets up Khanza (private MariaDB) and a website (private PostgreSQL),
deploys to a real Prefect server, and runs until the website holds synced, rejected, deferred and pending
registrations, a staff decision, a claimed batch that never finished, and a claimed batch Khanza committed but
the website never heard of. Then the upgrade as the README gives it: `pip install` this checkout into the same
venv, `khanza-sync setup`, `setup --website`, `deploy`, and a sync. Every registration ends exactly once in
Khanza, no queue number changes, the audit is intact, and a second `setup` changes nothing.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text

from khanza import migrations
from khanza.db import make_engine as make_khanza_engine
from khanza.setup import DEMO_DATA, FIXTURE_SCHEMA, recreate_database
from khanza_sync.settings import PROJECT_ROOT
from website import contract
from tests.support import (
    KHANZA_TEST_DB, base_settings, free_port, insert_registrations, local_prefect_server, ownership, registration,
)

PRE_RELEASE = "7671d59"  # main before khanza_sync_schema and the website contract version existed
UPGRADE_DB = f"{KHANZA_TEST_DB}_upgrade"  # KHANZA_TEST_DB is already per xdist worker


def previous_release() -> str:
    """The commit of the release before this checkout's version, as CHANGELOG.md records it."""
    import tomllib

    current = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    for section in re.split(r"^## ", changelog, flags=re.M)[1:]:  # newest first
        version = re.match(r"\d+\.\d+\.\d+", section)
        commit = re.search(r"^Commit: ([0-9a-f]{7,40})\b", section, re.M)
        if version and commit and version.group(0) != current:
            return commit.group(1)
    return PRE_RELEASE


def git(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, check=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def old_release(tmp_path_factory):
    """The previous release's files (git archive: the repository is not changed) and a fresh venv with it."""
    root = tmp_path_factory.mktemp("upgrade")
    commit = previous_release()
    archive = git("archive", "--format=tar", commit).stdout
    code = root / "khanza-sync"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(code, filter="data")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip(venv, "-r", str(code / "requirements.txt"), "-e", str(code))
    return code, venv


def pip(venv: Path, *args: str) -> None:
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    with local_prefect_server(tmp_path_factory.mktemp("prefect_home")) as env:
        yield env


class Installation:
    """One hospital's installation: its environment, run with whichever release the venv holds."""

    def __init__(self, venv: Path, code: Path, server_env: dict, website_url: str, workdir: Path):
        cfg = base_settings()
        self.venv, self.workdir = venv, workdir
        self.env = {k: v for k, v in server_env.items() if not k.startswith(("KHANZA_", "WEBSITE_", "MAPPINGS_"))}
        self.env.update(
            KHANZA_DB_HOST=cfg.khanza_db_host, KHANZA_DB_PORT=str(cfg.khanza_db_port), KHANZA_DB_USER=cfg.khanza_db_user,
            KHANZA_DB_PASSWORD=cfg.khanza_db_password.get_secret_value(), KHANZA_DB_NAME=UPGRADE_DB,
            WEBSITE_DB_URL=website_url, MAPPINGS_DIR=str(code / "mappings"), HOSPITAL_CODE="upgrade",
            KHANZA_CONNECT_TIMEOUT="3", KHANZA_RETRIES="0", BOOKING_SAME_DAY_CUTOFF_HOUR="", ALERT_URLS="",
            VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}:{os.environ['PATH']}")

    def run(self, *args: str, ok: bool = True, **env: str) -> str:
        done = subprocess.run([str(self.venv / "bin" / "khanza-sync"), *args], env={**self.env, **env},
                              cwd=self.workdir, capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        if ok:
            assert done.returncode == 0, f"khanza-sync {' '.join(args)}:\n{output[-4000:]}"
        return output

    def python(self, script: str, *args: str) -> str:
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", script, *args], env=self.env,
                              cwd=self.workdir, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout


# Run with the old release's own modules: a batch claimed and loaded into Khanza (ledger written, Khanza
# committed), then the process ends before the website hears of it, as a crash would leave it.
LOADED_NOT_WRITTEN_BACK = """
import sys
from datetime import datetime, timezone
import data_checks, mappings
from khanza import masterdata
from khanza.db import make_engine
from khanza.registration import load_batch
from khanza_sync.settings import load_settings
from website import store

s = load_settings()
web, khanza = store.make_engine(s.website_db_url.get_secret_value()), make_engine(s)
now = datetime.now(timezone.utc).replace(tzinfo=None)
batch = store.claim(web, 10, now, 600, store._t.c.id.in_(sys.argv[1:]))
assert sorted(batch["id"]) == sorted(sys.argv[1:]), list(batch["id"])
if len(sys.argv) > 1 and sys.argv[1].startswith("loaded"):
    valid, invalid, _ = data_checks.check(batch, s, datetime.now(s.tz).replace(tzinfo=None))
    with khanza.connect() as conn:
        md = masterdata.load(conn)
    codes = mappings.KhanzaCodes(poli=frozenset(md.active_poli), dokter=frozenset(md.active_dokter),
                                 penjab=frozenset(md.active_penjab))
    mapped, unmapped = mappings.apply(valid, mappings.load(s.mappings_dir), codes)
    out = load_batch(khanza, mapped, s)
    assert set(out["outcome"]) == {"created"}, out.to_dict("records")
print("claimed", len(batch))
"""


def website_rows(url: str) -> dict[str, dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {r["id"]: dict(r) for r in conn.execute(text(
                "SELECT id, status, error_code, no_rkm_medis, no_rawat, no_reg FROM online_registrations")).mappings()}
    finally:
        engine.dispose()


def khanza_state(engine) -> dict:
    with engine.connect() as conn:
        return {
            "ledger": {r["registration_id"]: (r["no_rkm_medis"], r["no_rawat"], r["no_reg"]) for r in conn.execute(
                text("SELECT registration_id, no_rkm_medis, no_rawat, no_reg FROM khanza_sync_ledger")).mappings()},
            "visits": sorted(tuple(r) for r in conn.execute(text(
                "SELECT no_rawat, no_rkm_medis, kd_dokter, kd_poli, tgl_registrasi, no_reg FROM reg_periksa"))),
            "decisions": [tuple(r) for r in conn.execute(text(
                "SELECT id, registration_id, action, decided_by, reason, decided_at FROM khanza_sync_decisions "
                "ORDER BY id"))],
        }


def test_upgrade_in_place_keeps_the_queue(old_release, prefect_server, postgres_url, tmp_path):
    code, venv = old_release
    settings = base_settings(khanza_db_name=UPGRADE_DB)
    recreate_database(settings, UPGRADE_DB, FIXTURE_SCHEMA, DEMO_DATA, purpose="upgrade test Khanza database")
    khanza = make_khanza_engine(settings)
    with khanza.begin() as conn:  # our own database: the old release makes its own tables below
        for table in ("khanza_sync_schema", "khanza_sync_decisions", "khanza_sync_ledger"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    website_url = ownership.fresh_website_store(postgres_url, "upgrade test website")
    web = create_engine(website_url)
    with web.begin() as conn:  # the old release's setup --website makes it
        conn.exec_driver_sql("DROP TABLE online_registrations")
        conn.exec_driver_sql("DROP TABLE IF EXISTS khanza_sync_contract")
    web.dispose()
    hospital = Installation(venv, code, prefect_server, website_url, tmp_path)

    # ---- the previous release at work
    hospital.run("setup", "--website")
    hospital.run("deploy")
    insert_registrations(website_url, [registration(id=i) for i in ("synced-1", "synced-2", "staff-1")]
                         + [registration(id="rejected-1", nik="12345")])
    with web.begin() as conn:
        conn.execute(text("UPDATE online_registrations SET nik = '123' WHERE id = 'staff-1'"))
    hospital.run("sync")
    with web.begin() as conn:  # staff corrected the NIK, then re-queued it: a decision in the audit
        conn.execute(text("UPDATE online_registrations SET nik = :n WHERE id = 'staff-1'"),
                     {"n": registration()["nik"]})
    hospital.run("requeue", "staff-1", "--by", "rina", "--reason", "NIK corrected")
    insert_registrations(website_url, [registration(id=i) for i in ("deferred-1", "deferred-2")])
    closed = str(free_port())
    hospital.run("sync", ok=False, KHANZA_DB_PORT=closed)  # Khanza unreachable: both deferred
    insert_registrations(website_url, [registration(id=i) for i in ("loaded-1", "loaded-2", "claimed-1", "pending-1")])
    hospital.python(LOADED_NOT_WRITTEN_BACK, "loaded-1", "loaded-2")  # Khanza committed, website not told
    hospital.python(LOADED_NOT_WRITTEN_BACK, "claimed-1")  # claimed, then nothing

    before = website_rows(website_url)
    assert {i: r["status"] for i, r in before.items()} == {
        "synced-1": "synced", "synced-2": "synced", "staff-1": "synced", "rejected-1": "rejected",
        "deferred-1": "pending", "deferred-2": "pending", "loaded-1": "pending", "loaded-2": "pending",
        "claimed-1": "pending", "pending-1": "pending"}
    assert before["deferred-1"]["error_code"] == "KHANZA_UNREACHABLE"
    old_khanza = khanza_state(khanza)
    assert set(old_khanza["ledger"]) == {"synced-1", "synced-2", "staff-1", "loaded-1", "loaded-2"}
    assert [d[1:5] for d in old_khanza["decisions"]] == [("staff-1", "requeue", "rina", "NIK corrected")]
    deployments = {d["name"]: d["id"] for d in httpx.post(f"{prefect_server['PREFECT_API_URL']}/deployments/filter",
                                                          json={}, timeout=30).json()}
    assert "sync-registrations-upgrade" in deployments

    # ---- the upgrade, as the README gives it
    pip(venv, "-r", str(PROJECT_ROOT / "requirements.txt"), "-e", str(PROJECT_ROOT))
    hospital.env["MAPPINGS_DIR"] = str(PROJECT_ROOT / "mappings")
    version = hospital.run("--version").strip()
    assert version != "khanza-sync unknown" and version.startswith("khanza-sync ")
    refused = hospital.run("sync", ok=False)  # before setup: one line naming it, nothing touched
    assert "khanza-sync setup" in refused and "Traceback" not in refused
    assert website_rows(website_url) == before
    hospital.run("setup")
    upgraded = tables(khanza)
    assert upgraded["khanza_sync_schema"] == [("khanza", migrations.CURRENT)]
    hospital.run("setup")  # a second setup changes nothing
    assert tables(khanza) == upgraded
    # The website table: one the previous release's setup made (and recorded) is brought to this contract in place;
    # an older one it did not record stays as it is (the new columns are optional). Either way a second run is a no-op.
    hospital.run("setup", "--website")
    assert "nothing to change" in hospital.run("setup", "--website")
    web = create_engine(website_url)
    try:
        present = {c["name"] for c in inspect(web).get_columns("online_registrations")}
        marked = inspect(web).has_table("khanza_sync_contract")
    finally:
        web.dispose()
    assert contract.found_version(present) == (contract.CURRENT if marked else 1)
    hospital.run("deploy")
    after_deploy = {d["name"]: d["id"] for d in httpx.post(f"{prefect_server['PREFECT_API_URL']}/deployments/filter",
                                                           json={}, timeout=30).json()}
    assert after_deploy == deployments  # the same deployments, updated in place

    # time passes: the deferral and both claims' leases run out
    web = create_engine(website_url)
    with web.begin() as conn:
        conn.execute(text("UPDATE online_registrations SET next_attempt_at = :t WHERE status = 'pending'"),
                     {"t": datetime.now(timezone.utc).replace(tzinfo=None)})
    web.dispose()
    hospital.run("sync")

    after = website_rows(website_url)
    new_khanza = khanza_state(khanza)
    assert {i for i, r in after.items() if r["status"] == "synced"} == set(before) - {"rejected-1"}
    assert after["rejected-1"]["status"] == "rejected"
    for i, row in before.items():  # numbers given before the upgrade never change
        if row["status"] == "synced":
            assert after[i] == row
    assert {i: v for i, v in new_khanza["ledger"].items() if i in old_khanza["ledger"]} == old_khanza["ledger"]
    for i in ("loaded-1", "loaded-2"):  # committed before the upgrade: told now, with Khanza's numbers
        assert (after[i]["no_rkm_medis"], after[i]["no_rawat"], after[i]["no_reg"]) == old_khanza["ledger"][i]
    assert set(new_khanza["ledger"]) == set(after) - {"rejected-1"}  # each registration once in Khanza
    rawats = [v[0] for v in new_khanza["visits"]]
    assert len(rawats) == len(set(rawats)) == len(new_khanza["ledger"])
    numbers = [(v[2], v[4], v[5]) for v in new_khanza["visits"]]
    assert len(numbers) == len(set(numbers))  # no queue number shared
    assert new_khanza["decisions"] == old_khanza["decisions"]  # the audit intact
    assert tables(khanza)["khanza_sync_schema"] == upgraded["khanza_sync_schema"]
    khanza.dispose()


def tables(engine) -> dict[str, list]:
    """Khanza Sync's own tables in Khanza: their columns and rows (the schema row without its time)."""
    with engine.connect() as conn:
        found = {"columns": sorted(tuple(r) for r in conn.execute(text(
            "SELECT table_name, column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name LIKE 'khanza\\_sync\\_%'")))}
        found["khanza_sync_schema"] = [tuple(r) for r in conn.execute(text(
            "SELECT component, version FROM khanza_sync_schema"))]
        for table in ("khanza_sync_ledger", "khanza_sync_decisions"):
            found[table] = sorted(tuple(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {table}")))
    return found
