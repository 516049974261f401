"""The project's own database servers: a private MariaDB (Khanza side) and PostgreSQL (website side, and the
trial's Prefect server), with their data under the checkout (`.services/`, git-ignored) and their own ports.
Demo, trial, tests and benchmarks use only these; the machine's own servers are never started, stopped,
reconfigured or logged into by them.

    python khanza_sync/localdb.py start [mariadb|postgres]  # idempotent: initialise (first time) and start them
    python khanza_sync/localdb.py stop     # stop both (only the processes this module started)
    python khanza_sync/localdb.py status   # ports and folders of this checkout's servers, running or not
    python khanza_sync/localdb.py env      # `export KHANZA_DB_HOST=... TEST_POSTGRES_ADMIN_URL=...` lines
    python khanza_sync/localdb.py remove   # stop both and delete their data (and this checkout's port claims)

Standard library only, so it runs before the .venv exists. MariaDB: root, empty password; PostgreSQL: user
postgres, trust; both on 127.0.0.1 only.

Ports: each checkout gets its own. The first start picks free ones (MariaDB from 3307 up, PostgreSQL from 5433
up), skipping ports that answer or that another checkout has claimed, and remembers them in
SERVICES_DIR/services.json; `./dev services` shows them. Claims are small files in /var/tmp/khanza-sync-ports
(one per port, naming the checkout), so a stopped checkout keeps its ports. KHANZA_SYNC_MARIADB_PORT and
KHANZA_SYNC_POSTGRES_PORT, when set, win. A port answered by a server this project did not start is never used:
an explicitly set port is refused; a remembered automatic one is replaced by a free one.

Folders: KHANZA_SYNC_SERVICES_DIR (default `.services/` in the checkout). PostgreSQL refuses to run as root: as
root its commands run as the `postgres` user (runuser), whose data folder must be reachable by that user. When
the checkout sits in a folder `postgres` cannot enter (root's home /root, any 0700 folder), PostgreSQL's folder
is /var/tmp/khanza-sync/<checkout>-<hash>/postgres instead (recorded in services.json). Not root: PostgreSQL runs
as the invoking user, in the checkout.
The binaries come from the distribution (`scripts/services.sh` installs them with apt when missing).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_MARIADB_PORT = 3307
DEFAULT_POSTGRES_PORT = 5433
PORT_SPAN = 100  # automatic ports: DEFAULT .. DEFAULT + PORT_SPAN - 1
PORT_ENV = {"mariadb": "KHANZA_SYNC_MARIADB_PORT", "postgres": "KHANZA_SYNC_POSTGRES_PORT"}
DEFAULT_PORT = {"mariadb": DEFAULT_MARIADB_PORT, "postgres": DEFAULT_POSTGRES_PORT}
# Machine-wide, so that checkouts (of any user) don't pick each other's ports, stopped or not: 1777 like /tmp.
PORT_CLAIMS = Path(os.environ.get("KHANZA_SYNC_PORT_CLAIMS") or "/var/tmp/khanza-sync-ports")
# As root, PostgreSQL folders of checkouts the `postgres` user cannot reach (root-owned 0755, one folder each).
OUTSIDE_ROOT = Path(os.environ.get("KHANZA_SYNC_OUTSIDE_DIR") or "/var/tmp/khanza-sync")
SOCKET_PATH_MAX = 100  # a Unix socket path has at most 107 bytes (sun_path)


class LocalDbError(RuntimeError):
    """A private server could not be set up or started (the message says why and what to do)."""


@dataclass(frozen=True)
class Coordinates:
    services_dir: str
    mariadb_host: str
    mariadb_port: int
    postgres_host: str
    postgres_port: int
    postgres_dir: str = ""  # PostgreSQL's folder; "" = services_dir/postgres

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


def _read_state(base: Path) -> dict:
    try:
        data = json.loads(_state_file(base).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _env_port(kind: str) -> int | None:
    value = os.environ.get(PORT_ENV[kind])
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise LocalDbError(f"{PORT_ENV[kind]}={value!r} is not a port number") from None


def coordinates(base: Path | None = None) -> Coordinates:
    """Where this checkout's private servers are (or will be): KHANZA_SYNC_*_PORT when set, else the ports
    services.json remembers, else the ports the first start would pick (nothing is claimed or written here)."""
    base = base or services_dir()
    state = _read_state(base)
    ports = {}
    for kind in ("mariadb", "postgres"):
        ports[kind] = _env_port(kind) or _int(state.get(f"{kind}_port")) or _free_port(kind, base, claim=False)
    return Coordinates(services_dir=str(base), mariadb_host=HOST, mariadb_port=ports["mariadb"], postgres_host=HOST,
                       postgres_port=ports["postgres"], postgres_dir=str(state.get("postgres_dir") or ""))


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------------- ports

def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
            return True
        except OSError:
            return False


def _claims_dir() -> Path | None:
    """The machine-wide claims folder (created 1777 on first use), or None when it can't be used: claims only
    keep checkouts apart, the refusal of a port another server answers is what protects the machine's servers."""
    try:
        PORT_CLAIMS.mkdir(parents=True, exist_ok=True)
        if PORT_CLAIMS.is_symlink() or not PORT_CLAIMS.is_dir():
            return None
        if PORT_CLAIMS.stat().st_uid == os.geteuid():
            os.chmod(PORT_CLAIMS, 0o1777)
        return PORT_CLAIMS if os.access(PORT_CLAIMS, os.W_OK | os.X_OK) else None
    except OSError:
        return None


