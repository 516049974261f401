"""The production recipe in deploy/: systemd units (checked by `systemd-analyze verify` after deploy/install.sh
installs them, and key by key), the environment files install.sh creates (mode 0600, valid Prefect and Khanza
Sync settings), and the Docker Compose file (its structure; `docker compose config` too where the Compose
plugin exists: this machine kind has only the docker client, without Compose or an engine).

`systemd-analyze` is part of the machine (Debian's systemd package); where it is missing the verify test skips
locally and fails under CI=true, as every missing service does.
"""
from __future__ import annotations

import configparser
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from khanza_sync.settings import PROJECT_ROOT, Settings
from tests.support import unavailable

DEPLOY = PROJECT_ROOT / "deploy"
INSTALL = DEPLOY / "install.sh"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted((DEPLOY / "systemd").glob("*.timer"))


def install(tmp_path: Path, *args: str, check: bool = True, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "ETC_DIR": str(tmp_path / "etc"), "UNIT_DIR": str(tmp_path / "units"), "SYSTEMCTL": "",
               "ETC_DIR_OVERRIDE": str(tmp_path / "compose-env"),
               "CREATE_USERS": "0", **env}  # real Unix users: tests/deploy/test_isolation.py (and removes them)
    result = subprocess.run(["bash", str(INSTALL), *args], env=environ, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"install.sh {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


# ---------------------------------------------------------------- systemd


def test_units_declare_env_file_restart_and_health(tmp_path):
    names = {p.name for p in UNITS}
    assert names == {"prefect-server.service", "khanza-sync-worker@.service", "khanza-sync-worker-health@.service",
                     "khanza-sync-worker-health@.timer", "khanza-sync-runner@.service"}
    for path in UNITS:
        u = unit(path)
        if path.suffix == ".timer":
            assert u["Timer"]["OnUnitActiveSec"] and u["Install"]["WantedBy"] == "timers.target"
            continue
        service = u["Service"]
        assert service["EnvironmentFile"].startswith("/etc/khanza-sync/"), path.name
        assert service["ExecStart"].split()[0].startswith(("/opt/khanza-sync/.venv/bin/", "/bin/sh")), path.name
    server = unit(DEPLOY / "systemd" / "prefect-server.service")["Service"]
    assert server["EnvironmentFile"] == "/etc/khanza-sync/prefect-server.env"
    assert server["ExecStart"] == "/opt/khanza-sync/.venv/bin/prefect server start"
    worker = unit(DEPLOY / "systemd" / "khanza-sync-worker@.service")
    assert worker["Service"]["EnvironmentFile"] == "/etc/khanza-sync/%i.env"  # the hospital's own file, nothing else
    assert worker["Service"]["ExecStart"] == "/opt/khanza-sync/.venv/bin/khanza-sync worker"  # health check on
    assert worker["Service"]["WorkingDirectory"] == "/var/lib/khanza-sync/%i"  # no shared .env where runs start
    for u in (server, worker["Service"]):
        assert u["Restart"] == "on-failure" and int(u["RestartSec"]) > 0
    # one Unix user per hospital, another for the server (tests/deploy/test_isolation.py shows what it keeps apart)
    assert (worker["Service"]["User"], worker["Service"]["Group"]) == ("khanza-sync-%i", "khanza-sync-%i")
    assert (server["User"], server["Group"]) == ("khanza-sync-server", "khanza-sync-server")
    assert worker["Service"]["StateDirectoryMode"] == server["StateDirectoryMode"] == "0700"
    assert "prefect-server.service" in worker["Unit"]["After"]
    # The runner (recommended): the same hospital file, folder, user and restart policy as the worker; on SIGTERM
    # it gives running runs --stop-seconds (30) and marks the rest, inside systemd's stop timeout.
    runner = unit(DEPLOY / "systemd" / "khanza-sync-runner@.service")
    for key in ("EnvironmentFile", "WorkingDirectory", "User", "Group", "ProtectSystem", "ReadWritePaths"):
        assert runner["Service"][key] == worker["Service"][key], key
    # It recycles itself (exit 0 after --max-runs, once its runs ended) and systemd starts a fresh one.
    assert runner["Service"]["ExecStart"] == "/opt/khanza-sync/.venv/bin/khanza-sync runner --max-runs 300"
    assert runner["Service"]["Restart"] == "always" and int(runner["Service"]["RestartSec"]) > 0
    assert int(runner["Service"]["TimeoutStopSec"]) > 30 + 5
    assert "prefect-server.service" in runner["Unit"]["After"]
    health = unit(DEPLOY / "systemd" / "khanza-sync-worker-health@.service")["Service"]
    assert "/health" in health["ExecStart"] and "systemctl restart khanza-sync-worker@%i" in health["ExecStart"]


def test_units_pass_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        unavailable("systemd-analyze (Debian package systemd)", FileNotFoundError("systemd-analyze"))
    install(tmp_path, "server")
    install(tmp_path, "hospital", "rsi")
    install(tmp_path, "units")  # pointed at this checkout (its .venv exists: ExecStart paths are checked)
    units = tmp_path / "units"
    for template in units.glob("*@.*"):  # verify instances, as systemd would start them
        shutil.copy(template, units / template.name.replace("@.", "@rsi."))
    instances = sorted(str(p) for p in units.iterdir() if "@." not in p.name)
    assert len(instances) == 5
    result = subprocess.run([tool, "verify", *instances], capture_output=True, text=True, timeout=60)
    # verify only warns (exit 0) on unknown keys or bad values: any output is a failure too.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), \
        f"systemd-analyze verify:\n{result.stdout}\n{result.stderr}"
    text = (units / "khanza-sync-worker@rsi.service").read_text()
    assert f"ExecStart={PROJECT_ROOT}/.venv/bin/khanza-sync worker" in text
    assert f"EnvironmentFile={tmp_path / 'etc'}/%i.env" in text
    assert f"ExecStart={PROJECT_ROOT}/.venv/bin/khanza-sync runner --max-runs 300" in (units / "khanza-sync-runner@rsi.service").read_text()


# ---------------------------------------------------------------- environment files


def test_install_creates_env_files_0600_and_keeps_them(tmp_path):
    install(tmp_path, "server")
    install(tmp_path, "hospital", "rsi")
    install(tmp_path, "hospital", "rsj", "Asia/Jayapura")
    etc = tmp_path / "etc"
    assert mode(etc) == 0o711
    files = sorted(etc.iterdir())
    assert [f.name for f in files] == ["prefect-server.env", "rsi.env", "rsj.env"]
    assert all(mode(f) == 0o600 for f in files)
    server, rsi, rsj = (dotenv_values(f) for f in files)
    auth = server["PREFECT_SERVER_API_AUTH_STRING"]
    assert auth.startswith("khanza-admin:") and len(auth) > 30
    assert rsi["PREFECT_API_AUTH_STRING"] == rsj["PREFECT_API_AUTH_STRING"] == auth
    assert (rsi["HOSPITAL_CODE"], rsj["HOSPITAL_CODE"], rsj["HOSPITAL_TIMEZONE"]) == ("rsi", "rsj", "Asia/Jayapura")
    assert rsi["PREFECT_WORKER_WEBSERVER_PORT"] != rsj["PREFECT_WORKER_WEBSERVER_PORT"]

    # Re-running never overwrites a filled-in file, and puts a loosened mode back to 0600.
    (etc / "rsi.env").write_text((etc / "rsi.env").read_text().replace("KHANZA_DB_NAME=sik", "KHANZA_DB_NAME=rsi_sik"))
    (etc / "rsi.env").chmod(0o644)
    install(tmp_path, "hospital", "rsi")
    assert mode(etc / "rsi.env") == 0o600 and dotenv_values(etc / "rsi.env")["KHANZA_DB_NAME"] == "rsi_sik"

    # The same code rules as the settings.
    refused = install(tmp_path, "hospital", "RS_1", check=False)
    assert refused.returncode != 0 and "bad HOSPITAL_CODE" in refused.stderr
    assert not (etc / "RS_1.env").exists()

    # The hospital file is a valid Khanza Sync configuration for that hospital.
    s = Settings(_env_file=str(etc / "rsj.env"))
    assert (s.hospital_code, s.work_pool_name, s.khanza_concurrency_limit, s.hospital_timezone) == \
        ("rsj", "khanza-sync-rsj", "khanza-writes-rsj", "Asia/Jayapura")


def test_server_env_is_valid_prefect_settings_with_retention_and_auth(tmp_path):
    install(tmp_path, "server")
    values = {k: v for k, v in dotenv_values(tmp_path / "etc" / "prefect-server.env").items() if v is not None}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(values, PREFECT_HOME=str(tmp_path / "home"))
    probe = ("import json; from prefect.settings import get_current_settings as g; s = g().server; print(json.dumps({"
             "'vacuum': sorted(s.services.db_vacuum.enabled_vacuum_types),"
             "'flow_run_days': s.services.db_vacuum.retention_period.days,"
             "'event_days': s.events.retention_period.days,"
             "'auth': s.api.auth_string.get_secret_value(), 'db': s.database.connection_url.get_secret_value()}))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["vacuum"] == ["events", "flow_runs", "orphans"]
    assert (got["flow_run_days"], got["event_days"]) == (30, 7)
    assert got["auth"] == values["PREFECT_SERVER_API_AUTH_STRING"]
    assert got["db"].startswith("postgresql+asyncpg://")


# ---------------------------------------------------------------- Docker Compose


def test_compose_file_has_postgres_server_and_a_worker_per_hospital(tmp_path):
    compose_dir = DEPLOY / "compose"
    doc = yaml.safe_load((compose_dir / "compose.yaml").read_text())  # merge keys (<<) resolved
    services = doc["services"]
    workers = {name: s for name, s in services.items() if name.startswith("worker-")}
    assert set(services) == {"postgres", "prefect-server", *workers} and len(workers) >= 2

    pg = services["postgres"]
    assert pg["image"].startswith("postgres:") and "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["env_file"] == ["./env/postgres.env"] and pg["restart"] == "unless-stopped"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])

    server = services["prefect-server"]
    assert server["command"] == ["prefect", "server", "start"]
    assert server["env_file"] == ["./env/prefect-server.env"]
    assert server["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "/api/health" in " ".join(server["healthcheck"]["test"]) and server["restart"] == "unless-stopped"
    assert all(p.startswith("127.0.0.1:") for p in server["ports"])  # not published beyond the host without TLS

    env_files = set()
    for name, w in workers.items():
        assert w["command"] == ["khanza-sync", "worker"], name
        assert w["depends_on"] == {"prefect-server": {"condition": "service_healthy"}}, name
        assert "/health" in " ".join(w["healthcheck"]["test"]) and w["restart"] == "unless-stopped", name
        assert w["env_file"] == [f"./env/{name.removeprefix('worker-')}.env"], name  # its own hospital's only
        assert "environment" not in w, name  # nothing shared that could point one hospital at another's data
        env_files.add(w["env_file"][0])
    assert len(env_files) == len(workers)

    for s in (server, *workers.values()):
        build = s["build"]
        context = (compose_dir / build["context"]).resolve()
        assert context == PROJECT_ROOT and (context / build["dockerfile"]).is_file()

    # install.sh compose creates exactly the env files the compose file names, mode 0600.
    codes = [name.removeprefix("worker-") for name in workers]
    install(tmp_path, "compose", *(f"{c}:Asia/Jakarta" for c in codes))
    made = tmp_path / "compose-env"
    assert {f"./env/{f.name}" for f in made.iterdir()} == {"./env/postgres.env", "./env/prefect-server.env", *env_files}
    assert all(mode(f) == 0o600 for f in made.iterdir())
    pg_env, server_env = dotenv_values(made / "postgres.env"), dotenv_values(made / "prefect-server.env")
    assert f":{pg_env['POSTGRES_PASSWORD']}@postgres:5432/" in server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    for c in codes:
        hospital = dotenv_values(made / f"{c}.env")
        assert hospital["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert hospital["PREFECT_API_AUTH_STRING"] == server_env["PREFECT_SERVER_API_AUTH_STRING"]
        assert hospital["PREFECT_WORKER_WEBSERVER_PORT"] == "8080"  # what the healthcheck probes

    # Docker's own validation where the Compose plugin exists (not on this machine kind: client only).
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        shutil.copytree(compose_dir, tmp_path / "compose", ignore=shutil.ignore_patterns("env"))
        shutil.copytree(made, tmp_path / "compose" / "env")
        (tmp_path / "compose" / "compose.yaml").write_text(
            (compose_dir / "compose.yaml").read_text().replace("context: ../..", f"context: {PROJECT_ROOT}"))
        result = subprocess.run([docker, "compose", "-f", str(tmp_path / "compose" / "compose.yaml"), "config", "-q"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
