"""The machine's own MariaDB and PostgreSQL (a hospital's production servers, as far as this project is
concerned) keep their accounts: the services starter, a demo run and the whole test session change no user,
host, plugin, password hash or role. Read only (tests/safety/system_accounts.py). Where the system servers are
absent the comparison skips locally; under CI=true it fails (CI machines have them)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from khanza_sync.settings import PROJECT_ROOT
from tests.safety import system_accounts
from tests.support import PRIVATE, unavailable


def _present(snap: dict) -> dict:
    missing = {k: v for k, v in snap.items() if isinstance(v, str)}
    if missing:
        unavailable("the machine's own database servers (to compare their accounts)",
                    RuntimeError("; ".join(f"{k}: {v}" for k, v in missing.items())))
    return snap


@pytest.fixture
def system_before():
    if system_accounts.SYSTEM_MARIADB.endswith(f":{PRIVATE.mariadb_port}"):
        pytest.skip("KHANZA_SYNC_SYSTEM_MARIADB names the private server")
    return _present(system_accounts.snapshot())


def test_services_starter_and_a_demo_run_leave_system_accounts_unchanged(system_before, prefect_harness, tmp_path,
                                                                          monkeypatch):
    # The starter, as ./dev runs it (idempotent: starts the private servers if they are down).
    done = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "services.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=600)
    assert done.returncode == 0, done.stderr
    # A demo run, from a folder whose .env names the machine's own server: the demo must not follow it.
    (tmp_path / ".env").write_text("KHANZA_DB_HOST=127.0.0.1\nKHANZA_DB_PORT=3306\nKHANZA_DB_NAME=sik\n"
                                   "WEBSITE_DB_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres\n")
    monkeypatch.chdir(tmp_path)
    for key in ("KHANZA_DB_HOST", "KHANZA_DB_PORT", "KHANZA_DB_USER", "KHANZA_DB_PASSWORD", "KHANZA_DB_NAME",
                "WEBSITE_DB_URL"):
        monkeypatch.setenv(key, os.environ.get(key, ""))  # restored after the demo changed them
    from khanza_sync import demo
    from tasks.resources import dispose_all

    name = "khanza_sync_safety_demo"
    try:
        demo.main(khanza_db=name, website_db=tmp_path / "demo_website.db")
    finally:
        dispose_all()
    assert os.environ["KHANZA_DB_PORT"] == str(PRIVATE.mariadb_port)
    assert system_accounts.snapshot() == system_before


def test_this_test_session_left_system_accounts_unchanged():
    """Everything that ran before this test in the session (fixtures, least-privilege users, flows...)."""
    if system_accounts.AT_SESSION_START is None:
        pytest.skip("no snapshot from the start of the session")
    before = _present(system_accounts.AT_SESSION_START)
    assert system_accounts.snapshot() == before


def test_starter_never_takes_over_a_port_another_server_holds(tmp_path):
    """A server the project did not start on the configured port (here a plain listener standing in for the
    machine's own MariaDB/PostgreSQL): the starter refuses with a clear error and initialises nothing."""
    import socket

    from khanza_sync import localdb

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        coords = localdb.Coordinates(services_dir=str(tmp_path / "svc"), mariadb_host="127.0.0.1", mariadb_port=port,
                                     postgres_host="127.0.0.1", postgres_port=port)
        for start in (localdb.start_mariadb, localdb.start_postgres):
            with pytest.raises(localdb.LocalDbError, match=f"port {port} is taken by a server this project did not start"):
                start(coords)
    assert not (tmp_path / "svc" / "mariadb" / "data").exists()
    assert not (tmp_path / "svc" / "postgres" / "data").exists()
