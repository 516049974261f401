"""sync_registrations end to end: website (SQLite and PostgreSQL) -> Khanza (MariaDB) -> website."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pandas as pd
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import text

from flows.sync_registrations import sync_registrations
from khanza_sync.cli import main
from tests.support import base_settings, insert_registrations, registration, website_rows
from website import store


def test_sync_end_to_end(flow_env, khanza):
    good = [registration(id=f"ok-{i}") for i in range(4)]
    bad = [registration(id="bad-nik", nik="12AB"), registration(id="bad-poli", poliklinik="jantung"),
           registration(id="bad-bpjs", payment="bpjs", bpjs_number=None)]
    repeat = registration(id="ok-repeat", nik=good[0]["nik"], created_at=good[0]["created_at"] + timedelta(seconds=1))
    insert_registrations(flow_env, good + bad + [repeat])

    state = sync_registrations(batch_size=3, return_state=True)
    assert state.is_completed(), state.message
    assert "8 registrations: created=4 duplicate=1 rejected=3 deferred=0" in state.message

    web = website_rows(flow_env)
    assert web.loc["bad-nik", ["status", "error_code"]].tolist() == ["rejected", "INVALID_NIK"]
    assert web.loc["bad-poli", "error_code"] == "UNKNOWN_POLI"
    assert web.loc["bad-bpjs", "error_code"] == "INVALID_BPJS_NUMBER"
    assert web.loc["ok-repeat", ["status", "error_code"]].tolist() == ["synced", "DUPLICATE_REGISTRATION"]
    assert web.loc["ok-repeat", "no_rawat"] == web.loc["ok-0", "no_rawat"]
    with khanza.connect() as conn:
        visits = {r.no_rawat: (r.no_reg, r.no_rkm_medis) for r in conn.execute(text("SELECT * FROM reg_periksa"))}
    assert len(visits) == 4
    for reg_id in [g["id"] for g in good]:
        row = web.loc[reg_id]
        assert row["status"] == "synced" and pd.notna(row["synced_at"])
        assert visits[row["no_rawat"]] == (row["no_reg"], row["no_rkm_medis"])  # the website shows Khanza's numbers
    assert sorted(v[0] for v in visits.values()) == ["001", "002", "003", "004"]

    again = sync_registrations(return_state=True)  # nothing pending any more
    assert again.is_completed() and again.message.startswith("0 registrations")
    with get_client(sync_client=True) as client:  # run names say what happened, for the UI's runs list
        first = client.read_flow_run(state.state_details.flow_run_id).name
        empty = client.read_flow_run(again.state_details.flow_run_id).name
    assert first.startswith("sync ") and first.endswith("4 created, 1 duplicate, 3 rejected")
    assert empty.endswith("nothing pending")


def test_khanza_offline_defers_then_resumes(flow_env, khanza, monkeypatch):
    insert_registrations(flow_env, [registration(id=f"r{i}") for i in range(3)] + [registration(id="bad", nik="1")])
    khanza_port = base_settings().khanza_db_port
    monkeypatch.setenv("KHANZA_DB_PORT", "1")  # nothing listens there: connection refused
    state = sync_registrations(return_state=True)
    assert state.is_failed()
    assert "Khanza offline: 3 deferred" in state.message
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).name.endswith("Khanza offline · 3 deferred")

    web = website_rows(flow_env)
    pending = web.loc[["r0", "r1", "r2"]]
    assert (pending["status"] == "pending").all() and (pending["error_code"] == "KHANZA_UNREACHABLE").all()
    assert (pending["attempts"] == 1).all() and pending["next_attempt_at"].notna().all()
    assert web.loc["bad", "status"] == "rejected"  # data problems are still reported while Khanza is away

    monkeypatch.setenv("KHANZA_DB_PORT", str(khanza_port))  # Khanza is back
    deadline = time.time() + 10
    while time.time() < deadline:  # per-registration backoff: ~1 s with these settings
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        if store.count_due(store.make_engine(flow_env), now) == 3:
            break
        time.sleep(0.3)
    resumed = sync_registrations(return_state=True)
    assert resumed.is_completed(), resumed.message
    web = website_rows(flow_env)
    assert (web.loc[["r0", "r1", "r2"], "status"] == "synced").all()
    assert (web.loc[["r0", "r1", "r2"], "attempts"] == 2).all()
    with khanza.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM reg_periksa")).scalar() == 3


def test_run_takes_rows_that_waited_for_khanza_at_once(flow_env, khanza, monkeypatch):
    """Khanza back: the next scheduled run takes the rows deferred only because Khanza was away at once, not at
    the end of their backoff (issue 23); a row waiting for another reason keeps its backoff."""
    monkeypatch.setenv("KHANZA_RETRY_DELAY_SECONDS", "60")  # a deferred row waits at least 45 s
    monkeypatch.setenv("KHANZA_RETRIES", "0")  # (the same delay between Prefect retries)
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=1)
    busy = registration(id="busy", error_code="KHANZA_BUSY", next_attempt_at=later, attempts=1)
    insert_registrations(flow_env, [registration(id=f"w{i}") for i in range(3)] + [busy])
    khanza_port = base_settings().khanza_db_port
    monkeypatch.setenv("KHANZA_DB_PORT", "1")  # nothing listens there: connection refused
    assert sync_registrations(return_state=True).is_failed()
    waiting = website_rows(flow_env).loc[["w0", "w1", "w2"]]
    assert (waiting["error_code"] == "KHANZA_UNREACHABLE").all()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert (pd.to_datetime(waiting["next_attempt_at"]) > now + timedelta(seconds=30)).all()

    monkeypatch.setenv("KHANZA_DB_PORT", str(khanza_port))  # Khanza is back; their backoff has not ended
    state = sync_registrations(return_state=True)
    assert state.is_completed(), state.message
    assert state.message.startswith("3 registrations: created=3"), state.message
    web = website_rows(flow_env)
    assert (web.loc[["w0", "w1", "w2"], "status"] == "synced").all()
    assert web.loc["busy", "status"] == "pending" and web.loc["busy", "error_code"] == "KHANZA_BUSY"
    assert pd.to_datetime(web.loc["busy", "next_attempt_at"]) > now + timedelta(minutes=30)  # its backoff kept


def test_run_leaves_artifacts_without_patient_data(flow_env):
    regs = [registration(id="art-1"), registration(id="art-2", nik="99")]
    insert_registrations(flow_env, regs)
    state = sync_registrations(return_state=True)
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        mine = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    keys = {a.key for a in mine}
    assert {"sync-summary-default", "sync-outcomes-default", "sync-data-checks-default"} <= keys
    blob = " ".join(str(a.data) for a in mine)
    assert "art-2" in blob and "INVALID_NIK" in blob
    for reg in regs:
        for field in ("nik", "full_name", "phone", "address"):
            assert str(reg[field]) not in blob


def test_cli_prints_summary(flow_env, capsys):
    insert_registrations(flow_env, [registration(id="cli-1")])
    assert main(["sync", "--batch-size", "10"]) == 0
    assert "1 registrations: created=1" in capsys.readouterr().out
