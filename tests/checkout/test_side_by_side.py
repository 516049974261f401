"""Several checkouts on one machine: each gets its own private servers with nothing set by hand (free ports
picked at the first start, remembered per checkout, claimed machine-wide), started at the same moment; an
explicit port still wins; a remembered port that another server took meanwhile is left to it."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pymysql

from khanza_sync.settings import PROJECT_ROOT
from tests.checkout.helpers import clean_env, run, state, tail
from tests.support import free_port

LOCALDB = str(PROJECT_ROOT / "khanza_sync" / "localdb.py")


def _env(services: Path, **extra: str) -> dict[str, str]:
    return clean_env(KHANZA_SYNC_SERVICES_DIR=str(services), **extra)


def _datadirs(where: dict) -> tuple[str, str]:
    """Each server's own answer to "where is your data": proves which checkout's server is on the port."""
    conn = pymysql.connect(host="127.0.0.1", port=where["mariadb_port"], user="root", connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@datadir")
            mariadb = cur.fetchone()[0]
    finally:
        conn.close()
    with psycopg.connect(host="127.0.0.1", port=where["postgres_port"], user="postgres", dbname="postgres",
                         connect_timeout=10) as pg:
        postgres = pg.execute("SHOW data_directory").fetchone()[0]
    return mariadb, postgres


def test_two_checkouts_get_their_own_servers_side_by_side(tmp_path):
    checkouts = [tmp_path / "first checkout" / ".services", tmp_path / "second checkout" / ".services"]
    try:
        starting = [subprocess.Popen([sys.executable, LOCALDB, "start"], env=_env(s), cwd=PROJECT_ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for s in checkouts]
        outputs = [p.communicate(timeout=300)[0] for p in starting]
        assert [p.returncode for p in starting] == [0, 0], outputs

        first, second = (state(s) for s in checkouts)
        ports = [first["mariadb_port"], first["postgres_port"], second["mariadb_port"], second["postgres_port"]]
        assert len(set(ports)) == 4, ports
        for services, where, output in zip(checkouts, (first, second), outputs):
            assert f"127.0.0.1:{where['mariadb_port']}: running" in output  # what ./dev services shows
            assert f"127.0.0.1:{where['postgres_port']}: running" in output
            mariadb, postgres = _datadirs(where)
            assert mariadb.rstrip("/") == str(services / "mariadb" / "data")
            assert postgres == str(Path(where["postgres_dir"] or services / "postgres") / "data")

        # Stopped and started again: the same ports (remembered), though other ports are free now.
        assert run([sys.executable, LOCALDB, "stop"], PROJECT_ROOT, _env(checkouts[0]), 120).returncode == 0
        again = run([sys.executable, LOCALDB, "start"], PROJECT_ROOT, _env(checkouts[0]), 300)
        assert again.returncode == 0, tail(again)
        assert state(checkouts[0]) == first

        # Explicit ports win over remembered ones.
        assert run([sys.executable, LOCALDB, "stop"], PROJECT_ROOT, _env(checkouts[0]), 120).returncode == 0
        chosen = {"KHANZA_SYNC_MARIADB_PORT": str(free_port()), "KHANZA_SYNC_POSTGRES_PORT": str(free_port())}
        explicit = run([sys.executable, LOCALDB, "start"], PROJECT_ROOT, _env(checkouts[0], **chosen), 300)
        assert explicit.returncode == 0, tail(explicit)
        now = state(checkouts[0])
        assert (str(now["mariadb_port"]), str(now["postgres_port"])) == tuple(chosen.values())
        assert _datadirs(now)[0].rstrip("/") == str(checkouts[0] / "mariadb" / "data")

        # The second checkout's remembered MariaDB port is taken meanwhile by a server it did not start: that
        # one is left alone, and the checkout moves to a free port.
        assert run([sys.executable, LOCALDB, "stop"], PROJECT_ROOT, _env(checkouts[1]), 120).returncode == 0
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's port may be in TIME_WAIT
            other.bind(("127.0.0.1", second["mariadb_port"]))
            other.listen()
            moved = run([sys.executable, LOCALDB, "start"], PROJECT_ROOT, _env(checkouts[1]), 300)
            assert moved.returncode == 0, tail(moved)
            assert f"port {second['mariadb_port']}, remembered" in moved.stderr
            after = state(checkouts[1])
            assert after["mariadb_port"] not in (second["mariadb_port"], now["mariadb_port"])
            assert after["postgres_port"] == second["postgres_port"]
            assert _datadirs(after)[0].rstrip("/") == str(checkouts[1] / "mariadb" / "data")
    finally:
        for services in checkouts:
            if services.exists():
                removed = run([sys.executable, LOCALDB, "remove"], PROJECT_ROOT, _env(services), 120)
                assert removed.returncode == 0, tail(removed)
