"""Poison rows: a registration Khanza refuses for good never blocks the others; one that keeps failing
transiently is sent for review (TOO_MANY_ATTEMPTS), not retried forever; one whose visit date passed while
Khanza was offline is rejected VISIT_DATE_PASSED, never loaded into the past."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from khanza_sync.error_codes import ErrorCode
from khanza.db import make_engine
from khanza.registration import load_batch
from tests.faults.helpers import claim_and_map, completed_run, registrations, run_sync
from tests.support import hospital_today


@pytest.fixture
def poison_trigger(khanza):
    """Khanza itself refuses one patient (a real server-side error, SQLSTATE 45000 / MySQL 1644), as a
    site-specific trigger or constraint would."""
    holder = {}

    def install(nik: str) -> None:
        with khanza.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS faults_poison")
            conn.exec_driver_sql(
                "CREATE TRIGGER faults_poison BEFORE INSERT ON pasien FOR EACH ROW "
                f"BEGIN IF NEW.no_ktp = '{nik}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF; END")
        holder["on"] = True

    yield install
    with khanza.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS faults_poison")


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_poison_rows_never_block_the_others(fault_env, monkeypatch, poison_trigger):
    fault_env.configure(monkeypatch, MAX_TRANSIENT_ATTEMPTS=3)
    past_created = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=3)
    poison = registrations(1, prefix="poison")[0]  # oldest: first in every batch
    poison["created_at"] = past_created
    tired = registrations(1, start=1, prefix="tired", attempts=2)[0]  # failed transiently twice already
    late = registrations(1, start=2, prefix="late", visit_date=hospital_today() - timedelta(days=1),
                         created_at=past_created + timedelta(seconds=1))[0]
    good = registrations(6, start=3, prefix="good")
    ids = fault_env.insert([poison, tired, late] + good)
    poison_trigger(poison["nik"])

    # Run 1, Khanza offline: nobody can tell whether an earlier attempt already loaded a row, so nothing
    # that Khanza's ledger could contradict is rejected: the passed visit date waits for the ledger, and
    # the row at the attempt limit is flagged for review (still pending, longest backoff), never rejected.
    fault_env.proxy.refuse()
    state = run_sync()
    assert state.is_failed() and "Khanza offline: 9 deferred" in state.message
    rows = fault_env.rows(ids)
    assert (rows[tired["id"]]["status"], rows[tired["id"]]["error_code"]) == ("pending", "TOO_MANY_ATTEMPTS")
    assert rows[tired["id"]]["attempts"] == 3
    for reg in [poison, late] + good:
        assert (rows[reg["id"]]["status"], rows[reg["id"]]["error_code"]) == \
            ("pending", ErrorCode.KHANZA_UNREACHABLE.value)

    # Run 2, Khanza back: the ledger has none of them, so the passed date is rejected, the poison row is
    # refused for good, and everything behind it (the flagged row too) loads.
    fault_env.proxy.accept()
    state = completed_run(fault_env)
    assert state.message.startswith("9 registrations: created=7 duplicate=0 rejected=2")
    rows = fault_env.rows(ids)
    assert (rows[late["id"]]["status"], rows[late["id"]]["error_code"]) == ("rejected", "VISIT_DATE_PASSED")
    assert (rows[poison["id"]]["status"], rows[poison["id"]]["error_code"]) == ("rejected", "KHANZA_REJECTED")
    assert all(rows[r["id"]]["status"] == "synced" for r in good + [tired])
    assert fault_env.visits() == 7
    assert poison["id"] not in set(fault_env.ledger()["registration_id"])  # rolled back whole
    with fault_env.khanza.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM pasien WHERE no_ktp = :n"), {"n": poison["nik"]}).scalar() == 0
    report = fault_env.audit(ids)
    assert report.synced == 7 and report.rejected == 2 and not report.problems, report.summary()

    # Run 3: nothing is retried forever.
    state = run_sync()
    assert state.is_completed() and state.message.startswith("0 registrations")


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_too_many_attempts_never_rejects_a_registration_already_in_khanza(fault_env, monkeypatch):
    fault_env.configure(monkeypatch, MAX_TRANSIENT_ATTEMPTS=1, KHANZA_RETRIES=0)
    ids = fault_env.insert(registrations(6, prefix="last"))
    # The link drops just before the third registration's ledger row: two are in Khanza, four are not.
    fault_env.proxy.drop_at_query(3, match=b"INSERT INTO khanza_sync_ledger")
    state = run_sync()
    assert state.is_failed()
    loaded = set(fault_env.ledger()["registration_id"])
    assert len(loaded) == 2  # two registrations made it into Khanza before the link went down
    fault_env.make_due()
    run_sync()  # Khanza is fine again
    report = fault_env.audit(ids, allow_pending=True)
    assert not report.rejected_but_loaded, (report.summary(), sorted(report.rejected_but_loaded))


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_repair_from_ledger_wins_over_a_visit_date_that_passed_meanwhile(fault_env):
    yesterday = hospital_today() - timedelta(days=1)
    created = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=2)
    ids = fault_env.insert(registrations(3, prefix="midnight", visit_date=yesterday, created_at=created))
    # Yesterday evening: loaded into Khanza (for yesterday), then the run crashed before the write-back.
    engine = make_engine(fault_env.settings)
    with pytest.MonkeyPatch.context() as mp:
        import data_checks.normalize as normalize  # the checks ran yesterday, when the date was still ahead
        real = normalize.normalize
        mp.setattr(normalize, "normalize", lambda df, **kw: real(df, **{**kw, "now_local": kw["now_local"] - timedelta(days=1)}))
        mapped = claim_and_map(fault_env, 3)
    load_batch(engine, mapped, fault_env.settings, datetime.combine(yesterday, datetime.min.time()).replace(hour=20))
    engine.dispose()
    assert len(fault_env.ledger()) == 3
    fault_env.make_due()

    run_sync()  # today
    report = fault_env.audit(ids)
    assert report.synced == 3 and not report.problems, (report.summary(), dict(report.by_error))
