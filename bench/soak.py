"""Soak: 2,000 website registrations through the real pipeline while the network to Khanza fails at 10 random points.

Usage: `KHANZA_SOAK_DB=khanza_sync_soak .venv/bin/python -m bench.soak [--registrations 2000]
[--faults 10] [--seed 7] [--batch-size 200] [--desk-clerks 1] [--website-url URL]`. It runs on the project's private
MariaDB (khanza_sync/localdb.py, started on demand; never the machine's own server, whatever the environment says)
and creates/overwrites ONLY the Khanza database named by KHANZA_SOAK_DB (default `khanza_sync_soak`) and a SQLite
website store in a temporary folder (or the --website-url you give; its online_registrations table is dropped
first). Both are replaced only if Khanza Sync created them (khanza_sync/ownership.py): anything else is refused. The pipeline reaches Khanza through the
fault proxy of tests/faults/proxy.py, which at 10 random points drops a connection before a query, swallows the
answer to a COMMIT that did happen, resets every link at once, stalls longer than the read timeout, or refuses
connections for a few seconds; a desk clerk thread meanwhile registers walk-ins with Khanza's own max()+1. Flow runs
(real Prefect engine, temporary test server) repeat until nothing is pending; a run that ends with Khanza offline
is followed by the next "scheduled" run, with the backoff wait skipped. At the end it prints lost / duplicated /
synced / rejected counts (and the detail of any problem, registration ids only, never patient data); exit status 1
when anything was lost or duplicated. It is a benchmark, not a timed test: it takes one to a few minutes.
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quiet_environment() -> None:
    """For the soak run itself only (set in its entry point, never on import: a test that imports this module for a
    function must not mute the Prefect logs of everything it starts afterwards)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # counts only on stdout; Prefect's own chatter muted

FAULT_KINDS = ["drop", "lost_commit", "drop_all", "stall", "refuse"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=2000)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--desk-clerks", type=int, default=1)
    parser.add_argument("--website-url", default=None)
    parser.add_argument("--max-runs", type=int, default=40)
    return parser.parse_args(argv)


def build_registrations(n: int, rng: random.Random) -> list[dict]:
    """Valid registrations over the next 10 days, ~5% returning patients (NIK seen before), ~3% invalid."""
    from tests.support import hospital_today, registration
    from tests.faults.helpers import CLINICS, fake_nik

    base = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)
    today = hospital_today()
    rows, niks = [], []
    for i in range(n):
        poli, doctor = CLINICS[rng.randrange(len(CLINICS))]
        nik = rng.choice(niks) if niks and rng.random() < 0.05 else fake_nik()
        niks.append(nik)
        row = registration(id=f"soak-{i:05d}", nik=nik, poliklinik=poli, doctor=doctor,
                           visit_date=today + timedelta(days=1 + rng.randrange(10)),
                           created_at=base + timedelta(milliseconds=i))
        if rng.random() < 0.03:  # deliberately invalid: the data checks reject it with a reason
            row["nik"] = "12345"
        rows.append(row)
    return rows


def plan_faults(count: int, est_queries: int, est_commits: int, rng: random.Random) -> list[tuple[str, int]]:
    plan = []
    for _ in range(count):
        kind = rng.choice(FAULT_KINDS)
        limit = est_commits if kind == "lost_commit" else est_queries
        plan.append((kind, rng.randrange(20, max(int(limit * 0.9), 40))))
    return sorted(plan, key=lambda p: p[1])


def arm(proxy, plan: list[tuple[str, int]], fired: Counter) -> None:
    def refuse_for(seconds: float):
        def _do():
            fired["refuse"] += 1
            proxy.refuse()
            threading.Timer(seconds, proxy.accept).start()
        return _do

    for kind, nth in plan:
        if kind == "drop":
            proxy.drop_at_query(nth)
        elif kind == "lost_commit":
            proxy.drop_at_query(nth, match=b"COMMIT", lose_response=True)
        elif kind == "drop_all":
            proxy.drop_all_at_query(nth)
        elif kind == "stall":
            proxy.stall_at_query(nth, 3.0)  # > KHANZA_READ_TIMEOUT
        elif kind == "refuse":  # Khanza down for 2-25 s: short ones are absorbed by retries, long ones defer
            proxy.call_before_query(nth, refuse_for(random.Random(nth).uniform(2.0, 25.0)))


