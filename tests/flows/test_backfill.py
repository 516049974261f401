"""backfill_registrations on MariaDB + SQLite/PostgreSQL under the Prefect harness: dry run writes nothing,
re-queues rejected rows after a mapping fix, stays inside its window, and a second run changes nothing.
Also: no NIK, name or phone number in any log record or artifact of backfill + reconcile runs."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from sqlalchemy import text

from flows.backfill_registrations import backfill_registrations
from flows.reconcile_queue_numbers import reconcile_queue_numbers
from khanza_sync.cli import main
from khanza_sync.settings import load_settings
from tests.support import (completed, extra_mappings, flow_run_artifacts, hospital_today, insert_registrations,
                           registration, website_rows)
from website import store


def khanza_state(khanza) -> dict:
    with khanza.connect() as conn:
        return {t: conn.execute(text(f"CHECKSUM TABLE {t}")).fetchone()[1]
                for t in ["reg_periksa", "booking_registrasi", "pasien", "khanza_sync_ledger", "set_no_rkm_medis"]}


def rejected(reg: dict, code: str) -> dict:
    return {**reg, "status": "rejected", "error_code": code, "last_error": "x", "attempts": 1}


def test_dry_run_writes_nothing(flow_env, khanza):
    tomorrow = hospital_today() + timedelta(days=1)
    insert_registrations(flow_env, [registration(id=f"ok{i}") for i in range(3)]
                         + [registration(id="bad-nik", nik="123"), registration(id="bad-poli", poliklinik="jantung"),
                            rejected(registration(id="was-rejected"), "UNKNOWN_DOCTOR"),
                            registration(id="later", visit_date=tomorrow + timedelta(days=5))])
    web_before, khanza_before = website_rows(flow_env), khanza_state(khanza)

    state = completed(backfill_registrations, start=tomorrow, end=tomorrow, status="rejected", dry_run=True)
    assert state.message.startswith("DRY RUN")
    assert "re-queue 1 rejected" in state.message and "create in Khanza 4" in state.message
    assert "reject 2" in state.message
    pd.testing.assert_frame_equal(website_rows(flow_env), web_before)  # not even a claim (attempts, lease)
    assert khanza_state(khanza) == khanza_before
    arts = flow_run_artifacts(state)
    assert {"backfill-summary-default", "backfill-dry-run-default", "backfill-progress-default"} <= set(arts)
    table = json.loads(arts["backfill-dry-run-default"].data)
    by_would = {(r["would"], r["error_code"]): r for r in table}
    assert by_would[("reject", "INVALID_NIK")]["registration_ids"] == "bad-nik"
    assert by_would[("reject", "UNKNOWN_POLI")]["registration_ids"] == "bad-poli"
    assert by_would[("re-queue rejected", "")]["registration_ids"] == "was-rejected"
    assert arts["backfill-progress-default"].data == 100.0


def test_requeue_after_mapping_fix_and_second_run_changes_nothing(flow_env, khanza, monkeypatch, tmp_path):
    tomorrow = hospital_today() + timedelta(days=1)
    insert_registrations(flow_env, [
        registration(id="p1"), registration(id="p2"),
        rejected(registration(id="new-doc", doctor="dr-ahmad-baru"), "UNKNOWN_DOCTOR"),
        rejected(registration(id="still-bad", nik="0000000000000000"), "INVALID_NIK"),
        registration(id="outside", visit_date=tomorrow + timedelta(days=4)),
        rejected(registration(id="outside-rej", visit_date=tomorrow + timedelta(days=4)), "UNKNOWN_DOCTOR"),
    ])
    # The data team fixes the mapping: the website's new slug is the same Khanza doctor.
    extra_mappings(monkeypatch, tmp_path, dokter="dr-ahmad-baru: D001\n")

    first = completed(backfill_registrations, start=tomorrow, end=tomorrow, status="rejected")
    assert "re-queued 2 rejected" in first.message and "4 registrations: created=3" in first.message
    web = website_rows(flow_env)
    assert (web.loc[["p1", "p2", "new-doc"], "status"] == "synced").all()
    assert web.loc["still-bad", ["status", "error_code"]].tolist() == ["rejected", "INVALID_NIK"]
    assert web.loc["outside", "status"] == "pending" and web.loc["outside", "attempts"] == 0  # window respected
    assert web.loc["outside-rej", "status"] == "rejected"
    khanza_after_first = khanza_state(khanza)

    second = completed(backfill_registrations, start=tomorrow, end=tomorrow, status="rejected")
    assert "created=0" in second.message and "duplicate=0" in second.message
    again = website_rows(flow_env)
    # still-bad was re-queued and rejected again: decided anew (synced_at), nothing else about any row changed
    assert again.loc["still-bad", "synced_at"] >= web.loc["still-bad", "synced_at"]
    pd.testing.assert_frame_equal(again.drop(columns="synced_at"), web.drop(columns="synced_at"))
    pd.testing.assert_frame_equal(again.drop(index="still-bad"), web.drop(index="still-bad"))
    assert khanza_state(khanza) == khanza_after_first


def test_window_by_submission_day_and_cli(flow_env, khanza):
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    insert_registrations(flow_env, [registration(id="old", created_at=now - timedelta(days=3)),
                                    registration(id="new", created_at=now - timedelta(minutes=1))])
    day = (datetime.now(load_settings().tz) - timedelta(days=3)).date()
    assert main(["backfill", "--start", day.isoformat(), "--end", day.isoformat(), "--by", "submitted"]) == 0
    web = website_rows(flow_env)
    assert web.loc["old", "status"] == "synced" and web.loc["new", "status"] == "pending"


def test_no_patient_data_in_logs_or_artifacts(flow_env, khanza):
    """A few hundred registrations through backfill (incl. dry run) and reconcile: scan every log and artifact."""
    tomorrow = hospital_today() + timedelta(days=1)
    doctors = [("penyakit-dalam", "dr-ahmad-sppd"), ("bedah", "dr-budi-spb"), ("anak", "dr-citra-spa"),
               ("mata", "dr-eko-spm"), ("saraf", "dr-gunawan-spn"), ("gigi", "drg-indra")]
    regs = []
    for i in range(240):
        poli, doctor = doctors[i % len(doctors)]
        regs.append(registration(id=f"pii-{i:03d}", full_name=f"Sutrisno Wibowo{chr(65 + i % 26)}{chr(65 + i // 26)}",
                                 phone=f"0813{i:08d}", poliklinik=poli, doctor=doctor,
                                 visit_date=tomorrow + timedelta(days=(i // 6) % 3),
                                 address=f"Jalan Kenanga Raya {i}", local_queue_number=f"LCL-{i:04d}"))
    regs[5]["nik"] = "12345"  # a few rejections: their rule reports must name ids only
    regs[6]["phone"] = "12"
    insert_registrations(flow_env, regs)
    end = tomorrow + timedelta(days=2)
    runs = [backfill_registrations(start=tomorrow, end=end, dry_run=True, return_state=True),
            backfill_registrations(start=tomorrow, end=end, batch_size=100, return_state=True)]
    web = website_rows(flow_env)
    synced = web.index[web["status"] == "synced"][:3]
    engine = store.make_engine(flow_env)
    with engine.begin() as conn:
        conn.execute(text("UPDATE online_registrations SET status = 'cancel_requested' WHERE id = :id"),
                     [{"id": i} for i in synced])
    engine.dispose()
    runs.append(reconcile_queue_numbers(return_state=True))
    assert all(s.is_completed() for s in runs), [s.message for s in runs]
    assert (web["status"] == "synced").sum() > 200

    async def everything():
        ids = [s.state_details.flow_run_id for s in runs]
        async with get_client() as client:
            logs, page = [], None
            while page is None or len(page) == 200:
                page = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                                              limit=200, offset=len(logs))
                logs += page
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
            flow_runs = [await client.read_flow_run(i) for i in ids]
        return logs, arts, flow_runs
    logs, arts, flow_runs = asyncio.run(everything())
    assert logs and len(arts) >= 8
    blob = "\n".join([log.message for log in logs] + [json.dumps(a.data, default=str) + str(a.description)
                                                      for a in arts]
                     + [json.dumps(fr.parameters, default=str) + str(fr.name) + str(fr.state.message)
                        for fr in flow_runs]).lower()
    assert "pii-005" in blob  # the scan looks at real content
    for reg in regs:
        digits = "".join(ch for ch in reg["phone"] if ch.isdigit())
        for secret in (reg["nik"], reg["full_name"].lower(), reg["address"].lower(), digits):
            if len(secret) >= 5:
                assert secret not in blob, reg["id"]
        assert reg["birth_date"].isoformat() not in blob
