"""What it costs to run a hospital's flow runs: `khanza-sync runner` (one process, runs in-process) vs
`khanza-sync worker` (Prefect's process worker: a new Python process per run).

    DO_NOT_TRACK=1 .venv/bin/python -m bench.runner [--runs 20] [--quiet-seconds 300] [--per-run 2]
                                                     [--ways runner,worker] [--poll-seconds 2]

For each way, on a fresh `prefect server` (on the private PostgreSQL, own PREFECT_HOME, scheduler off) with the hospital deployed
by `khanza-sync deploy` against a demo Khanza database on the private MariaDB and a SQLite website store:
1. start the executor and wait until it polls; then a quiet period with no runs (CPU-seconds of the executor's
   process tree, scaled to an hour);
2. N manual runs of sync-registrations one after another (`--per-run` new registrations before each), each
   waited to its final state: CPU-seconds of the executor's process tree (children it waited for included),
   wall time, peak resident memory of the tree (sampled every 0.2 s; the runner's own VmHWM too), and the
   runner's RSS after each run (flat or growing).
The Prefect server's CPU is reported separately. Only counts and timings are printed; everything it made
(databases marked as Khanza Sync's, temp folders) is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CODE = "bench-r"
PREFECT_DB = "khanza_bench_runner_prefect"


def proc_cpu(pid: int, *, children_done: bool = True) -> float:
    """utime+stime (+cutime+cstime: children it waited for) of one process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children_done else 0)
    return ticks / CLK


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def tree_cpu(pid: int) -> float:
    """The executor and its children: finished children are in its cutime, live ones are added."""
    total = proc_cpu(pid)
    for child in tree(pid)[1:]:
        try:
            total += proc_cpu(child, children_done=False)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def rss(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


class PeakSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            total = 0
            for p in tree(self.pid):
                try:
                    total += rss(p)
                except (FileNotFoundError, ProcessLookupError):
                    pass
            self.peak = max(self.peak, total)
            self.stop.wait(0.2)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait(condition, what: str, timeout: float = 300, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise SystemExit(f"bench.runner: timed out waiting for {what}")


def registration(visit) -> dict:
    """A valid fake registration (the tests' shape: tests/support.py `registration`)."""
    from datetime import date
    return {"id": f"web-{uuid.uuid4().hex[:12]}",
            "created_at": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5),
            "nik": "3310" + str(uuid.uuid4().int)[:12], "full_name": "Budi Santoso", "birth_date": date(1985, 3, 14),
            "gender": "Laki-laki", "phone": "0812-3456-7890", "address": "Jl. Pemuda No. 5, Klaten",
            "birth_place": "Klaten", "mother_name": "Sri Wahyuni", "email": "budi@example.com",
            "poliklinik": "penyakit-dalam", "doctor": "dr-ahmad-sppd", "visit_date": visit, "payment": "umum"}


def measure(way: str, env: dict, work: Path, api: str, runs: int, quiet: float, per_run: int, website_url: str,
            server_pid: int) -> dict:
    from sqlalchemy import insert

    from website import store
    from website.schema import registrations

    client = httpx.Client(base_url=api, timeout=30)
    dep = client.post("/deployments/filter", json={"deployments": {"name": {"any_": [f"sync-registrations-{CODE}"]}}}
                      ).json()[0]["id"]
    log = work / f"{way}.log"
    command = ([str(BIN / "khanza-sync"), "runner", "--poll-seconds", env["PREFECT_WORKER_QUERY_SECONDS"]]
               if way == "runner" else
               [str(BIN / "khanza-sync"), "worker", "--no-healthcheck"])
    proc = subprocess.Popen(command, env=env, cwd=work, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    ready = "polling work pool" if way == "runner" else "started!"
    wait(lambda: ready in log.read_text() or proc.poll() is not None, f"{way} to start")
    if proc.poll() is not None:
        raise SystemExit(f"{way} exited:\n{log.read_text()[-2000:]}")
    start_cpu = tree_cpu(proc.pid)
    result = {"way": way, "start_cpu_s": round(start_cpu, 2), "rss_after_start_mb": round(rss(proc.pid) / 2**20, 1)}

    server0, t0 = proc_cpu(server_pid), time.monotonic()
    q0 = tree_cpu(proc.pid)
    time.sleep(quiet)  # the quiet period is the measurement itself: nothing runs
    quiet_cpu = tree_cpu(proc.pid) - q0
    elapsed = time.monotonic() - t0
    result.update(quiet_seconds=round(elapsed), quiet_cpu_s=round(quiet_cpu, 2),
                  quiet_cpu_s_per_hour=round(quiet_cpu * 3600 / elapsed, 1),
                  server_quiet_cpu_s_per_hour=round((proc_cpu(server_pid) - server0) * 3600 / elapsed, 1))

    sampler = PeakSampler(proc.pid)
    sampler.start()
    web = store.make_engine(website_url)
    visit = datetime.now().date() + timedelta(days=1)
    c0, s0, w0 = tree_cpu(proc.pid), proc_cpu(server_pid), time.monotonic()
    rss_after, states = [], []
    for _ in range(runs):
        with web.begin() as conn:
            for _ in range(per_run):
                conn.execute(insert(registrations).values(**registration(visit)))
        created = client.post(f"/deployments/{dep}/create_flow_run", json={})
        if created.status_code != 201:
            raise SystemExit(f"bench.runner: creating a run: {created.status_code} {created.text[:300]}")
        run_id = created.json()["id"]
        final = wait(lambda: (s := client.get(f"/flow_runs/{run_id}").json()["state"]["type"]) in
                     {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} and s, f"{way} run {run_id}")
        states.append(final)
        if way == "runner":
            rss_after.append(round(rss(proc.pid) / 2**20, 1))
    wall = time.monotonic() - w0
    cpu = tree_cpu(proc.pid) - c0
    sampler.stop.set()
    sampler.join()
    web.dispose()
    result.update(runs=runs, completed=states.count("COMPLETED"), runs_cpu_s=round(cpu, 2),
                  cpu_s_per_run=round(cpu / runs, 2), wall_s=round(wall, 1), wall_s_per_run=round(wall / runs, 2),
                  server_cpu_s=round(proc_cpu(server_pid) - s0, 2),
                  peak_tree_rss_mb=round(sampler.peak / 2**20, 1))
    if way == "runner":
        result.update(runner_vmhwm_mb=round(rss(proc.pid, "VmHWM") / 2**20, 1), rss_after_each_run_mb=rss_after)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quiet-seconds", type=float, default=300)
    parser.add_argument("--per-run", type=int, default=2, help="new registrations before each run")
    parser.add_argument("--ways", default="runner,worker")
    parser.add_argument("--poll-seconds", default="2", help="the runner's --poll-seconds and the worker's "
                        "PREFECT_WORKER_QUERY_SECONDS (both default to 10 in production; 2 here keeps runs quick)")
    args = parser.parse_args(argv)

    from khanza.setup import check_replaceable, create_demo_database, private_server_settings
    from khanza_sync import ownership

    khanza_db = "khanza_bench_runner"
    direct = private_server_settings(khanza_db)
    check_replaceable(direct, khanza_db)
    create_demo_database(direct, khanza_db, purpose="bench.runner Khanza database")
    work = Path(tempfile.mkdtemp(prefix="bench_runner_"))
    website_url = ownership.fresh_website_store(f"sqlite:///{work / 'website.db'}", "bench.runner website store")
    from website import store
    engine = store.make_engine(website_url)
    store.create_schema(engine)
    engine.dispose()

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KHANZA_", "WEBSITE_", "HOSPITAL_"))}
    base.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    from khanza_sync import localdb
    from sqlalchemy import make_url
    pg = localdb.start(only=("postgres",))  # the Prefect server on PostgreSQL, as in production
    prefect_url = ownership.ensure_postgres_database(pg.postgres_admin_url, PREFECT_DB, "bench.runner Prefect server")
    server_env = {**base, "PREFECT_HOME": str(work / "server"), "PREFECT_UI_ENABLED": "false",
                  "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                  "PREFECT_SERVER_DATABASE_CONNECTION_URL": make_url(prefect_url).set(drivername="postgresql+asyncpg")
                  .render_as_string(hide_password=False)}
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    env = {**base, "PREFECT_API_URL": api, "PREFECT_HOME": str(work / "hospital"), "HOSPITAL_CODE": CODE,
           "HOSPITAL_TIMEZONE": "Asia/Jakarta", "KHANZA_DB_HOST": direct.khanza_db_host,
           "KHANZA_DB_PORT": str(direct.khanza_db_port), "KHANZA_DB_USER": direct.khanza_db_user,
           "KHANZA_DB_PASSWORD": direct.khanza_db_password.get_secret_value(), "KHANZA_DB_NAME": khanza_db,
           "WEBSITE_DB_URL": website_url, "BOOKING_SAME_DAY_CUTOFF_HOUR": "",
           "PREFECT_WORKER_QUERY_SECONDS": args.poll_seconds, "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    results = []
    try:
        wait(lambda: _healthy(api), "prefect server", timeout=180, step=0.5)
        deployed = subprocess.run([str(BIN / "khanza-sync"), "deploy"], env=env, cwd=work, capture_output=True,
                                  text=True, timeout=300)
        if deployed.returncode:
            raise SystemExit(deployed.stdout + deployed.stderr)
        load_before = loadavg()
        for way in args.ways.split(","):
            results.append(measure(way, env, work, api, args.runs, args.quiet_seconds, args.per_run, website_url,
                                   server.pid))
            print(json.dumps(results[-1]), flush=True)
        print(json.dumps({"loadavg_before": load_before, "loadavg_after": loadavg(), "cores": os.cpu_count(),
                          "command": " ".join(["python -m bench.runner", *(argv or sys.argv[1:])])}))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
        from khanza.db import make_engine
        eng = make_engine(direct, database="information_schema")
        with eng.begin() as conn:
            if ownership.mariadb_owned(conn, khanza_db):
                conn.exec_driver_sql(f"DROP DATABASE `{khanza_db}`")
        eng.dispose()
        from sqlalchemy import create_engine
        admin = create_engine(pg.postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if ownership.postgres_owned(conn, PREFECT_DB):
                conn.exec_driver_sql(f'DROP DATABASE "{PREFECT_DB}" WITH (FORCE)')
        admin.dispose()
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "runner.json").write_text(json.dumps(results, indent=1))
    return 0 if all(r["completed"] == r["runs"] for r in results) else 1


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
