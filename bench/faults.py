"""Recovery of the follow mode from network blips (issue 23): how long after the end of an outage the first new
registration has its final queue number on the website, p50/p95 over --blips blips of each kind:

    website-cut        the website's connections reset and new ones refused for 2 s (bench/faultproxy.py)
    website-half-open  every website connection goes silent for good (a NAT that forgot them); new ones work.
                       There is no later "end": it is measured from the moment they went silent (stricter)
    khanza-cut         Khanza's connections reset and new ones refused for 1 s
    khanza-refuse      Khanza refusing new connections for 15 s (live ones reset)
    mariadb-restart    the bench's own MariaDB (Khanza) stopped and started again; the end is when it answers

    .venv/bin/python -m bench.faults [--blips 10] [--kinds website-cut,...] [--idle-seconds 60]

Set-up: a real `prefect server` and `khanza-sync follow` process (as in production, default settings) on a
PostgreSQL website with the notification trigger (the project's private PostgreSQL, database `ks_faults`) and a
Khanza database `khanza_sync_faults` on a MariaDB this bench starts itself (own data folder bench/out/faults_mariadb,
a free port: it is the one restarted), each behind a fault proxy. Between blips the follow process is idle (on
LISTEN). Per blip: one registration arrives during the outage, the measured one the moment it ends; the website
is watched directly (not through the proxy) every 50 ms. Also: the follow process's CPU over an idle window
(with its LISTEN pings), tracebacks in its log, and correctness (nothing lost, nothing made twice). The machine's
load average is printed with the figures. A benchmark, not a test: exits 1 only if correctness fails.
Report: bench/out/faults.txt and .json; the follow process's log: bench/out/faults_follow.log.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import common as C
from bench.faultproxy import FaultProxy
from bench.latency import cpu_seconds, free_port, idle_window, pct

KHANZA_DB = "khanza_sync_faults"
PG_DB = "ks_faults"
PREFECT_HOME = C.OUT / "faults_prefect"
MARIADB_DIR = C.OUT / "faults_mariadb"
KINDS = ["website-cut", "website-half-open", "khanza-cut", "khanza-refuse", "mariadb-restart"]
OUTAGE = {"website-cut": 2.0, "khanza-cut": 1.0, "khanza-refuse": 15.0}
TARGET_P95 = 5.0
BLIP_TIMEOUT = 180.0  # a blip whose arrival is not synced by then counts as not recovered


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# ---------------------------------------------------------------- the bench's own MariaDB (the one restarted)


def mariadb_coords():
    from khanza_sync import localdb

    state = MARIADB_DIR / "port"
    port = int(state.read_text()) if state.exists() else free_port()
    MARIADB_DIR.mkdir(parents=True, exist_ok=True)
    state.write_text(str(port))
    # localdb's MariaDB code with its own folder and port; its PostgreSQL half is never started here
    return localdb.Coordinates(services_dir=str(MARIADB_DIR), mariadb_host=localdb.HOST, mariadb_port=port,
                               postgres_host=localdb.HOST, postgres_port=0)


def stop_mariadb(coords) -> None:
    """Stop the bench's MariaDB (SIGTERM, a normal shutdown) and reap it: started by this process, it would stay
    a zombie that localdb.stop_mariadb waits for in vain."""
    from khanza_sync import localdb

    paths = localdb._mariadb_paths(Path(coords.services_dir))
    pid = localdb._pid_alive(paths["pid"], str(paths["data"]))
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not ours (started by an earlier bench run): wait for it to go
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.05)
    raise SystemExit(f"the bench's MariaDB (pid {pid}) did not stop within 60 s")


def khanza_settings(coords):
    from khanza_sync.settings import Settings

    return Settings(khanza_db_host=coords.mariadb_host, khanza_db_port=coords.mariadb_port, khanza_db_user="root",
                    khanza_db_password="", khanza_db_name=KHANZA_DB, _env_file=None)


def fresh_khanza(settings) -> None:
    from sqlalchemy import text

    from khanza.db import make_engine
    from khanza.setup import create_demo_database

    create_demo_database(settings, KHANZA_DB, purpose="fault benchmark Khanza database")
    engine = make_engine(settings)
    with engine.begin() as conn:  # the quota is never the limit here
        conn.execute(text("UPDATE jadwal SET kuota = 100000"))
    engine.dispose()


def website_url() -> str:
    from khanza_sync import localdb, ownership

    coords = localdb.start()
    url = ownership.ensure_postgres_database(coords.postgres_admin_url, PG_DB, "fault benchmark website database")
    return ownership.fresh_website_store(url, "fault benchmark website database")  # with the trigger


# ---------------------------------------------------------------- processes


def start_prefect_server() -> tuple[subprocess.Popen, str]:
    import urllib.request

    PREFECT_HOME.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(PREFECT_HOME), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(api + "/health", timeout=2):
                return server, api
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("the benchmark's Prefect server did not start within 180 s")


def follow_env(api: str, khanza_port: int, url: str) -> dict[str, str]:
    env = {**os.environ}
    for key in list(env):  # the follow process runs on the defaults, as in production, but for what is set here
        if key.startswith(("KHANZA_", "WEBSITE_", "FOLLOW_", "CLAIM_")) and not key.startswith("KHANZA_SYNC_"):
            env.pop(key)
    env.update({"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": api,
                "PREFECT_HOME": str(PREFECT_HOME), "PREFECT_LOGGING_LEVEL": "INFO",
                "KHANZA_DB_HOST": "127.0.0.1", "KHANZA_DB_PORT": str(khanza_port), "KHANZA_DB_USER": "root",
                "KHANZA_DB_PASSWORD": "", "KHANZA_DB_NAME": KHANZA_DB, "WEBSITE_DB_URL": url,
                "BOOKING_SAME_DAY_CUTOFF_HOUR": "", "HOSPITAL_CODE": "faults"})
    return env


# ---------------------------------------------------------------- the website side


def make_registration(tag: str, i: int) -> dict:
    from tests.faults.helpers import CLINICS, fake_nik
    from tests.support import hospital_today, registration

    poli, doctor = CLINICS[i % len(CLINICS)]
    return registration(id=f"flt-{tag}-{i:04d}", nik=fake_nik(), poliklinik=poli, doctor=doctor,
                        visit_date=hospital_today() + timedelta(days=1 + (i // len(CLINICS)) % 7),
                        created_at=utc_now())


def insert(web, row: dict) -> None:
    from sqlalchemy import insert as sql_insert

    from website.schema import registrations

    with web.begin() as conn:
        conn.execute(sql_insert(registrations).values(**row))


def wait_final(web, reg_id: str, timeout: float) -> float | None:
    """time.monotonic() when the row is seen synced (final number on the website), None after `timeout`."""
    from sqlalchemy import select

    from website.schema import registrations as t

    stmt = select(t.c.status).where(t.c.id == reg_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with web.connect() as conn:
            if conn.execute(stmt).scalar() == "synced":
                return time.monotonic()
        time.sleep(0.05)
    return None


# ---------------------------------------------------------------- blips


class Blipper:
    def __init__(self, web_proxy: FaultProxy, khanza_proxy: FaultProxy, coords):
        self.web_proxy, self.khanza_proxy, self.coords = web_proxy, khanza_proxy, coords

    def outage(self, kind: str, during) -> float:
        """Make the outage of `kind`, call `during()` inside it; returns time.monotonic() at its end."""
        from khanza_sync import localdb

        if kind == "website-half-open":
            held = self.web_proxy.half_open()
            end = time.monotonic()
            during()
            if not held:
                print("  (no live website connection to hold)", flush=True)
            return end
        if kind == "mariadb-restart":
            stop_mariadb(self.coords)
            during()
            localdb.start_mariadb(self.coords)
            return time.monotonic()
        proxy = self.web_proxy if kind.startswith("website") else self.khanza_proxy
        proxy.refuse()
        started = time.monotonic()
        during()
        time.sleep(max(0.0, started + OUTAGE[kind] - time.monotonic()))
        proxy.accept()
        return time.monotonic()


def run(args) -> dict:
    from sqlalchemy.engine import make_url

    from khanza.db import make_engine
    from khanza_sync import localdb
    from tests.faults.invariants import audit
    from website import store

    coords = mariadb_coords()
    print(f"fault benchmark: its own MariaDB on port {coords.mariadb_port} ({MARIADB_DIR})", flush=True)
    localdb.start_mariadb(coords)
    settings = khanza_settings(coords)
    fresh_khanza(settings)
    url = website_url()
    web = store.make_engine(url)  # direct: arrivals and the observer never go through the proxy
    parsed = make_url(url)
    result: dict = {"load_before": os.getloadavg(), "kinds": {}}
    server = proc = None
    with FaultProxy((parsed.host, parsed.port)) as web_proxy, \
            FaultProxy((coords.mariadb_host, coords.mariadb_port)) as khanza_proxy:
        proxied = parsed.set(port=web_proxy.port).render_as_string(hide_password=False)
        try:
            server, api = start_prefect_server()
            log = open(C.OUT / "faults_follow.log", "w")
            proc = subprocess.Popen([str(Path(sys.executable).with_name("khanza-sync")), "follow"],
                                    env=follow_env(api, khanza_proxy.port, proxied), cwd=C.ROOT, stdout=log,
                                    stderr=subprocess.STDOUT)
            ids: list[str] = []
            warm = make_registration("warm", 0)
            insert(web, warm)
            ids.append(warm["id"])
            if wait_final(web, warm["id"], 240) is None:
                raise SystemExit("the follow process did not sync the warm-up registration (bench/out/faults_follow.log)")
            time.sleep(3)
            if args.idle_seconds:
                print(f"idle window {args.idle_seconds:.0f} s (follow pid {proc.pid})", flush=True)
                result["idle"] = idle_window(proc.pid, args.idle_seconds)
                idle = result["idle"]
                print(f"idle: {idle['cpu_s']:.2f} CPU s in {idle['seconds']:.0f} s = {idle['core_share_pct']:.3f}% "
                      f"of a core", flush=True)
            blipper = Blipper(web_proxy, khanza_proxy, coords)
            rng = random.Random(23)
            for kind in args.kinds.split(","):
                rows = []
                for i in range(args.blips):
                    time.sleep(rng.uniform(1.0, 3.0))  # a random phase against the LISTEN pings and probes
                    tag = f"{kind[:9]}-{i}"
                    during = make_registration(tag, 0)
                    after = make_registration(tag, 1)
                    cpu0 = cpu_seconds(proc.pid)

                    def arrive_during(row=during):
                        insert(web, row)
                        ids.append(row["id"])

                    end = blipper.outage(kind, arrive_during)
                    after["created_at"] = utc_now()
                    insert(web, after)
                    ids.append(after["id"])
                    seen = wait_final(web, after["id"], BLIP_TIMEOUT)
                    seen_during = wait_final(web, during["id"], BLIP_TIMEOUT)
                    row = {"recovery_s": None if seen is None else seen - end,
                           "during_s": None if seen_during is None else seen_during - end,
                           "cpu_s": cpu_seconds(proc.pid) - cpu0}
                    rows.append(row)
                    first = "NOT RECOVERED" if seen is None else "%.2f s" % row["recovery_s"]
                    other = "NOT SYNCED" if seen_during is None else "%.2f s" % row["during_s"]
                    print(f"{kind} #{i + 1}: first arrival after the end final in {first}; the one that arrived "
                          f"during it final {other} after the end", flush=True)
                values = [r["recovery_s"] for r in rows if r["recovery_s"] is not None]
                result["kinds"][kind] = {
                    "blips": len(rows), "recovered": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
                    "max": max(values) if values else float("nan"),
                    "during_p95": pct([r["during_s"] for r in rows if r["during_s"] is not None], 95), "rows": rows}
        finally:
            if proc is not None:
                # SIGINT: `khanza-sync follow` finishes its batch and exits. (Prefect's flow engine replaces the
                # CLI's SIGTERM handler during a flow run: SIGTERM mid-burst ends it with a crash and a traceback.)
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(30)
    result["load_after"] = os.getloadavg()
    khanza = make_engine(settings)
    report = audit(khanza, web, ids)
    result["audit"] = {"summary": report.summary(), "problems": {k: v[:10] for k, v in report.problems.items()},
                       "synced": report.synced, "total": len(ids)}
    text = (C.OUT / "faults_follow.log").read_text(errors="replace")
    result["log"] = {"tracebacks": text.count("Traceback"), "went_silent": text.count("went silent"),
                     "khanza_answers_again": text.count("Khanza answers again")}
    khanza.dispose()
    web.dispose()
    stop_mariadb(coords)
    return result


def lines(result: dict) -> list[str]:
    out = []
    for kind, k in result["kinds"].items():
        verdict = "MET" if k["recovered"] == k["blips"] and k["p95"] <= TARGET_P95 else "MISSED"
        out.append(f"{verdict}: {kind}: end of outage -> first new arrival's final number on the website "
                   f"p50 {k['p50']:.2f} s, p95 {k['p95']:.2f} s, max {k['max']:.2f} s over {k['recovered']}/"
                   f"{k['blips']} blips (target p95 <= {TARGET_P95:g} s); the arrival during the outage p95 "
                   f"{k['during_p95']:.2f} s after its end")
    if "idle" in result:
        idle = result["idle"]
        out.append(f"idle follow process: {idle['cpu_s']:.2f} CPU s over {idle['seconds']:.0f} s = "
                   f"{idle['core_share_pct']:.3f}% of a core ({idle['cpu_s_per_hour']:.1f} CPU s per idle hour)")
    a = result["audit"]
    out.append(f"{'MET' if not a['problems'] and a['synced'] == a['total'] else 'MISSED'}: correctness "
               f"{a['summary']}")
    out.append(f"follow log: {result['log']['tracebacks']} tracebacks, {result['log']['went_silent']} silent LISTEN "
               f"connections noticed, 'Khanza answers again' {result['log']['khanza_answers_again']}x")
    lb, la = result["load_before"], result["load_after"]
    out.append(f"machine: {os.cpu_count()} cores, load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, "
               f"after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blips", type=int, default=10)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args(argv)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    C.OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = run(args)
    report = lines(result)
    print("\n" + "\n".join(report))
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    (C.OUT / "faults.json").write_text(json.dumps(result, indent=2, default=str))
    (C.OUT / "faults.txt").write_text("\n".join(report) + "\n")
    a = result["audit"]
    return 0 if not a["problems"] and a["synced"] == a["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