def prepare_databases(khanza_db: str, website_url: str):
    """The soak's Khanza database on the private MariaDB and its website store, both made fresh; refused
    (ownership.NotOwned) before anything changes when either exists and Khanza Sync did not create it.
    Returns (settings of the direct connection, Khanza engine, website engine)."""
    from sqlalchemy import text

    from khanza.db import make_engine
    from khanza.setup import check_replaceable, create_demo_database, private_server_settings
    from khanza_sync import ownership
    from website import store

    direct = private_server_settings(khanza_db)
    check_replaceable(direct, khanza_db)
    ownership.check_website_replaceable(website_url)
    create_demo_database(direct, khanza_db, purpose="soak Khanza database")
    khanza = make_engine(direct)
    with khanza.begin() as conn:  # room for the desk's walk-ins on the busiest doctor
        conn.execute(text("UPDATE jadwal SET kuota = 5000 WHERE kd_dokter = 'D001'"))
    web = store.make_engine(ownership.fresh_website_store(website_url, "soak website store"))
    return direct, khanza, web


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    khanza_db = os.environ.get("KHANZA_SOAK_DB", "khanza_sync_soak")

    from sqlalchemy import insert, text

    from tests.faults.desk import DeskSimulator, seed_patients
    from tests.faults.invariants import audit
    from tests.faults.proxy import FaultProxy
    from website import store
    from website.schema import registrations

    tmp = tempfile.TemporaryDirectory(prefix="khanza-soak-")
    website_url = args.website_url or f"sqlite:///{Path(tmp.name) / 'website.db'}"
    print(f"soak: Khanza database {khanza_db} (recreated), {args.registrations} registrations, "
          f"{args.faults} faults, seed {args.seed}")
    direct, khanza, web = prepare_databases(khanza_db, website_url)
    direct_host, direct_port, user, password = direct.khanza_db_host, direct.khanza_db_port, direct.khanza_db_user, ""
    regs = build_registrations(args.registrations, rng)
    with web.begin() as conn:
        conn.execute(insert(registrations), regs)
    ids = [r["id"] for r in regs]

    proxy = FaultProxy((direct_host, direct_port), max_lifetime=3600).start()
    os.environ.update({
        "KHANZA_DB_HOST": "127.0.0.1", "KHANZA_DB_PORT": str(proxy.port), "KHANZA_DB_NAME": khanza_db,
        "KHANZA_DB_USER": user, "KHANZA_DB_PASSWORD": password, "WEBSITE_DB_URL": website_url,
        "KHANZA_RETRIES": "4", "KHANZA_RETRY_DELAY_SECONDS": "0.2", "KHANZA_CONNECT_TIMEOUT": "2",
        "KHANZA_READ_TIMEOUT": "2", "KHANZA_WRITE_TIMEOUT": "2", "KHANZA_LOCK_TIMEOUT_SECONDS": "1",
        "CLAIM_LEASE_SECONDS": "300", "BATCH_SIZE": str(args.batch_size),
    })
    # The loader needs ~7 queries and ~1 COMMIT per registration (measured on the batch-state loader; the
    # older per-row loader needed ~15): faults land anywhere in that span, so every one is reached.
    plan = plan_faults(args.faults, 6 * args.registrations, args.registrations, rng)
    fired: Counter = Counter()
    arm(proxy, plan, fired)
    print("soak: fault plan (kind @ nth query or COMMIT): " + ", ".join(f"{k}@{n}" for k, n in plan))

    direct_args = {"host": direct_host, "port": direct_port, "user": user, "password": password}
    desk = None
    if args.desk_clerks:
        from tests.support import hospital_today

        desk = DeskSimulator(direct_args, khanza_db, day=hospital_today() + timedelta(days=1), kd_dokter="D001",
                             kd_poli="INT", patients=seed_patients(direct_args, khanza_db, 30),
                             clerks=args.desk_clerks, per_clerk=100000, pause=(0.02, 0.08), seed=args.seed).start()

    from prefect.testing.utilities import prefect_test_harness

    from flows.sync_registrations import sync_registrations
    from tasks import resources

    started = time.monotonic()
    runs = Counter()
    with prefect_test_harness(server_startup_timeout=180):
        for _ in range(args.max_runs):
            state = sync_registrations(return_state=True)
            runs["completed" if state.is_completed() else "failed"] += 1
            print(f"soak: run {sum(runs.values())}: {'Completed' if state.is_completed() else 'Failed'}: "
                  f"{state.message}", flush=True)
            if not state.is_completed() and not state.is_failed():
                break
            with web.begin() as conn:  # the next scheduled run: skip the backoff wait
                conn.execute(text("UPDATE online_registrations SET next_attempt_at = :t WHERE status = 'pending'"),
                             {"t": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)})
            if store.count_due(web, datetime.now(timezone.utc).replace(tzinfo=None)) == 0:
                break
            if not proxy.is_accepting:
                time.sleep(0.5)
    elapsed = time.monotonic() - started
    desk_stats = desk.stop() if desk else None
    resources.dispose_all()
    proxy.stop()

    report = audit(khanza, web, ids)
    lost = len(report.lost) + len(report.rejected_but_loaded) + len(report.told_wrong)
    print()
    print(f"registrations {report.total}  synced {report.synced}  rejected {report.rejected}  "
          f"lost {lost}  duplicated {report.duplicated}")
    print(f"faults planned {len(plan)}, fired: drops {proxy.drops}, stalls {proxy.stalls}, refusals {fired['refuse']}, "
          f"not reached {proxy.pending_triggers}; proxy connections {proxy.connections}, queries {proxy.queries}")
    print(f"flow runs {sum(runs.values())} ({dict(runs)}), {elapsed:.0f}s; rejected by code {dict(report.by_error)}")
    if desk_stats:
        print(f"desk walk-ins {desk_stats.inserted} (duplicate no_rawat retries {desk_stats.duplicate_retries}, "
              f"gave up {desk_stats.gave_up})")
    for name, items in report.problems.items():
        print(f"PROBLEM {name}: {len(items)} e.g. {items[:10]}")
    khanza.dispose()
    web.dispose()
    tmp.cleanup()
    return 1 if lost or report.duplicated else 0


if __name__ == "__main__":
    _quiet_environment()
    raise SystemExit(main())
