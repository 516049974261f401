"""The website store on SQLite, PostgreSQL and MariaDB, created from the definitions in website/schema.py."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from tests.support import insert_registrations, registration
from website import reconcile, store

NOW = datetime(2026, 11, 27, 1, 0, 0)


def test_claim_takes_due_pending_rows_oldest_first_and_leases_them(website_url):
    rows = [registration(id=f"r{i}", created_at=NOW - timedelta(minutes=10 - i)) for i in range(5)]
    rows.append(registration(id="later", created_at=NOW - timedelta(minutes=20), next_attempt_at=NOW + timedelta(hours=1)))
    rows.append(registration(id="done", created_at=NOW - timedelta(minutes=30), status="synced"))
    insert_registrations(website_url, rows)
    engine = store.make_engine(website_url)
    first = store.claim_pending(engine, 3, NOW, lease_seconds=600)
    assert list(first["id"]) == ["r0", "r1", "r2"]
    assert list(first["attempts"]) == [1, 1, 1]
    second = store.claim_pending(engine, 10, NOW, lease_seconds=600)
    assert list(second["id"]) == ["r3", "r4"]  # leased rows are invisible until the lease ends
    assert store.claim_pending(engine, 10, NOW, 600).empty
    after_lease = store.claim_pending(engine, 10, NOW + timedelta(hours=2), 600)
    assert set(after_lease["id"]) == {"r0", "r1", "r2", "r3", "r4", "later"}
    engine.dispose()


def test_write_outcomes_per_status(website_url):
    insert_registrations(website_url, [registration(id=i) for i in ("a", "b", "c", "d")])
    engine = store.make_engine(website_url)
    outcomes = pd.DataFrame([
        {"id": "a", "status": "synced", "error_code": None, "message": None, "no_rkm_medis": "000101",
         "no_rawat": "2026/11/28/000001", "no_reg": "001", "next_attempt_at": None},
        {"id": "b", "status": "rejected", "error_code": "INVALID_NIK", "message": "NIK ...", "no_rkm_medis": None,
         "no_rawat": None, "no_reg": None, "next_attempt_at": None},
        {"id": "c", "status": "deferred", "error_code": "KHANZA_UNREACHABLE", "message": "later",
         "no_rkm_medis": None, "no_rawat": None, "no_reg": None, "next_attempt_at": NOW + timedelta(minutes=5)},
    ])
    written = store.write_outcomes(engine, outcomes, NOW)
    assert written == {"synced": 1, "rejected": 1, "deferred": 1}
    got = store.fetch_rows(engine).set_index("id")
    assert got.loc["a", ["status", "no_rkm_medis", "no_rawat", "no_reg"]].tolist() == ["synced", "000101", "2026/11/28/000001", "001"]
    assert pd.notna(got.loc["a", "synced_at"])
    assert got.loc["b", ["status", "error_code"]].tolist() == ["rejected", "INVALID_NIK"]
    assert got.loc["c", ["status", "error_code"]].tolist() == ["pending", "KHANZA_UNREACHABLE"]
    assert pd.Timestamp(got.loc["c", "next_attempt_at"]) == pd.Timestamp(NOW + timedelta(minutes=5))
    assert got.loc["d", "status"] == "pending" and pd.isna(got.loc["d", "error_code"])
    engine.dispose()


def test_write_back_leaves_rows_the_website_changed_meanwhile(website_url):
    insert_registrations(website_url, [registration(id="x", status="cancel_requested")])
    engine = store.make_engine(website_url)
    outcomes = pd.DataFrame([{"id": "x", "status": "synced", "no_reg": "001", "no_rawat": "r", "no_rkm_medis": "m"}])
    assert store.write_outcomes(engine, outcomes, NOW) == {"synced": 0}
    assert store.fetch_rows(engine).loc[0, "status"] == "cancel_requested"
    engine.dispose()


def test_concurrent_claims_never_take_the_same_row(website_url):
    insert_registrations(website_url, [registration(id=f"c{i:03d}", created_at=NOW - timedelta(seconds=i))
                                       for i in range(200)])
    engine = store.make_engine(website_url)
    taken: list[list[str]] = [[], [], [], []]

    def worker(n):
        while True:
            batch = store.claim_pending(engine, 7, NOW, 600)
            if batch.empty:
                return
            taken[n].extend(batch["id"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for part in taken for i in part]
    assert len(everything) == 200 and len(set(everything)) == 200
    engine.dispose()


def test_defer_due_marks_every_untouched_due_row(website_url):
    insert_registrations(website_url, [registration(id="p1"), registration(id="p2"),
                                       registration(id="s", status="synced")])
    engine = store.make_engine(website_url)
    assert store.defer_due(engine, NOW + timedelta(hours=1), NOW + timedelta(hours=2), "KHANZA_UNREACHABLE", "m") == 2
    assert store.count_due(engine, NOW + timedelta(hours=1)) == 0
    assert store.count_due(engine, NOW + timedelta(hours=3)) == 2
    engine.dispose()


def test_apply_changes_writes_only_named_columns_while_the_status_is_unchanged(website_url):
    insert_registrations(website_url, [
        registration(id="moved", status="synced", doctor="dr-a", no_reg="001", error_code="OLD"),
        registration(id="gone", status="synced", no_reg="002", error_code="OLD"),
        registration(id="raced", status="cancel_requested", no_reg="003")])
    engine = store.make_engine(website_url)
    changes = [
        {"id": "moved", "expected_status": "synced", "visit_date": date(2026, 12, 1), "doctor": "dr-b", "reason": "x"},
        {"id": "gone", "expected_status": "synced", "status": "cancelled", "error_code": "DESK_CANCELLED",
         "last_error": "cancelled at the desk", "reason": "x"},
        {"id": "raced", "expected_status": "synced", "status": "cancelled", "reason": "x"},
    ]
    assert reconcile.apply_changes(engine, changes) == 2
    got = store.fetch_rows(engine).set_index("id")
    assert got.loc["moved", ["status", "doctor", "no_reg", "error_code"]].tolist() == ["synced", "dr-b", "001", "OLD"]
    assert pd.Timestamp(got.loc["moved", "visit_date"]) == pd.Timestamp(2026, 12, 1)
    assert got.loc["gone", ["status", "no_reg", "error_code", "last_error"]].tolist() == [
        "cancelled", "002", "DESK_CANCELLED", "cancelled at the desk"]
    assert got.loc["raced", "status"] == "cancel_requested"  # the website changed it: left for the next run
    engine.dispose()


def test_claim_window_takes_only_the_window_under_the_same_lease(website_url):
    day = date(2026, 12, 3)
    insert_registrations(website_url, [registration(id="in", visit_date=day, created_at=NOW - timedelta(minutes=2)),
                                       registration(id="out", visit_date=day + timedelta(days=1),
                                                    created_at=NOW - timedelta(minutes=3))])
    engine = store.make_engine(website_url)
    window = reconcile.Window(day, day)
    tz = ZoneInfo("Asia/Jakarta")
    assert reconcile.count_window(engine, window, tz, "pending", NOW) == 1
    assert list(reconcile.claim_window(engine, window, tz, 10, NOW, 600)["id"]) == ["in"]
    assert reconcile.count_window(engine, window, tz, "pending", NOW) == 0  # leased
    assert reconcile.select_window(engine, window, tz, ["pending"], NOW, 10).empty
    assert list(store.claim_pending(engine, 10, NOW, 600)["id"]) == ["out"]
    engine.dispose()


def test_any_script_and_emoji_read_back_as_the_website_wrote_them(website_url):
    """utf8mb4 on MySQL/MariaDB: names and addresses in any script, emoji included, reach the pipeline unchanged
    (Khanza's latin1 is the loader's business: transliterated there)."""
    texts = {"zh": "张伟", "ar": "محمد", "jv": "ꦧꦸꦣꦶ", "emoji": "Budi 😀🏥", "vi": "Nguyễn Thị Ánh"}
    insert_registrations(website_url, [registration(id=k, full_name=v, address=v) for k, v in texts.items()])
    engine = store.make_engine(website_url)
    got = store.claim_pending(engine, 10, NOW + timedelta(days=1), 600).set_index("id")
    assert got["full_name"].to_dict() == texts and got["address"].to_dict() == texts
    engine.dispose()


def _drop_region_columns(url: str) -> None:
    """The table as the website made it before the region columns (issue 25) existed."""
    from khanza_sync.regions import CONTRACT_COLUMNS

    engine = store.make_engine(url)
    with engine.begin() as conn:
        for column in CONTRACT_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE online_registrations DROP COLUMN {column}")
    engine.dispose()


def test_a_table_without_the_region_columns_is_read_as_it_is_then_upgraded_once(website_url):
    from khanza_sync.regions import CONTRACT_COLUMNS
    from website import contract

    engine = store.make_engine(website_url)
    with engine.begin() as conn:  # a table setup made (recorded in khanza_sync_contract) at contract version 1
        conn.exec_driver_sql("DROP TABLE online_registrations")
        conn.exec_driver_sql("DROP TABLE IF EXISTS khanza_sync_contract")
    contract.setup(engine)
    engine.dispose()
    _drop_region_columns(website_url)
    insert_registrations(website_url, [registration(id="old-row", created_at=NOW - timedelta(minutes=5))])
    engine = store.make_engine(website_url)
    assert contract.found_version(contract.columns_of(engine)) == 1
    claimed = store.claim_pending(engine, 10, NOW, lease_seconds=600)
    assert list(claimed["id"]) == ["old-row"]
    assert claimed.loc[0, list(CONTRACT_COLUMNS)].isna().all()  # the optional columns read as NULL

    done = contract.setup(engine)  # the project's own table: upgraded in place, nullable columns added
    assert [d.split(" ADD COLUMN ")[1].split()[0] for d in done] == list(CONTRACT_COLUMNS)
    assert contract.found_version(contract.columns_of(engine)) == contract.CURRENT
    assert contract.setup(engine) == []  # idempotent
    engine.dispose()

    insert_registrations(website_url, [registration(id="new-row", created_at=NOW - timedelta(minutes=4),
                                                    village_code="3310242001", village="Sekarsuli")])
    engine = store.make_engine(website_url)  # a new run sees the upgraded table
    claimed = store.claim_pending(engine, 10, NOW + timedelta(hours=1), lease_seconds=600).set_index("id")
    assert (claimed.loc["new-row", "village_code"], claimed.loc["new-row", "village"]) == ("3310242001", "Sekarsuli")
    assert claimed.loc["old-row", "village"] is None
    engine.dispose()


def test_a_table_the_project_did_not_create_is_never_altered(tmp_path):
    import sqlite3

    from khanza_sync.regions import CONTRACT_COLUMNS
    from website import contract

    path = tmp_path / "theirs.db"
    url = f"sqlite:///{path}"
    engine = store.make_engine(url)
    store.create_schema(engine)  # the website's own table: no khanza_sync_contract record
    engine.dispose()
    _drop_region_columns(url)
    engine = store.make_engine(url)
    assert contract.setup(engine) == []  # it works as it is (the optional step read as empty): nothing changed
    present = contract.columns_of(engine)
    assert contract.found_version(present) == 1 and contract.required_missing(present) == []
    assert contract.upgrade_sql("sqlite", present)[0] == "ALTER TABLE online_registrations ADD COLUMN village_code VARCHAR(13)"
    engine.dispose()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(online_registrations)")}
    assert not columns & set(CONTRACT_COLUMNS)  # unchanged
