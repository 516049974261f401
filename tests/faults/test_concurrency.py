"""Concurrent writers: Khanza desk staff numbering walk-ins with their unlocked max()+1 into the same doctor
and day while the pipeline loads, two pipeline loads at once, and concurrent claims on the website store
(PostgreSQL, SQLite, and MariaDB with both of its claim methods)."""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pandas as pd
import pytest
from sqlalchemy import text

from khanza.db import make_engine
from khanza.registration import load_batch
from tests.faults.desk import DeskSimulator, seed_patients
from tests.faults.helpers import all_mapped, registrations, run_sync, tomorrow
from tests.support import KHANZA_TEST_DB
from website import store

DOCTOR = ("penyakit-dalam", "dr-ahmad-sppd", "D001", "INT")


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def raise_quota(khanza, kd_dokter: str, kuota: int = 2000) -> None:
    with khanza.begin() as conn:
        conn.execute(text("UPDATE jadwal SET kuota = :k WHERE kd_dokter = :d"), {"k": kuota, "d": kd_dokter})


@pytest.fixture
def direct_conn_args(khanza):
    url = khanza.url
    return {"host": url.host, "port": url.port or 3306, "user": url.username, "password": url.password or ""}


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_desk_walk_ins_and_two_pipeline_loads_at_once(fault_env, direct_conn_args, caplog):
    poli, doctor, kd_dokter, kd_poli = DOCTOR
    raise_quota(fault_env.khanza, kd_dokter)
    ids = fault_env.insert(registrations(60, prefix="busy", poliklinik=poli, doctor=doctor))

    # Two workers claim at the same moment: disjoint halves.
    barrier = threading.Barrier(2)

    def claim(_):
        barrier.wait()
        return store.claim_pending(fault_env.web, 30, now_utc(), 60)

    with ThreadPoolExecutor(2) as pool:
        claims = list(pool.map(claim, range(2)))
    assert sorted(len(c) for c in claims) == [30, 30]
    assert not set(claims[0]["id"]) & set(claims[1]["id"])
    batches = [all_mapped(fault_env, c) for c in claims]

    desk = DeskSimulator(direct_conn_args, KHANZA_TEST_DB, day=tomorrow(), kd_dokter=kd_dokter, kd_poli=kd_poli,
                         patients=seed_patients(direct_conn_args, KHANZA_TEST_DB, 20), clerks=2, per_clerk=5000,
                         pause=(0.004, 0.015)).start()
    while desk.stats.inserted < 20:  # the desk is busy before the pipeline starts
        time.sleep(0.01)
    engine = make_engine(fault_env.settings)  # the pipeline's own engine (through the proxy, no faults)
    clock = datetime.now(fault_env.settings.tz).replace(tzinfo=None)
    desk_before = desk.stats.inserted
    try:
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(lambda b: load_batch(engine, b, fault_env.settings, clock), batches))
        desk_during = desk.stats.inserted - desk_before
    finally:
        stats = desk.stop()
        engine.dispose()
    for frame in outcomes:
        store.write_outcomes(fault_env.web, frame, now_utc())

    assert not stats.errors
    assert desk_during >= 10, "the desk must still have been registering while the pipeline loaded"
    result = pd.concat(outcomes)
    refusals = Counter(r.getMessage().split(": ", 1)[-1] for r in caplog.records if "refused by Khanza" in r.getMessage())
    assert (result["status"] == "synced").all() and (result["outcome"] == "created").all(), \
        (result["error_code"].value_counts().to_dict(), dict(refusals))
    assert fault_env.visits() == 60 + stats.inserted
    report = fault_env.audit(ids)
    assert report.synced == 60 and not report.problems, report.summary()
    # The pipeline's numbers really interleave with the desk's (same doctor, same day).
    with fault_env.khanza.connect() as conn:
        order = [r[0] for r in conn.execute(text(
            "SELECT l.registration_id IS NOT NULL FROM reg_periksa r LEFT JOIN khanza_sync_ledger l "
            "ON l.no_rawat = r.no_rawat ORDER BY r.no_rawat"))]
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert switches >= 2, "pipeline and desk visits did not interleave"


