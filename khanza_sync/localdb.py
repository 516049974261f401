"""The project's own database servers: a private MariaDB (Khanza side) and PostgreSQL (website side, and the
trial's Prefect server), with their data under the project (`.services/`, git-ignored) and their own ports.
Demo, trial, tests and benchmarks use only these; the machine's own servers are never started, stopped,
reconfigured or logged into by them.

    python khanza_sync/localdb.py start    # idempotent: initialise (first time) and start both, print where
    python khanza_sync/localdb.py stop     # stop both (only the processes this module started)
    python khanza_sync/localdb.py status
    python khanza_sync/localdb.py env      # `export KHANZA_DB_HOST=... TEST_POSTGRES_ADMIN_URL=...` lines

Standard library only, so it runs before the .venv exists. Defaults: MariaDB 127.0.0.1:3307 (root, empty
password, reachable only from this machine), PostgreSQL 127.0.0.1:5433 (user postgres, trust). Override with
KHANZA_SYNC_MARIADB_PORT, KHANZA_SYNC_POSTGRES_PORT and KHANZA_SYNC_SERVICES_DIR (read when the servers start;
`start` writes them to SERVICES_DIR/services.json, which every later caller reads).
The binaries come from the distribution (`scripts/services.sh` installs them with apt when missing).
PostgreSQL refuses to run as root: as root its commands run as the `postgres` user (runuser), and its folder
belongs to that user.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_MARIADB_PORT = 3307
DEFAULT_POSTGRES_PORT = 5433


class LocalDbError(RuntimeError):
    """A private server could not be set up or started (the message says why and what to do)."""


@dataclass(frozen=True)
class Coordinates:
    services_dir: str
    mariadb_host: str
    mariadb_port: int
    postgres_host: str
    postgres_port: int

    @property
    def mariadb_user(self) -> str:
        return "root"

    @property
    def postgres_admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.postgres_host}:{self.postgres_port}/postgres"

    def postgres_url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@{self.postgres_host}:{self.postgres_port}/{database}"

    def client_env(self) -> dict[str, str]:
        """The environment that points Khanza Sync (and the tests) at the private servers."""
        return {"KHANZA_DB_HOST": self.mariadb_host, "KHANZA_DB_PORT": str(self.mariadb_port),
                "KHANZA_DB_USER": self.mariadb_user, "KHANZA_DB_PASSWORD": "",
                "TEST_POSTGRES_ADMIN_URL": self.postgres_admin_url}


def services_dir() -> Path:
    return Path(os.environ.get("KHANZA_SYNC_SERVICES_DIR") or PROJECT_ROOT / ".services").resolve()


def _state_file(base: Path) -> Path:
    return base / "services.json"


def coordinates(base: Path | None = None) -> Coordinates:
    """Where the private servers are (or will be): the state file `start` wrote, else the configured defaults."""
    base = base or services_dir()
    try:
        data = json.loads(_state_file(base).read_text())
        return Coordinates(**data)
    except (OSError, ValueError, TypeError):
        return Coordinates(services_dir=str(base), mariadb_host=HOST,
                           mariadb_port=int(os.environ.get("KHANZA_SYNC_MARIADB_PORT") or DEFAULT_MARIADB_PORT),
                           postgres_host=HOST,
                           postgres_port=int(os.environ.get("KHANZA_SYNC_POSTGRES_PORT") or DEFAULT_POSTGRES_PORT))


def _log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def _answers(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pid_alive(pid_file: Path, must_mention: str) -> int | None:
    """The pid in `pid_file` if that process is alive and its command line mentions `must_mention` (our own
    data folder: a recycled pid of another program is not ours)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if must_mention in cmdline else None


def _which(*names: str) -> str | None:
    for name in names:
        if found := shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                                 if os.access(p, os.X_OK)), None):
            return found
    return None


def _run(cmd: list[str], *, user: str | None = None, cwd: Path | None = None) -> None:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise LocalDbError(f"{' '.join(cmd)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")