def _claim_holder(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            return f.read().strip()
    except OSError:
        return None


def _claim_stale(holder: str, port: int) -> bool:
    """A claim whose checkout is gone, or whose services.json names other ports (its ports moved)."""
    try:
        os.stat(holder)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False  # not ours to look into (another user's 0700 home): still claimed
    state = _read_state(Path(holder))
    return bool(state) and port not in (state.get("mariadb_port"), state.get("postgres_port"))


def _claim(port: int, base: Path, *, take: bool = True) -> bool:
    """True when `port` is free of other checkouts' claims (and, with `take`, now claimed for `base`)."""
    folder = _claims_dir()
    if folder is None:
        return True
    path = folder / str(port)
    holder = _claim_holder(path)
    if holder == str(base):
        return True
    if holder is not None or path.exists():
        if holder is None or not _claim_stale(holder, port):
            return False
        try:
            path.unlink()
        except OSError:
            return False
    if not take:
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError:
        return False  # another checkout claimed it a moment ago
    with os.fdopen(fd, "w") as f:
        f.write(f"{base}\n")
    os.chmod(path, 0o644)
    return True


def _release_claims(base: Path) -> None:
    folder = _claims_dir()
    if folder is None:
        return
    for path in folder.iterdir():
        if _claim_holder(path) == str(base):
            path.unlink(missing_ok=True)


def _free_port(kind: str, base: Path, *, claim: bool = True, avoid: tuple[int, ...] = ()) -> int:
    """The first port from the default up that nothing answers or holds and no other checkout has claimed."""
    first = DEFAULT_PORT[kind]
    for port in range(first, first + PORT_SPAN):
        if port in avoid or _answers(port) or not _bindable(port):
            continue
        if _claim(port, base, take=claim):
            return port
    raise LocalDbError(f"no free port for the private {kind} in {first}-{first + PORT_SPAN - 1}; "
                       f"set {PORT_ENV[kind]} to a free port")


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

def _checkout_key(base: Path) -> str:
    """A short name for the checkout outside it: its folder's name and a hash of its path."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.parent.name if base.name == ".services" else base.name)[:24]
    return f"{name or 'checkout'}-{hashlib.sha256(str(base).encode()).hexdigest()[:12]}"


def _mariadb_paths(base: Path) -> dict[str, Path]:
    d = base / "mariadb"
    sock = d / "mariadbd.sock"
    if len(str(sock).encode()) > SOCKET_PATH_MAX:  # nothing here connects through it, but mariadbd needs one
        sock = Path(tempfile.gettempdir()) / f"khanza-sync-{_checkout_key(base)[-12:]}-mariadbd.sock"
    return {"dir": d, "data": d / "data", "socket": sock, "pid": d / "mariadbd.pid", "log": d / "mariadbd.log"}


def _ours_running(paths: dict, port: int, setting: str, what: str) -> bool:
    """True when the server this module started answers on `port`; a port answered by any other server is
    refused (never used, never set up), naming the setting that picks another port."""
    pid = _pid_alive(paths["pid"], str(paths["data"]))
    if pid and _answers(port):
        return True
    if _answers(port):
        raise LocalDbError(f"port {port} is taken by a server this project did not start; set {setting} to a free port")
    if pid:
        raise LocalDbError(f"this checkout's {what} runs (pid {pid}) but not on port {port}: stop it first "
                           f"(./dev stop-services), then start it on the new port")
    return False


def start_mariadb(coords: Coordinates) -> str:
    p = _mariadb_paths(Path(coords.services_dir))
    if _ours_running(p, coords.mariadb_port, "KHANZA_SYNC_MARIADB_PORT", "private MariaDB"):
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
        p["data"].mkdir(mode=0o700)
        with tempfile.TemporaryDirectory(prefix="khanza-sync-") as short:
            # mariadb-install-db's chown does not quote the path: a path with spaces goes through a symlink
            datadir = p["data"]
            if any(c.isspace() for c in str(datadir)):
                datadir = Path(short) / "data"
                datadir.symlink_to(p["data"], target_is_directory=True)
            cmd = [install_db, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
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

def _postgres_paths(coords: Coordinates) -> dict[str, Path]:
    d = Path(coords.postgres_dir or Path(coords.services_dir) / "postgres")
    return {"dir": d, "data": d / "data", "log": d / "postgres.log", "pid": d / "data" / "postmaster.pid"}


def _pg_bin(name: str) -> str | None:
    """The distribution's PostgreSQL tool `name` (Debian keeps initdb and pg_ctl off PATH), newest version."""
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return versions[-1] if versions else shutil.which(name)


def _pg_user() -> str | None:
    """Who runs PostgreSQL's commands: this user, or `postgres` when this is root (the server refuses root)."""
    return "postgres" if os.geteuid() == 0 else None


def _reachable_by(user: str, folder: Path) -> bool:
    """`user` can enter `folder` (every parent searchable)."""
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(folder)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _postgres_home(base: Path) -> str:
    """PostgreSQL's folder for the checkout whose services folder is `base`: inside it ("") unless we are root
    and the `postgres` user cannot reach it (a 0700 home such as /root): then a folder of its own under
    OUTSIDE_ROOT, named after the checkout (made when PostgreSQL first starts, _prepare_outside)."""
    user = _pg_user()
    if not user or _reachable_by(user, base):
        return ""
    return str(OUTSIDE_ROOT / _checkout_key(base) / "postgres")


def _prepare_outside(pg_dir: Path, base: Path) -> None:
    """OUTSIDE_ROOT and the checkout's folder in it: root-owned, writable by root only (so nobody else can
    plant or swap what PostgreSQL's folder sits in), with a note naming the checkout."""
    home = pg_dir.parent
    try:
        OUTSIDE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        info = os.lstat(OUTSIDE_ROOT)
    except OSError as error:
        raise LocalDbError(f"cannot create {OUTSIDE_ROOT} for PostgreSQL's data: {error}") from error
    if not os.path.isdir(OUTSIDE_ROOT) or os.path.islink(OUTSIDE_ROOT) or info.st_uid != 0 or info.st_mode & 0o022:
        raise LocalDbError(f"{OUTSIDE_ROOT} is not a folder owned by root and writable only by it: remove it, or set "
                           f"KHANZA_SYNC_SERVICES_DIR to a folder the postgres user can reach")
    home.mkdir(mode=0o755, exist_ok=True)
    (home / "CHECKOUT").write_text(f"PostgreSQL data of the Khanza Sync checkout whose services folder is\n{base}\n")


def start_postgres(coords: Coordinates) -> str:
    p = _postgres_paths(coords)
    pg_ctl, initdb = _pg_bin("pg_ctl"), _pg_bin("initdb")
    if _ours_running(p, coords.postgres_port, "KHANZA_SYNC_POSTGRES_PORT", "private PostgreSQL"):
        return "running"
    if not pg_ctl or not initdb:
        raise LocalDbError("PostgreSQL server binaries not found (initdb, pg_ctl under /usr/lib/postgresql/*/bin): "
                           "run ./dev services, which installs them with apt")
    user = _pg_user()
    if coords.postgres_dir:
        _prepare_outside(p["dir"], Path(coords.services_dir))
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
    # Connections are TCP; the Unix socket is left out when its path would be too long. pg_ctl hands -o to a
    # shell: quoted, for paths with spaces.
    sockets = str(p["dir"]) if len(str(p["dir"]).encode()) + 16 <= SOCKET_PATH_MAX else ""
    _run([pg_ctl, "-D", str(p["data"]), "-l", str(p["log"]), "-w", "-t", "60", "-o",
          f"-p {coords.postgres_port} -c unix_socket_directories={shlex.quote(sockets)} -c listen_addresses={HOST}",
          "start"], user=user, cwd=p["dir"])
    _wait(coords.postgres_port, 30, p["log"], "the private PostgreSQL")
    return "started"


def stop_postgres(coords: Coordinates) -> str:
    p = _postgres_paths(coords)
    if not _pid_alive(p["pid"], str(p["data"])):
        return "not running"
    _run([_pg_bin("pg_ctl") or "pg_ctl", "-D", str(p["data"]), "-m", "fast", "-w", "stop"], user=_pg_user(),
         cwd=p["dir"])
    return "stopped"


# ---------------------------------------------------------------------------------------------- both

SERVERS = ("mariadb", "postgres")


def _ours(coords: Coordinates, kind: str) -> int | None:
    p = _mariadb_paths(Path(coords.services_dir)) if kind == "mariadb" else _postgres_paths(coords)
    return _pid_alive(p["pid"], str(p["data"]))


def settle(base: Path | None = None) -> Coordinates:
    """This checkout's coordinates, made definite and written to services.json: explicit ports as set, else the
    remembered ones (replaced when another server now answers there), else free ones, claimed for it; and
    PostgreSQL's folder."""
    base = base or services_dir()
    base.mkdir(parents=True, exist_ok=True)
    state = _read_state(base)
    coords = coordinates(base)
    ports = {}
    for kind in SERVERS:
        port = getattr(coords, f"{kind}_port")
        if _env_port(kind) is None and not _int(state.get(f"{kind}_port")):
            port = _free_port(kind, base)  # first start: claim it (another checkout may have just taken the proposal)
        elif _env_port(kind) is None and _answers(port) and not _ours(coords, kind):
            new = _free_port(kind, base, avoid=(port,))
            _log(f"port {port}, remembered for this checkout's {kind}, is now answered by a server this project "
                 f"did not start: using {new}")
            port = new
        else:
            _claim(port, base)  # best effort: an explicit port another checkout claimed is still what was asked
        ports[kind] = port
    pg_dir = coords.postgres_dir
    if not pg_dir or not Path(pg_dir).is_dir():  # kept once it holds data, even if the checkout's mode changes
        pg_dir = _postgres_home(base)
    coords = Coordinates(services_dir=str(base), mariadb_host=HOST, mariadb_port=ports["mariadb"], postgres_host=HOST,
                         postgres_port=ports["postgres"], postgres_dir=pg_dir)
    _state_file(base).write_text(json.dumps(asdict(coords), indent=1) + "\n")
    return coords


def _start_one(coords: Coordinates, kind: str) -> tuple[Coordinates, str]:
    """Start one server; when a server this project did not start took its automatic port in the meantime (a
    process that claims nothing, between our check and our bind), move to a free port rather than fail."""
    starter = start_mariadb if kind == "mariadb" else start_postgres
    for _ in range(3):
        port = getattr(coords, f"{kind}_port")
        try:
            return coords, starter(coords)
        except LocalDbError:
            if _env_port(kind) is not None or not _answers(port) or _ours(coords, kind):
                raise
        new = _free_port(kind, Path(coords.services_dir), avoid=(port,))
        _log(f"port {port} was taken meanwhile by a server this project did not start: using {new} for {kind}")
        coords = replace(coords, **{f"{kind}_port": new})
        _state_file(Path(coords.services_dir)).write_text(json.dumps(asdict(coords), indent=1) + "\n")
    return coords, starter(coords)


def start(base: Path | None = None, only: tuple[str, ...] = SERVERS) -> Coordinates:
    """The private servers named in `only` up (initialised the first time); idempotent, fast when they run."""
    coords = settle(base)
    results = {}
    for kind, name in (("mariadb", "MariaDB"), ("postgres", "PostgreSQL")):
        if kind in only:
            coords, results[name] = _start_one(coords, kind)
    if any(r == "started" for r in results.values()):
        _log(", ".join(f"private {name} on {HOST}:{getattr(coords, ('mariadb' if name == 'MariaDB' else 'postgres') + '_port')}"
                       f" ({result})" for name, result in results.items()) + f", data in {coords.services_dir}"
             + (f" and {coords.postgres_dir}" if coords.postgres_dir and "PostgreSQL" in results else ""))
    return coords


def running(base: Path | None = None) -> bool:
    coords = coordinates(base)
    return all(_ours(coords, kind) for kind in SERVERS)


def stop(base: Path | None = None) -> dict[str, str]:
    coords = coordinates(base)
    return {"MariaDB": stop_mariadb(coords), "PostgreSQL": stop_postgres(coords)}


def remove(base: Path | None = None) -> list[str]:
    """Stop both servers and delete their data and this checkout's port claims (what a throw-away clone leaves)."""
    base = base or services_dir()
    coords = coordinates(base)
    stop(base)
    gone = []
    if coords.postgres_dir:
        outside = Path(coords.postgres_dir).parent
        if outside.parent == OUTSIDE_ROOT and (outside / "CHECKOUT").is_file():
            shutil.rmtree(outside)
            gone.append(str(outside))
    _release_claims(base)
    if base.is_dir():
        shutil.rmtree(base)
        gone.append(str(base))
    return gone


def status_lines(base: Path | None = None) -> list[str]:
    coords = coordinates(base)
    return [f"private MariaDB {coords.mariadb_host}:{coords.mariadb_port}: "
            f"{'running' if _ours(coords, 'mariadb') else 'stopped'} (data in {_mariadb_paths(Path(coords.services_dir))['dir']})",
            f"private PostgreSQL {coords.postgres_host}:{coords.postgres_port}: "
            f"{'running' if _ours(coords, 'postgres') else 'stopped'} (data in {_postgres_paths(coords)['dir']})"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    try:
        if command == "start":
            only = tuple(args[1:]) or SERVERS
            if unknown := set(only) - set(SERVERS):
                raise LocalDbError(f"unknown server {', '.join(sorted(unknown))}: mariadb or postgres")
            start(only=only)
            print("\n".join(line for line, kind in zip(status_lines(), SERVERS) if kind in only))
        elif command == "stop":
            for name, result in stop().items():
                print(f"private {name}: {result}")
        elif command == "status":
            print("\n".join(status_lines()))
        elif command == "env":
            for key, value in coordinates().client_env().items():
                print(f"export {key}='{value}'")
        elif command == "remove":
            for path in remove():
                print(f"removed {path}")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except LocalDbError as error:
        print(f"[services] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
