"""The schema version of Khanza Sync's tables in Khanza (khanza/migrations.py). An installation made before the
ledger had its cancellation columns, UTC created_at, and the version table: `khanza-sync setup` (khanza.setup
create_ledger -> migrations.upgrade) adds them, converts created_at from hospital time to UTC once (recording the
offset), records the version, keeps every row, and changes nothing when run again. Jobs refuse a schema older or
newer than their release in one line."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from khanza import ledger, migrations
from khanza.db import missing_columns, missing_tables
from khanza.setup import create_ledger
from tests.support import base_settings, rows

# The ledger as releases before issue 18 created it (sql/khanza_ledger.sql of that time).
OLD_LEDGER = """CREATE TABLE khanza_sync_ledger (
  registration_id varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  outcome enum('created','duplicate') NOT NULL,
  target enum('reg_periksa','booking') NOT NULL,
  no_rkm_medis varchar(15) NOT NULL,
  no_rawat varchar(17) DEFAULT NULL,
  no_reg varchar(8) NOT NULL,
  kd_poli char(5) NOT NULL,
  kd_dokter varchar(20) NOT NULL,
  tanggal date NOT NULL,
  patient_created tinyint(1) NOT NULL DEFAULT 0,
  created_at datetime NOT NULL,
  PRIMARY KEY (registration_id),
  KEY khanza_sync_ledger_day (tanggal, kd_dokter),
  KEY khanza_sync_ledger_rawat (no_rawat)
) ENGINE=InnoDB DEFAULT CHARSET=latin1"""


def test_setup_adds_the_cancellation_columns_to_an_old_ledger_and_keeps_its_rows(khanza):
    try:
        old_ledger_upgraded_by_setup(khanza)
    finally:  # whatever happened, the next test finds a current ledger
        with khanza.begin() as conn:
            ledger.create_table(conn)


def old_ledger_upgraded_by_setup(khanza):
    with khanza.begin() as conn:  # the test database is Khanza Sync's own
        make_release_0_3(conn)
        conn.execute(text("INSERT INTO khanza_sync_ledger VALUES ('old-1', 'created', 'booking', '000050', NULL, "
                          "'003', 'INT', 'D001', '2026-01-05', 0, '2026-01-02 08:30:00')"))
        assert migrations.found_version(conn) == 1 and migrations.recorded_version(conn) is None
        assert "khanza-sync setup" in migrations.problem(conn)
        before = [dict(r) for r in conn.execute(text("SELECT * FROM khanza_sync_ledger")).mappings()]
        assert missing_columns(conn, "khanza_sync_ledger", ["cancel_result", "cancel_decided_at"]) == [
            "cancel_result", "cancel_decided_at"]

    create_ledger(base_settings())  # what `khanza-sync setup` runs

    with khanza.connect() as conn:
        assert migrations.recorded_version(conn) == migrations.CURRENT and migrations.problem(conn) is None
    version_row = rows(khanza, "SELECT * FROM khanza_sync_schema")
    after = rows(khanza, "SELECT * FROM khanza_sync_ledger")
    # created_at was hospital time (Asia/Jakarta, +7): now UTC, with the offset recorded once
    assert after == [{**before[0], "cancel_result": None, "cancel_decided_at": None,
                      "created_at": datetime(2026, 1, 2, 1, 30), "created_utc_offset": 420}]
    assert ledger.written_local(after[0]) == datetime(2026, 1, 2, 8, 30)  # what booking_registrasi holds
    create_ledger(base_settings(hospital_timezone="Asia/Jayapura"))  # setup again: nothing converted twice
    assert rows(khanza, "SELECT * FROM khanza_sync_ledger") == after
    columns = rows(khanza, "SELECT column_name AS c, column_type AS t, is_nullable AS n FROM information_schema.columns "
                           "WHERE table_schema = DATABASE() AND table_name = 'khanza_sync_ledger' "
                           "AND column_name LIKE 'cancel%' ORDER BY ordinal_position")
    assert columns == [{"c": "cancel_result", "t": "varchar(40)", "n": "YES"},
                       {"c": "cancel_decided_at", "t": "datetime", "n": "YES"}]
    create_ledger(base_settings())  # again: nothing to add, nothing changed
    assert rows(khanza, "SELECT * FROM khanza_sync_ledger") == after
    assert rows(khanza, "SELECT * FROM khanza_sync_schema") == version_row


def make_release_0_3(conn) -> None:
    """The project's tables as a release before the version table left them (ours to drop: a test database)."""
    conn.exec_driver_sql("DROP TABLE khanza_sync_ledger")
    conn.exec_driver_sql("DROP TABLE IF EXISTS khanza_sync_schema")
    conn.exec_driver_sql(OLD_LEDGER)