def _wait(port: int, seconds: float, log_file: Path, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(port):
            return
        time.sleep(0.2)
    tail = log_file.read_text(errors="replace")[-800:] if log_file.exists() else "(no log)"
    raise LocalDbError(f"{what} did not answer on {HOST}:{port} within {seconds:.0f}s; log {log_file}:\n{tail}")


# ---------------------------------------------------------------------------------------------- MariaDB

def _mariadb_paths(base: Path) -> dict[str, Path]:
    d = base / "mariadb"
    return {"dir": d, "data": d / "data", "socket": d / "mariadbd.sock", "pid": d / "mariadbd.pid",
            "log": d / "mariadbd.log"}


def _ours_running(paths: dict, port: int, setting: str) -> bool:
    """True when the server this module started answers on `port`; a port answered by any other server is
    refused (never used, never set up), naming the setting that picks another port."""
    if _pid_alive(paths["pid"], str(paths["data"])) and _answers(port):
        return True
    if _answers(port):
        raise LocalDbError(f"port {port} is taken by a server this project did not start; set {setting} to a free port")
    return False


def start_mariadb(coords: Coordinates) -> str:
    p = _mariadb_paths(Path(coords.services_dir))
    if _ours_running(p, coords.mariadb_port, "KHANZA_SYNC_MARIADB_PORT"):
        return "running"
    mariadbd = _which("mariadbd", "mysqld")
    install_db = _which("mariadb-install-db", "mysql_install_db")
    if not mariadbd or not install_db:
        raise LocalDbError("MariaDB server binaries not found (mariadbd, mariadb-install-db): run ./dev services, "
                           "which installs mariadb-server-core with apt")
    p["dir"].mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if not (p["data"] / "mysql").is_dir():
        _log(f"initialising a private MariaDB in {p['data']}")
        shutil.rmtree(p["data"], ignore_errors=True)
        cmd = [install_db, "--no-defaults", f"--datadir={p['data']}", "--auth-root-authentication-method=normal",
               "--skip-test-db"]
        if root:
            cmd.append("--user=root")
        _run(cmd, cwd=p["dir"])
    _log(f"starting the private MariaDB on {HOST}:{coords.mariadb_port}")
    cmd = [mariadbd, "--no-defaults", f"--datadir={p['data']}", f"--socket={p['socket']}",
           f"--port={coords.mariadb_port}", f"--bind-address={HOST}", f"--pid-file={p['pid']}",
           # as the distribution's server is configured (Debian's 50-server.cnf)
           "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"]
    if root:
        cmd.append("--user=root")
    with open(p["log"], "ab") as log:
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         cwd=p["dir"])
    _wait(coords.mariadb_port, 60, p["log"], "the private MariaDB")
    for _ in range(50):  # the pid file appears just after the port opens
        if _pid_alive(p["pid"], str(p["data"])):
            break
        time.sleep(0.1)
    return "started"


def stop_mariadb(coords: Coordinates) -> str:
    p = _mariadb_paths(Path(coords.services_dir))
    pid = _pid_alive(p["pid"], str(p["data"]))
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    else:
        raise LocalDbError(f"the private MariaDB (pid {pid}) did not stop within 30 s")
    return "stopped"


# ---------------------------------------------------------------------------------------------- PostgreSQL

def _postgres_paths(base: Path) -> dict[str, Path]:
    d = base / "postgres"
    return {"dir": d, "data": d / "data", "log": d / "postgres.log", "pid": d / "data" / "postmaster.pid"}


def _pg_bin(name: str) -> str | None:
    """The distribution's PostgreSQL tool `name` (Debian keeps initdb and pg_ctl off PATH), newest version."""
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return versions[-1] if versions else shutil.which(name)


def _pg_user() -> str | None:
    """Who runs PostgreSQL's commands: this user, or `postgres` when this is root (the server refuses root)."""
    return "postgres" if os.geteuid() == 0 else None


