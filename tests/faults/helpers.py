"""Small helpers shared by the fault tests (fake registrations, running the flow, reading rows back)."""
from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import text

from tests.support import check_and_map, hospital_today, registration
from website import store

# (website clinic slug, website doctor slug): every pair has a daily schedule with quota 30 in the demo data
CLINICS = [("penyakit-dalam", "dr-ahmad-sppd"), ("bedah", "dr-budi-spb"), ("anak", "dr-citra-spa"),
           ("kandungan", "dr-dewi-spog"), ("mata", "dr-eko-spm"), ("kulit-dan-kelamin", "dr-fitri-spkk"),
           ("saraf", "dr-gunawan-spn"), ("orthopedi", "dr-hana-spot"), ("gigi", "drg-indra"),
           ("telinga-hidung-tenggorokan", "dr-joko-sptht"), ("penyakit-dalam", "dr-kartika-sppd")]
_serial = itertools.count(1)


def fake_nik() -> str:
    return f"3310{next(_serial) + int(time.time() * 1000) % 10**9:012d}"


def registrations(n: int, *, start: int = 0, prefix: str = "reg", **overrides) -> list[dict]:
    """n valid registrations for tomorrow, spread over the clinics, oldest first (distinct created_at)."""
    base = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=30)
    rows = []
    for i in range(start, start + n):
        poli, doctor = CLINICS[i % len(CLINICS)]
        values = {"id": f"{prefix}-{i:05d}", "nik": fake_nik(), "poliklinik": poli, "doctor": doctor,
                  "created_at": base + timedelta(milliseconds=i), **overrides}
        rows.append(registration(**values))
    return rows


def claim_and_map(fault_env, limit: int):
    """What the flow does before loading: claim under a lease, check, map (plain functions, no Prefect)."""
    now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
    return all_mapped(fault_env, store.claim_pending(fault_env.web, limit, now_utc,
                                                     fault_env.settings.claim_lease_seconds))


def all_mapped(fault_env, batch: pd.DataFrame) -> pd.DataFrame:
    """`batch` checked and mapped; every row must pass both."""
    mapped, invalid, unmapped = check_and_map(batch, fault_env.settings, fault_env.khanza)
    assert invalid.empty and unmapped.empty
    return mapped


def run_sync(**params):
    """Run the real flow on the real Prefect engine; returns its final state (never raises for Failed)."""
    from flows.sync_registrations import sync_registrations

    return sync_registrations(return_state=True, **params)


def rows_by_id(web, ids=None) -> dict[str, dict]:
    """Website rows by id; timestamps as naive datetimes (SQLite returns text) and NULL as None."""
    frame = store.fetch_rows(web, ids)
    out = {}
    for row in frame.to_dict("records"):
        for column in ("next_attempt_at", "synced_at", "created_at"):
            value = row[column]
            row[column] = None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()
        out[row["id"]] = {k: (None if not isinstance(v, (list, dict)) and pd.isna(v) else v) for k, v in row.items()}
    return out


def make_due(web) -> None:
    """Move every pending row's next attempt into the past (what waiting out the backoff would do)."""
    with web.begin() as conn:
        conn.execute(text("UPDATE online_registrations SET next_attempt_at = :t WHERE status = 'pending' "
                          "AND next_attempt_at IS NOT NULL"),
                     {"t": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)})


def visit_count(khanza) -> int:
    with khanza.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM reg_periksa")).scalar_one())


def ledger_frame(khanza) -> pd.DataFrame:
    with khanza.connect() as conn:
        return pd.read_sql(text("SELECT registration_id, outcome, no_rkm_medis, no_rawat, no_reg "
                                "FROM khanza_sync_ledger ORDER BY registration_id"), conn)


def tomorrow():
    return hospital_today() + timedelta(days=1)


def completed_run(fault_env, *, due: bool = True):
    """The run after a fault is cleared, asserted Completed (the waiting registrations first made due again,
    unless `due` is false); returns its final state."""
    if due:
        fault_env.make_due()
    state = run_sync()
    assert state.is_completed(), state.message
    return state


def assert_all_synced(fault_env, ids, count: int) -> None:
    """The audit of `ids` finds `count` synced and no problems."""
    report = fault_env.audit(ids)
    assert report.synced == count and not report.problems, report.summary()
