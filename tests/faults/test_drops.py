"""The network drops Khanza connections mid-batch (before a query, after a COMMIT the client never hears
about, all at once) and recovers while Prefect retries: every registration ends synced exactly once. The same
for the website's MariaDB: its connection cut at the write-back's COMMIT."""
from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests.faults.helpers import assert_all_synced, registrations, run_sync
from tests.faults.proxy import FaultProxy


def batch_with_returning_patients() -> list[dict]:
    """34 new patients; 4 of them register at a second clinic; 2 register twice at the same clinic."""
    regs = registrations(34, prefix="drop")
    extra = []
    for i, source in enumerate(regs[:4]):  # same NIK, another clinic: one patient, two visits
        other = registrations(1, start=100 + i, prefix="drop-2nd")[0]
        other.update(nik=source["nik"])
        if other["poliklinik"] == source["poliklinik"]:
            other.update(poliklinik="mata", doctor="dr-eko-spm")
        extra.append(other)
    for i, source in enumerate(regs[10:12]):  # same NIK, same clinic, same day: the existing visit is returned
        again = registrations(1, start=200 + i, prefix="drop-again")[0]
        again.update(nik=source["nik"], poliklinik=source["poliklinik"], doctor=source["doctor"])
        extra.append(again)
    return regs + extra


@pytest.mark.parametrize("website_url", ["postgresql", "mariadb"], indirect=True)
def test_connections_dropped_mid_batch_recover_during_retries(fault_env, monkeypatch):
    fault_env.configure(monkeypatch, KHANZA_RETRIES=6, KHANZA_RETRY_DELAY_SECONDS=0.1)
    regs = batch_with_returning_patients()
    ids = fault_env.insert(regs)

    proxy = fault_env.proxy
    proxy.drop_at_query(60)  # mid-transaction: the open registration is rolled back by the server
    proxy.drop_at_query(12, match=b"COMMIT", lose_response=True)  # committed, but the client only sees 2013
    proxy.drop_all_at_query(300)  # the whole link goes down at once
    proxy.drop_at_query(30, match=b"INSERT INTO reg_periksa", lose_response=True)  # visit written, answer lost

    state = run_sync(batch_size=50)

    assert state.is_completed(), state.message
    assert proxy.pending_triggers == 0 and proxy.drops >= 4  # every fault really happened
    assert proxy.connections >= 5  # and each one cost a reconnect
    report = fault_env.audit(ids)
    assert not report.problems, report.summary()
    assert report.synced == 40 and report.rejected == 0
    rows = fault_env.rows(ids)
    # 38 visits (34 + 4 second clinics); the 2 same-clinic repeats got the existing visit's numbers
    assert fault_env.visits() == 38
    ledger = fault_env.ledger()
    assert len(ledger) == 40 and ledger["outcome"].value_counts().to_dict() == {"created": 38, "duplicate": 2}
    for again in [r for r in regs if r["id"].startswith("drop-again")]:
        first = next(r for r in regs[10:12] if r["nik"] == again["nik"])
        assert rows[again["id"]]["no_rawat"] == rows[first["id"]]["no_rawat"]
        assert rows[again["id"]]["error_code"] == "DUPLICATE_REGISTRATION"
    for second in [r for r in regs if r["id"].startswith("drop-2nd")]:
        first = next(r for r in regs[:4] if r["nik"] == second["nik"])
        assert rows[second["id"]]["no_rkm_medis"] == rows[first["id"]]["no_rkm_medis"]
        assert rows[second["id"]]["no_rawat"] != rows[first["id"]]["no_rawat"]


@pytest.mark.parametrize("website_url", ["mariadb"], indirect=True)
def test_website_mariadb_connection_cut_mid_claim_and_at_the_write_back(fault_env, monkeypatch):
    """The website's MariaDB behind the fault proxy. The first claim's connection is cut before its lease UPDATE
    reaches the server (the server rolls the claim back); the first write-back's COMMIT reaches the server but its
    answer is lost with the connection (written, though the pipeline cannot know). Both tasks retry on a new
    connection: every registration synced once, one visit each, nothing left pending."""
    url = make_url(fault_env.website_url)
    with FaultProxy((url.host, url.port), max_lifetime=240) as web_proxy:
        fault_env.configure(monkeypatch, WEBSITE_DB_URL=url.set(port=web_proxy.port).render_as_string(hide_password=False))
        ids = fault_env.insert(registrations(24, prefix="wcut"))
        web_proxy.drop_at_query(1, match=b"UPDATE online_registrations SET attempts")  # the lease
        # the COMMIT that follows the first write-back UPDATE (connections also COMMIT when they open)
        web_proxy.call_before_query(1, lambda: web_proxy.drop_at_query(1, match=b"COMMIT", lose_response=True),
                                    match=b"UPDATE online_registrations SET status")
        state = run_sync(batch_size=12)
        assert web_proxy.pending_triggers == 0 and web_proxy.drops >= 2, state.message
    assert state.is_completed(), state.message
    assert state.message.startswith("24 registrations: created=24"), state.message
    assert_all_synced(fault_env, ids, 24)
    assert fault_env.visits() == 24 and len(fault_env.ledger()) == 24
    assert all(row["status"] == "synced" for row in fault_env.rows(ids).values())