def start_postgres(coords: Coordinates) -> str:
    p = _postgres_paths(Path(coords.services_dir))
    pg_ctl, initdb = _pg_bin("pg_ctl"), _pg_bin("initdb")
    if _ours_running(p, coords.postgres_port, "KHANZA_SYNC_POSTGRES_PORT"):
        return "running"
    if not pg_ctl or not initdb:
        raise LocalDbError("PostgreSQL server binaries not found (initdb, pg_ctl under /usr/lib/postgresql/*/bin): "
                           "run ./dev services, which installs them with apt")
    user = _pg_user()
    p["dir"].mkdir(parents=True, exist_ok=True)
    if user:
        subprocess.run(["chown", "-R", f"{user}:", str(p["dir"])], check=True)
        probe = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(p["dir"])])
        if probe.returncode != 0:
            raise LocalDbError(f"the {user} user cannot write {p['dir']} (a parent folder is not searchable); "
                               f"set KHANZA_SYNC_SERVICES_DIR to a folder it can reach")
    if not (p["data"] / "PG_VERSION").exists():
        _log(f"initialising a private PostgreSQL in {p['data']}")
        shutil.rmtree(p["data"], ignore_errors=True)
        _run([initdb, "-D", str(p["data"]), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"],
             user=user, cwd=p["dir"])
    _log(f"starting the private PostgreSQL on {HOST}:{coords.postgres_port}")
    _run([pg_ctl, "-D", str(p["data"]), "-l", str(p["log"]), "-w", "-t", "60", "-o",
          f"-p {coords.postgres_port} -k {p['dir']} -c listen_addresses={HOST}", "start"], user=user, cwd=p["dir"])
    _wait(coords.postgres_port, 30, p["log"], "the private PostgreSQL")
    return "started"


def stop_postgres(coords: Coordinates) -> str:
    p = _postgres_paths(Path(coords.services_dir))
    if not _pid_alive(p["pid"], str(p["data"])):
        return "not running"
    _run([_pg_bin("pg_ctl") or "pg_ctl", "-D", str(p["data"]), "-m", "fast", "-w", "stop"], user=_pg_user(),
         cwd=p["dir"])
    return "stopped"


# ---------------------------------------------------------------------------------------------- both

def start(base: Path | None = None) -> Coordinates:
    """Both private servers up (initialised the first time); idempotent, fast when they already run."""
    coords = coordinates(base)
    base = Path(coords.services_dir)
    base.mkdir(parents=True, exist_ok=True)
    results = {"MariaDB": start_mariadb(coords), "PostgreSQL": start_postgres(coords)}
    _state_file(base).write_text(json.dumps(asdict(coords), indent=1) + "\n")
    if any(r == "started" for r in results.values()):
        _log(f"private MariaDB on {coords.mariadb_host}:{coords.mariadb_port} ({results['MariaDB']}), "
             f"PostgreSQL on {coords.postgres_host}:{coords.postgres_port} ({results['PostgreSQL']}), "
             f"data in {base}")
    return coords


def running(base: Path | None = None) -> bool:
    coords = coordinates(base)
    b = Path(coords.services_dir)
    return bool(_pid_alive(_mariadb_paths(b)["pid"], str(_mariadb_paths(b)["data"]))
                and _pid_alive(_postgres_paths(b)["pid"], str(_postgres_paths(b)["data"])))


def stop(base: Path | None = None) -> dict[str, str]:
    coords = coordinates(base)
    return {"MariaDB": stop_mariadb(coords), "PostgreSQL": stop_postgres(coords)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    try:
        if command == "start":
            coords = start()
            print(f"MariaDB {coords.mariadb_host}:{coords.mariadb_port}, PostgreSQL "
                  f"{coords.postgres_host}:{coords.postgres_port} (data in {coords.services_dir})")
        elif command == "stop":
            for name, result in stop().items():
                print(f"private {name}: {result}")
        elif command == "status":
            coords = coordinates()
            b = Path(coords.services_dir)
            m = _pid_alive(_mariadb_paths(b)["pid"], str(_mariadb_paths(b)["data"]))
            pg = _pid_alive(_postgres_paths(b)["pid"], str(_postgres_paths(b)["data"]))
            print(f"private MariaDB {coords.mariadb_host}:{coords.mariadb_port}: {'running' if m else 'stopped'}")
            print(f"private PostgreSQL {coords.postgres_host}:{coords.postgres_port}: {'running' if pg else 'stopped'}")
        elif command == "env":
            for key, value in coordinates().client_env().items():
                print(f"export {key}='{value}'")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except LocalDbError as error:
        print(f"[services] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