def test_a_newer_schema_is_refused_by_setup_and_by_every_job(khanza, tmp_path):
    """A Khanza whose tables a later release upgraded: this release neither writes there nor 'upgrades' back."""
    from khanza_sync.checkup import SetupProblem, preflight
    from tests.support import new_website_store

    try:
        with khanza.begin() as conn:
            conn.execute(text("UPDATE khanza_sync_schema SET version = :v"), {"v": migrations.CURRENT + 1})
        with khanza.begin() as conn, pytest.raises(migrations.NewerSchema):
            migrations.upgrade(conn)
        from website import store

        web = store.make_engine(new_website_store(f"sqlite:///{tmp_path / 'website.db'}"))
        with pytest.raises(SetupProblem) as refused:
            preflight(base_settings(), khanza, web, mappings=False)
        assert f"schema version {migrations.CURRENT + 1}, newer than this release" in str(refused.value)
    finally:
        with khanza.begin() as conn:
            conn.execute(text("UPDATE khanza_sync_schema SET version = :v"), {"v": migrations.CURRENT})


def test_every_step_is_idempotent_and_a_fresh_install_equals_an_upgraded_one(khanza):
    """Each step run twice changes nothing; the tables a fresh installation gets (sql/khanza_ledger.sql) have the
    columns the upgrade steps add, with the same types."""
    def columns(conn):
        return sorted(tuple(r) for r in conn.execute(text(
            "SELECT table_name, column_name, column_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name LIKE 'khanza\\_sync\\_%'")))

    with khanza.begin() as conn:
        fresh = columns(conn)
        for step in migrations.STEPS:
            step.apply(conn)
            step.apply(conn)
        assert columns(conn) == fresh
    try:
        with khanza.begin() as conn:
            make_release_0_3(conn)
            assert not missing_tables(conn, ["khanza_sync_decisions"])
            applied = migrations.upgrade(conn)
            assert [step.version for step in applied] == [2, 3, 4]  # every step after release 0.3's
            assert columns(conn) == fresh
    finally:
        with khanza.begin() as conn:
            ledger.create_table(conn)


def test_before_setup_is_run_again_reconcile_says_so(khanza, tmp_path):
    """An old ledger and a cancellation to carry out: reconcile stops before changing anything, and the one line
    the run ends with names the step (khanza_sync.checkup.explain, as failed_setup uses it)."""
    import pytest

    from khanza_sync import reconciliation
    from khanza_sync.checkup import explain
    from tests.support import hospital_today, insert_registrations, new_website_store, registration
    from website import store

    url = new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    insert_registrations(url, [registration(id="old-1", status="cancel_requested")])
    web = store.make_engine(url)
    try:
        with khanza.begin() as conn:
            make_release_0_3(conn)
            conn.execute(text("INSERT INTO khanza_sync_ledger VALUES ('old-1', 'created', 'booking', '000050', NULL, "
                              "'003', 'INT', 'D001', :d, 0, NOW())"), {"d": hospital_today()})
        with pytest.raises(Exception) as raised:
            reconciliation.process_cancellations(khanza, web, hospital_today())
        assert "khanza-sync setup" in explain(raised.value, base_settings())
        assert store.fetch_rows(web)["status"].tolist() == ["cancel_requested"]
        # and `khanza-sync check` says the same before any run does
        from khanza_sync.checkup import run_checks

        line = next(c for c in run_checks(base_settings(website_db_url=url)) if c.name == "ledger")
        assert line.ok is False and f"schema version 1 found, {migrations.CURRENT} expected" in line.detail
        assert "khanza-sync setup" in line.detail
    finally:
        web.dispose()
        with khanza.begin() as conn:
            ledger.create_table(conn, base_settings().tz)  # its old row is hospital time: converted


def test_setup_adds_run_by_to_a_version_3_decisions_table_and_keeps_its_rows(khanza):
    try:
        with khanza.begin() as conn:  # the test database is Khanza Sync's own
            conn.exec_driver_sql("DELETE FROM khanza_sync_decisions")
            conn.exec_driver_sql("ALTER TABLE khanza_sync_decisions DROP COLUMN run_by")
            conn.execute(text("UPDATE khanza_sync_schema SET version = 3"))
            conn.execute(text("INSERT INTO khanza_sync_decisions (registration_id, action, decided_by, reason, "
                              "decided_at) VALUES ('old-1', 'requeue', 'rina', 'NIK corrected', '2026-01-02 01:30:00')"))
            assert "schema version 3, this release needs" in migrations.problem(conn)
        applied = create_ledger(base_settings())  # what `khanza-sync setup` runs
        assert [step.version for step in applied] == [4]
        [row] = rows(khanza, "SELECT registration_id, decided_by, run_by FROM khanza_sync_decisions")
        assert row == {"registration_id": "old-1", "decided_by": "rina", "run_by": None}
        assert create_ledger(base_settings()) == []
    finally:
        with khanza.begin() as conn:
            conn.exec_driver_sql("DELETE FROM khanza_sync_decisions")
            ledger.create_table(conn)
