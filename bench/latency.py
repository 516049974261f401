"""Latency of the follow mode (issue 14): registrations arriving at 1, 5 and 20 per second for two minutes into
PostgreSQL (with the notification trigger: LISTEN/NOTIFY) and SQLite (polling), while a Khanza desk clerk
registers walk-ins (tests/faults/desk.py). For each: p50/p95/p99 of insertion -> `synced_at` (and -> the row
seen synced by an observer polling every 0.1 s), the follow process's CPU and memory while idle (measured over
--idle-seconds and scaled to an hour), correctness (nothing lost, no duplicated visit, no shared queue number),
and the same figures for the scheduled mode as it runs today, derived from measured parts.

    .venv/bin/python -m bench.latency [--seconds 120] [--rates 1,5,20] [--idle-seconds 60] [--modes postgresql,sqlite]

A benchmark, not a test: it prints figures and targets as MET / MISSED (report in bench/out/latency.txt and
.json) and exits 1 only if correctness fails. It writes only its own databases: the Khanza database
`khanza_sync_latency` on the project's private MariaDB, the PostgreSQL database `ks_latency` on the private
PostgreSQL (khanza_sync/localdb.py; both marked as Khanza Sync's, khanza_sync/ownership.py), the SQLite file
bench/out/latency_website.db and a Prefect server's home bench/out/latency_prefect (a real `prefect server`
on a free port, as in production; the follow process is `khanza-sync follow`, a separate process).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import common as C

KHANZA_DB = "khanza_sync_latency"
PG_DB = "ks_latency"
SQLITE_PATH = C.OUT / "latency_website.db"
PREFECT_HOME = C.OUT / "latency_prefect"
SCHEDULE_SECONDS = 120  # the scheduled deployment's opening-hours cadence (*/2)
TARGETS = {("postgresql", 5): ("p95", 3.0), ("sqlite", 5): ("p95", 5.0), ("postgresql", 20): ("p99", 10.0),
           ("sqlite", 20): ("p99", 10.0)}
TICK = os.sysconf("SC_CLK_TCK")


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- process figures from /proc


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- setup


def khanza_settings():
    from khanza.setup import private_server_settings

    return private_server_settings(KHANZA_DB)


def fresh_khanza(settings) -> None:
    from sqlalchemy import text

    from khanza.db import make_engine
    from khanza.setup import create_demo_database

    create_demo_database(settings, KHANZA_DB, purpose="latency benchmark Khanza database")
    engine = make_engine(settings)
    with engine.begin() as conn:  # quota never the limit here: a registration's latency, not the quota, is measured
        conn.execute(text("UPDATE jadwal SET kuota = 100000"))
    engine.dispose()


def website_url(mode: str) -> str:
    from khanza_sync import localdb, ownership

    if mode == "sqlite":
        return ownership.fresh_website_store(f"sqlite:///{SQLITE_PATH}", "latency benchmark website store")
    coords = localdb.start()
    url = ownership.ensure_postgres_database(coords.postgres_admin_url, PG_DB, "latency benchmark website database")
    return ownership.fresh_website_store(url, "latency benchmark website database")  # with the trigger (DDL)


def start_prefect_server() -> tuple[subprocess.Popen, str]:
    PREFECT_HOME.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(PREFECT_HOME), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(api + "/health", timeout=2):
                return server, api
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the benchmark's Prefect server did not start within 180 s")


def pipeline_env(settings, url: str, api: str) -> dict[str, str]:
    env = {**os.environ}
    env.update({"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": api,
                "PREFECT_HOME": str(PREFECT_HOME), "PREFECT_LOGGING_LEVEL": "WARNING",
                "KHANZA_DB_HOST": settings.khanza_db_host, "KHANZA_DB_PORT": str(settings.khanza_db_port),
                "KHANZA_DB_USER": settings.khanza_db_user, "KHANZA_DB_PASSWORD": "", "KHANZA_DB_NAME": KHANZA_DB,
                "WEBSITE_DB_URL": url, "BOOKING_SAME_DAY_CUTOFF_HOUR": "", "HOSPITAL_CODE": "latency",
                "FOLLOW_POLL_SECONDS": "1"})
    return env


# ---------------------------------------------------------------- the website side: arrivals and an observer


def make_registration(tag: str, i: int) -> dict:
    from tests.faults.helpers import CLINICS, fake_nik
    from tests.support import hospital_today, registration

    poli, doctor = CLINICS[i % len(CLINICS)]
    return registration(id=f"lat-{tag}-{i:06d}", nik=fake_nik(), poliklinik=poli, doctor=doctor,
                        visit_date=hospital_today() + timedelta(days=1 + (i // len(CLINICS)) % 7),
                        created_at=utc_now())


def arrivals(engine, tag: str, rate: float, seconds: float) -> dict[str, datetime]:
    """One registration every 1/rate s (one transaction each, as the website does); returns id -> commit time."""
    from sqlalchemy import insert

    from website.schema import registrations

    inserted: dict[str, datetime] = {}
    start = time.monotonic()
    n = int(rate * seconds)
    with engine.connect() as conn:
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            row = make_registration(tag, i)
            conn.execute(insert(registrations).values(**row))
            conn.commit()
            inserted[row["id"]] = utc_now()
    return inserted


class Observer(threading.Thread):
    """Sees rows leave `pending` (polling every 0.1 s): the time the website could first show the number."""

    def __init__(self, engine, prefix: str):
        super().__init__(daemon=True)
        self.engine, self.prefix = engine, prefix
        self.seen: dict[str, datetime] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        from sqlalchemy import select

        from website.schema import registrations as t

        stmt = select(t.c.id).where(t.c.status != "pending", t.c.id.like(self.prefix + "%"))
        while not self.stop.is_set():
            with self.engine.connect() as conn:
                ids = conn.execute(stmt).scalars().all()
            now = utc_now()
            for reg_id in ids:
                self.seen.setdefault(reg_id, now)
            self.stop.wait(0.1)


def wait_drained(engine, ids: list[str], timeout: float) -> int:
    from sqlalchemy import func, select

    from website.schema import registrations as t

    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            left = conn.execute(select(func.count()).where(t.c.status == "pending", t.c.id.in_(ids))).scalar_one()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def synced_times(engine, ids: list[str]) -> dict[str, datetime]:
    from sqlalchemy import select

    from website.schema import registrations as t

    out = {}
    with engine.connect() as conn:
        # synced_at is also stamped on rejection: only synced rows have a final queue number
        for reg_id, synced_at in conn.execute(select(t.c.id, t.c.synced_at).where(t.c.id.in_(ids),
                                                                                 t.c.status == "synced")):
            if synced_at is not None:
                out[reg_id] = datetime.fromisoformat(synced_at) if isinstance(synced_at, str) else synced_at
    return out


def latencies(inserted: dict[str, datetime], done: dict[str, datetime]) -> list[float]:
    return [(done[i] - t).total_seconds() for i, t in inserted.items() if i in done]


def figures(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95), "p99": pct(values, 99),
            "max": max(values) if values else float("nan")}


# ---------------------------------------------------------------- follow mode


def idle_window(pid: int, seconds: float) -> dict:
    cpu0, rss = cpu_seconds(pid), []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rss.append(rss_mb(pid))
        time.sleep(min(5, max(0.0, end - time.monotonic())))
    rss.append(rss_mb(pid))
    used = cpu_seconds(pid) - cpu0
    return {"seconds": seconds, "cpu_s": used, "cpu_s_per_hour": used * 3600 / seconds,
            "core_share_pct": 100 * used / seconds, "rss_first_mb": rss[0], "rss_last_mb": rss[-1],
            "rss_min_mb": min(rss), "rss_max_mb": max(rss)}


def run_follow_mode(mode: str, rates: list[float], seconds: float, idle_seconds: float, api: str, settings,
                    desk_args: dict) -> dict:
    from sqlalchemy import text

    from khanza.db import make_engine
    from tests.faults.desk import DeskSimulator, seed_patients
    from tests.faults.invariants import audit
    from tests.support import hospital_today
    from website import notify, store

    print(f"\n== {mode}: fresh Khanza {KHANZA_DB}, website store, follow process", flush=True)
    fresh_khanza(settings)
    url = website_url(mode)
    web = store.make_engine(url)
    khanza = make_engine(settings)
    trigger = notify.has_trigger(web)
    env = pipeline_env(settings, url, api)
    log = open(C.OUT / f"latency_follow_{mode}.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("khanza-sync")), "follow"], env=env, cwd=C.ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    result = {"mode": mode, "trigger": trigger, "rates": {}}
    all_ids: list[str] = []
    try:
        warm = arrivals(web, f"{mode[:2]}-warm", 1, 1)
        all_ids += list(warm)
        if wait_drained(web, list(warm), 180):
            raise SystemExit(f"{mode}: the follow process did not sync the warm-up registration (see {log.name})")
        time.sleep(3)
        print(f"{mode}: follow process up (pid {proc.pid}, {'LISTEN' if trigger else 'poll'}), "
              f"idle window {idle_seconds:.0f} s", flush=True)
        result["idle_before"] = idle_window(proc.pid, idle_seconds)
        patients = seed_patients(desk_args, KHANZA_DB, 30)
        for rate in rates:
            tag = f"{mode[:2]}-{rate:g}"
            desk = DeskSimulator(desk_args, KHANZA_DB, day=hospital_today() + timedelta(days=1), kd_dokter="D001",
                                 kd_poli="INT", patients=patients, clerks=1, per_clerk=100000, pause=(0.3, 0.9),
                                 seed=int(rate)).start()
            observer = Observer(web, f"lat-{tag}-")
            observer.start()
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.monotonic()
            inserted = arrivals(web, tag, rate, seconds)
            left = wait_drained(web, list(inserted), 120)
            busy_cpu = cpu_seconds(proc.pid) - cpu0
            wall = time.monotonic() - t0
            time.sleep(0.3)
            observer.stop.set()
            observer.join()
            stats = desk.stop()
            all_ids += list(inserted)
            synced = synced_times(web, list(inserted))
            row = {"registrations": len(inserted), "left_pending": left,
                   "synced_at": figures(latencies(inserted, synced)),
                   "observed": figures(latencies(inserted, observer.seen)),
                   "busy_cpu_share_pct": 100 * busy_cpu / wall, "desk_walk_ins": stats.inserted,
                   "desk_errors": stats.errors, "rss_mb": rss_mb(proc.pid)}
            result["rates"][str(rate)] = row
            s, o = row["synced_at"], row["observed"]
            print(f"{mode} {rate:g}/s: {len(inserted)} registrations, insert->synced_at p50 {s['p50']:.2f} "
                  f"p95 {s['p95']:.2f} p99 {s['p99']:.2f} s (seen by the website p95 {o['p95']:.2f} p99 "
                  f"{o['p99']:.2f}); follow CPU {row['busy_cpu_share_pct']:.0f}% of a core; desk walk-ins "
                  f"{stats.inserted}", flush=True)
        result["idle_after"] = idle_window(proc.pid, idle_seconds)
        result["peak_rss_mb"] = rss_mb(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    report = audit(khanza, web, all_ids)
    with khanza.connect() as conn:
        ledger = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT registration_id) FROM khanza_sync_ledger")).one()
    result["audit"] = {"summary": report.summary(), "problems": {k: v[:10] for k, v in report.problems.items()},
                       "ledger_rows": ledger[0], "ledger_distinct": ledger[1]}
    print(f"{mode}: correctness {report.summary()}", flush=True)
    web.dispose()
    khanza.dispose()
    return result


# ---------------------------------------------------------------- scheduled mode (today), from measured parts


def timed_process(cmd: list[str], env: dict) -> tuple[float, float, float, float]:
    """(spawn time as monotonic, wall s, CPU s, peak RSS MB) of one process run to its end."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=C.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return started, time.monotonic() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_scheduled_baseline(rates: list[float], api: str, settings) -> dict:
    """What a registration waits today: the next */2 run (uniform over 120 s), then the worker's new process
    (Python + Prefect + pandas + GX start, flow run) until its batch is written back. Measured here: that process
    (`python -m flows.sync_registrations`, exactly what the process worker runs) with the backlog two minutes of
    arrivals leave (rate x 120), spawn -> each row's synced_at; and an empty run's CPU and memory (idle cost:
    30 runs an hour in opening hours). Not included: the worker's own polling (its ~1-5 s pickup, PREFECT notes)."""
    from sqlalchemy import insert

    from website import store
    from website.schema import registrations

    print("\n== scheduled mode (today): measured parts", flush=True)
    fresh_khanza(settings)
    url = website_url("sqlite")
    web = store.make_engine(url)
    env = pipeline_env(settings, url, api)
    cmd = [sys.executable, "-m", "flows.sync_registrations"]
    out = {"empty_runs": [], "rates": {}}
    timed_process(cmd, env)  # first run on this server/home: not counted
    for _ in range(3):
        _, wall, cpu, rss = timed_process(cmd, env)
        out["empty_runs"].append({"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss})
    empty_cpu = statistics.median(r["cpu_s"] for r in out["empty_runs"])
    out["idle"] = {"runs_per_hour": 3600 // SCHEDULE_SECONDS, "cpu_s_per_run": empty_cpu,
                   "cpu_s_per_hour": empty_cpu * 3600 / SCHEDULE_SECONDS,
                   "core_share_pct": 100 * empty_cpu / SCHEDULE_SECONDS,
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in out["empty_runs"]),
                   "processes_per_day": "~600 (every 2 min 05-20, hourly otherwise)"}
    print(f"scheduled: empty run {statistics.median(r['wall_s'] for r in out['empty_runs']):.1f} s wall, "
          f"{empty_cpu:.1f} CPU s, peak {out['idle']['peak_rss_mb']:.0f} MB", flush=True)
    rng = random.Random(14)
    for rate in rates:
        n = int(rate * SCHEDULE_SECONDS)
        rows = [make_registration(f"sc-{rate:g}", i) for i in range(n)]
        with web.begin() as conn:
            conn.execute(insert(registrations), rows)
        spawn_utc = utc_now()
        _, wall, cpu, rss = timed_process(cmd, env)
        done = synced_times(web, [r["id"] for r in rows])
        offsets = [(t - spawn_utc).total_seconds() for t in done.values()]
        samples = [rng.uniform(0, SCHEDULE_SECONDS) + rng.choice(offsets) for _ in range(100_000)]
        out["rates"][str(rate)] = {"backlog": n, "synced": len(done), "process_wall_s": wall, "cpu_s": cpu,
                                   "peak_rss_mb": rss, "spawn_to_synced_at_p50": pct(offsets, 50),
                                   "spawn_to_synced_at_max": max(offsets) if offsets else float("nan"),
                                   "derived": figures(samples)}
        d = out["rates"][str(rate)]["derived"]
        print(f"scheduled {rate:g}/s: backlog {n}, process {wall:.1f} s, spawn->synced_at p50 "
              f"{pct(offsets, 50):.1f} s; derived insert->synced_at p50 {d['p50']:.1f} p95 {d['p95']:.1f} "
              f"p99 {d['p99']:.1f} s", flush=True)
    web.dispose()
    return out


# ---------------------------------------------------------------- report


def verdicts(results: list[dict]) -> list[str]:
    lines = []
    for res in results:
        for rate, row in res["rates"].items():
            key = (res["mode"], int(float(rate)))
            if key in TARGETS:
                which, limit = TARGETS[key]
                value = row["synced_at"][which]
                lines.append(f"{'MET' if value <= limit else 'MISSED'}: {res['mode']} {rate}/s {which} "
                             f"insert->synced_at {value:.2f} s (target <= {limit:g} s; seen by the website "
                             f"{row['observed'][which]:.2f} s)")
        for when in ("idle_before", "idle_after"):
            idle = res.get(when)
            if idle:
                lines.append(f"{'MET' if idle['core_share_pct'] < 1 else 'MISSED'}: {res['mode']} idle CPU "
                             f"({when}) {idle['core_share_pct']:.3f}% of a core = {idle['cpu_s_per_hour']:.1f} CPU s "
                             f"per idle hour (measured over {idle['seconds']:.0f} s, scaled; target < 1%)")
        if res.get("idle_before") and res.get("idle_after"):
            b, a = res["idle_before"], res["idle_after"]
            flat = b["rss_max_mb"] - b["rss_min_mb"] < 5 and a["rss_max_mb"] - a["rss_min_mb"] < 5
            lines.append(f"{'MET' if flat else 'MISSED'}: {res['mode']} memory flat while idle: "
                         f"{b['rss_min_mb']:.0f}-{b['rss_max_mb']:.0f} MB before the load, "
                         f"{a['rss_min_mb']:.0f}-{a['rss_max_mb']:.0f} MB after it; peak {res['peak_rss_mb']:.0f} MB")
        audit = res["audit"]
        ok = not audit["problems"] and audit["ledger_rows"] == audit["ledger_distinct"]
        lines.append(f"{'MET' if ok else 'MISSED'}: {res['mode']} correctness with the desk writing: "
                     f"{audit['summary']}; ledger {audit['ledger_rows']} rows, {audit['ledger_distinct']} distinct")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rates", default="1,5,20")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--modes", default="postgresql,sqlite")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    os.environ.setdefault("DO_NOT_TRACK", "1")
    C.OUT.mkdir(parents=True, exist_ok=True)
    settings = khanza_settings()
    desk_args = {"host": settings.khanza_db_host, "port": settings.khanza_db_port, "user": settings.khanza_db_user,
                 "password": ""}
    started = time.monotonic()
    server, api = start_prefect_server()
    print(f"latency benchmark: Prefect server {api}, Khanza {KHANZA_DB} on {settings.khanza_db_host}:"
          f"{settings.khanza_db_port}, rates {args.rates}/s for {args.seconds:g} s, idle windows {args.idle_seconds:g} s",
          flush=True)
    results, baseline = [], None
    try:
        for mode in args.modes.split(","):
            results.append(run_follow_mode(mode, rates, args.seconds, args.idle_seconds, api, settings, desk_args))
        if not args.no_baseline:
            baseline = run_scheduled_baseline(rates, api, settings)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    lines = verdicts(results)
    if baseline:
        for rate, row in baseline["rates"].items():
            d = row["derived"]
            lines.append(f"BASELINE scheduled {rate}/s (derived: U(0,120 s) + measured spawn->synced_at of a "
                         f"{row['backlog']}-row run): p50 {d['p50']:.1f} p95 {d['p95']:.1f} p99 {d['p99']:.1f} s")
        idle = baseline["idle"]
        lines.append(f"BASELINE scheduled idle: {idle['cpu_s_per_run']:.1f} CPU s per empty run x "
                     f"{idle['runs_per_hour']} runs = {idle['cpu_s_per_hour']:.0f} CPU s per idle opening hour "
                     f"({idle['core_share_pct']:.1f}% of a core), a new process of peak {idle['peak_rss_mb']:.0f} MB each run")
    print("\n" + "\n".join(lines))
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    (C.OUT / "latency.json").write_text(json.dumps({"follow": results, "scheduled": baseline}, indent=2, default=str))
    (C.OUT / "latency.txt").write_text("\n".join(lines) + "\n")
    bad = any(r["audit"]["problems"] or r["audit"]["ledger_rows"] != r["audit"]["ledger_distinct"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