def overlapping_loads(fault_env, n: int = 16):
    """Two loads of the SAME claimed registrations (a lease that ran out while a slow run still held them).
    The test holds the pipeline's numbering lock until both loads are queued on it, so both read the ledger
    before either writes: the worst interleaving, made deterministic."""
    ids = fault_env.insert(registrations(n, prefix="twice"))
    batch = all_mapped(fault_env, store.claim_pending(fault_env.web, n, now_utc(), 60))
    engine = make_engine(fault_env.settings)
    clock = datetime.now(fault_env.settings.tz).replace(tzinfo=None)
    lock_name = f"khanza_sync:{fault_env.settings.khanza_db_name}"
    holder = fault_env.khanza.connect()
    try:
        assert holder.execute(text("SELECT GET_LOCK(:n, 5)"), {"n": lock_name}).scalar() == 1
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(load_batch, engine, batch, fault_env.settings, clock) for _ in range(2)]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waiting = holder.execute(text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK%%'"
                )).scalar()
                if waiting >= 2:
                    break
                time.sleep(0.02)
            holder.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name})
            outcomes = [f.result(timeout=60) for f in futures]
    finally:
        holder.close()
        engine.dispose()
    return ids, outcomes


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_overlapping_loads_never_make_a_second_visit(fault_env):
    ids, outcomes = overlapping_loads(fault_env)
    first = outcomes[0] if (outcomes[0]["outcome"] == "created").all() else outcomes[1]
    assert (first["outcome"] == "created").all()
    store.write_outcomes(fault_env.web, first, now_utc())
    assert fault_env.visits() == len(ids) and len(fault_env.ledger()) == len(ids)
    report = fault_env.audit(ids)
    assert report.synced == len(ids) and not report.problems, report.summary()


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_overlapping_loads_both_report_the_same_synced_numbers(fault_env):
    ids, outcomes = overlapping_loads(fault_env)
    # Whichever run writes back first must not tell a patient with a visit that they were rejected.
    for frame in reversed(outcomes):
        store.write_outcomes(fault_env.web, frame.sort_values("id"), now_utc())
    for frame in outcomes:
        assert (frame["status"] == "synced").all(), frame["error_code"].value_counts().to_dict()
    columns = ["id", "no_rawat", "no_reg", "no_rkm_medis"]
    assert outcomes[0].sort_values("id")[columns].reset_index(drop=True).equals(
        outcomes[1].sort_values("id")[columns].reset_index(drop=True))
    report = fault_env.audit(ids)
    assert not report.problems, report.summary()


@pytest.fixture
def claims_seen(fault_env):
    """Which claim statements reached the website database (SKIP LOCKED, the claim token, RETURNING)."""
    from sqlalchemy import event

    seen = Counter()

    def count(conn, cursor, statement, parameters, context, executemany):
        for marker in ("SKIP LOCKED", "claim_token", "RETURNING"):
            if marker in statement:
                seen[marker] += 1
    event.listen(fault_env.web, "before_cursor_execute", count)
    yield seen
    event.remove(fault_env.web, "before_cursor_execute", count)


CLAIMS = [pytest.param("postgresql", None, id="postgresql"), pytest.param("sqlite", None, id="sqlite"),
          pytest.param("mariadb", "skip_locked", id="mariadb-skip-locked"),
          pytest.param("mariadb", "token", id="mariadb-token")]


@pytest.mark.parametrize("website_url, method", CLAIMS, indirect=["website_url"])
def test_concurrent_claims_take_disjoint_rows(fault_env, claims_seen, monkeypatch, method):
    """Four workers claim at once. On MariaDB both of its ways: FOR UPDATE SKIP LOCKED (MariaDB 10.6+, what
    this server has) and the claim token of older servers (forced here)."""
    if method == "token":
        monkeypatch.setattr(store, "claim_method", lambda dialect: "token")
    fault_env.insert(registrations(200, prefix="claim"))
    barrier = threading.Barrier(4)

    def worker(_):
        taken = []
        barrier.wait()
        while True:
            batch = store.claim_pending(fault_env.web, 7, now_utc(), 60)
            if batch.empty:
                return taken
            taken.extend(batch["id"])

    with ThreadPoolExecutor(4) as pool:
        claimed = list(pool.map(worker, range(4)))
    every = [i for part in claimed for i in part]
    assert len(every) == len(set(every)) == 200, "a row was claimed twice or never"
    assert sum(1 for part in claimed if part) >= 2, "the workers did not really run concurrently"
    attempts = store.fetch_rows(fault_env.web)["attempts"]
    assert (attempts == 1).all()
    marker = {"skip_locked": "SKIP LOCKED", "token": "claim_token"}.get(method, "RETURNING")
    assert claims_seen[marker] >= 200 // 7, dict(claims_seen)  # every claim went that way


@pytest.mark.parametrize("website_url", ["sqlite", "mariadb"], indirect=True)
def test_desk_winning_every_no_rawat_race_does_not_reject_the_registration(fault_env, direct_conn_args):
    """Deterministic race: just before each of the pipeline's INSERTs into reg_periksa, a desk clerk commits a
    walk-in with the same max()+1 no_rawat. Five times in a row (a busy morning at the desk)."""
    poli, doctor, kd_dokter, kd_poli = DOCTOR
    desk = DeskSimulator(direct_conn_args, KHANZA_TEST_DB, day=tomorrow(), kd_dokter=kd_dokter, kd_poli=kd_poli,
                         patients=seed_patients(direct_conn_args, KHANZA_TEST_DB, 3))
    ids = fault_env.insert(registrations(3, prefix="race", poliklinik=poli, doctor=doctor))
    for nth in range(1, 6):
        fault_env.proxy.call_before_query(nth, desk.walk_in_now, match=b"INSERT INTO reg_periksa")

    first = run_sync()
    assert fault_env.proxy.calls == 5 and desk.stats.inserted == 5
    fault_env.make_due()
    run_sync()  # a later run: the race is over
    report = fault_env.audit(ids)
    assert report.synced == 3 and not report.problems, (first.message, report.summary(), dict(report.by_error))
