"""Hostile registrations end to end on real databases: website store (SQLite, and PostgreSQL and MariaDB for what
they can hold) -> data checks -> mappings -> khanza.registration.load_batch (MariaDB) -> write-back.

Every row must end `synced` or `rejected` with a known code, Khanza must hold only valid rows, and a
registration is in Khanza completely (pasien + reg_periksa + ledger) or not at all.
"""
from __future__ import annotations

import string
from datetime import date, datetime, timezone

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from khanza import ledger as khanza_ledger
from khanza import registration
from khanza_sync import outcomes
from khanza_sync.error_codes import ErrorCode
from khanza_sync.regions import CONTRACT_COLUMNS as REGION_COLUMNS
from tests import support as root
from tests.hostile.hostile_strategies import (CONTROL, KHANZA_RULE_CODES, KNOWN_CODES, NAME_OK, NIK_OK, PHONE_OK, SQLI,
                                             TZ, fold, for_postgres, hostile_rows, must_be_rejected, must_pass_checks,
                                             today)
from website import store

# Hypothesis settings of the database tests (the Khanza fixture is reset per test, not per example)
DB = settings(database=None, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
DB_LARGE = settings(DB, suppress_health_check=[*DB.suppress_health_check, HealthCheck.data_too_large])
DEMO_PATIENTS = {"-", "000050"}  # pasien rows of sql/khanza_demo_data.sql
PASIEN_TEXT = ["no_rkm_medis", "nm_pasien", "no_ktp", "tmp_lahir", "nm_ibu", "alamat", "no_tlp", "umur", "email",
               "no_peserta", "alamatpj", "namakeluarga"]
# alamatpj is alamat[:100] (patients.new_patient_row): may end in a space, not worth a rejection
UNTRIMMED_OK = {"alamatpj"}


def run_pipeline(khanza_engine, website_url: str, **overrides) -> pd.DataFrame:
    """One batch, as flows/sync_registrations.py runs it, without Prefect."""
    cfg = root.base_settings(website_db_url=website_url, **overrides)
    web = store.make_engine(website_url)
    try:
        now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
        now_local = datetime.now(TZ).replace(tzinfo=None)
        batch = store.claim_pending(web, 500, now_utc, cfg.claim_lease_seconds)
        mapped, invalid, unmapped = root.check_and_map(batch, cfg, khanza_engine, now_local)
        loaded = registration.load_batch(khanza_engine, mapped, cfg, now_local)
        result = outcomes.combine(outcomes.rejected(invalid), outcomes.rejected(unmapped), loaded)
        store.write_outcomes(web, result, now_utc)
        return result
    finally:
        web.dispose()


def khanza_rows(conn, sql: str, **params) -> list[dict]:
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def assert_khanza_consistent(khanza_engine, demo_patients: set[str]) -> None:
    """Khanza holds only valid rows, and every pipeline patient has its visit and ledger row."""
    now = today()
    with khanza_engine.connect() as conn:
        new_patients = [p for p in khanza_rows(conn, "SELECT * FROM pasien") if p["no_rkm_medis"] not in demo_patients]
        ledger = {r["no_rkm_medis"]: r for r in khanza_rows(
            conn, "SELECT * FROM khanza_sync_ledger WHERE patient_created = 1")}
        visits = {r["no_rawat"]: r for r in khanza_rows(conn, "SELECT * FROM reg_periksa")}
        all_ledger = khanza_rows(conn, "SELECT * FROM khanza_sync_ledger")
    for p in new_patients:
        entry = ledger.get(p["no_rkm_medis"])
        assert entry is not None, "a patient without its ledger row (partial write)"
        assert entry["no_rawat"] in visits, "a patient without its reg_periksa row (partial write)"
        assert NAME_OK.match(p["nm_pasien"]) and len(p["nm_pasien"]) <= 40
        assert NIK_OK.match(p["no_ktp"])
        assert PHONE_OK.match(p["no_tlp"])
        assert p["jk"] in {"L", "P"}
        assert isinstance(p["tgl_lahir"], date) and date(1900, 1, 1) <= p["tgl_lahir"] <= now
        assert p["alamat"] and len(p["alamat"]) <= 200
        for column in PASIEN_TEXT:
            value = p[column]
            if value is None:
                continue
            assert not CONTROL.search(value), f"control character in pasien.{column}"
            value.encode("latin-1")  # cp1252-only characters (e.g. a 0x80 byte) would fail here
            assert column in UNTRIMMED_OK or value == value.strip(), f"untrimmed pasien.{column}"
    assert len(ledger) == len(new_patients), "a ledger row claims a patient that is not in pasien"
    for entry in all_ledger:
        if entry["target"] == "reg_periksa":
            visit = visits.get(entry["no_rawat"])
            assert visit is not None and visit["no_rkm_medis"] == entry["no_rkm_medis"]
            assert visit["no_reg"] == entry["no_reg"] and visit["tgl_registrasi"] == entry["tanggal"]
            assert not CONTROL.search(visit["almt_pj"] or "") and len(visit["almt_pj"] or "") <= 200
    pipeline_visits = {e["no_rawat"] for e in all_ledger}
    orphan = [v for v in visits.values() if v["no_rawat"] not in pipeline_visits
              and v["no_rkm_medis"] not in demo_patients]
    assert not orphan, "a reg_periksa row without its ledger row (partial write)"


def demo_patient_ids(khanza_engine) -> set[str]:
    with khanza_engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT no_rkm_medis FROM pasien"))}


def assert_outcomes(website_url: str, khanza_engine, batch: list[tuple[dict, dict]], check_verdicts: bool) -> None:
    rows = root.website_rows(website_url, [r["id"] for r, _ in batch])
    assert len(rows) == len(batch)
    by_id = rows.to_dict("index")
    with khanza_engine.connect() as conn:
        ledger = khanza_ledger.lookup(conn, [r["id"] for r, _ in batch])
        for raw, verdict in batch:
            web_row = by_id[raw["id"]]
            assert web_row["status"] in {"synced", "rejected"}, "a row left pending"
            if web_row["status"] == "rejected":
                assert web_row["error_code"] in KNOWN_CODES
                assert web_row["last_error"] == ErrorCode(web_row["error_code"]).website_message
                assert raw["id"] not in ledger, "a rejected row reached Khanza"
                if check_verdicts and must_pass_checks(verdict):
                    assert web_row["error_code"] in KHANZA_RULE_CODES, (
                        f"valid row rejected with {web_row['error_code']}")
                continue
            if check_verdicts:
                assert not must_be_rejected(verdict), (
                    f"bad field synced: {sorted(k for k, v in verdict.items() if v is False)}")
            entry = ledger.get(raw["id"])
            assert entry is not None, "synced on the website but not in Khanza's ledger"
            assert (web_row["no_rkm_medis"], web_row["no_rawat"], web_row["no_reg"]) == (
                entry["no_rkm_medis"], entry["no_rawat"], entry["no_reg"])
            if not entry["patient_created"]:
                continue
            patient = khanza_rows(conn, "SELECT * FROM pasien WHERE no_rkm_medis = :rm", rm=entry["no_rkm_medis"])[0]
            if isinstance(raw["nik"], str) and raw["nik"].replace(" ", "").isascii():
                assert patient["no_ktp"] == raw["nik"].replace(" ", "")
            if check_verdicts and verdict["expected_phone"]:
                assert patient["no_tlp"] == verdict["expected_phone"]
            address = raw["address"]
            if isinstance(address, str) and address.isascii() and address.isprintable():
                # SQL injection text arrives verbatim (bound, never spliced), cut at 200 at most
                assert fold(address).startswith(patient["alamat"])
                if len(fold(address)) <= 200:
                    assert patient["alamat"] == fold(address)
            name = raw["full_name"]
            if isinstance(name, str) and name.isascii() and name.isprintable():
                assert patient["nm_pasien"] == fold(name)
            # the region: ids of rows that hold the names pasien repeats; '-' where the registration gave none
            for table, id_col, name_col, pj_col in (("kelurahan", "kd_kel", "nm_kel", "kelurahanpj"),
                                                    ("kecamatan", "kd_kec", "nm_kec", "kecamatanpj"),
                                                    ("kabupaten", "kd_kab", "nm_kab", "kabupatenpj"),
                                                    ("propinsi", "kd_prop", "nm_prop", "propinsipj")):
                stored = khanza_rows(conn, f"SELECT {name_col} AS n FROM {table} WHERE {id_col} = :i",
                                     i=patient[id_col])[0]["n"]
                assert stored == patient[pj_col]
            if not any(raw.get(c) for c in REGION_COLUMNS):
                assert (patient["kd_kel"], patient["kelurahanpj"], patient["propinsipj"]) == (1, "-", "-")


def assert_pipeline_outcomes(khanza_engine, website_url: str, batch: list[tuple[dict, dict]],
                             check_verdicts: bool) -> None:
    """`batch` put on the website and run through the pipeline: every row ends right, Khanza stays consistent."""
    root.insert_registrations(website_url, [row for row, _ in batch])
    run_pipeline(khanza_engine, website_url)
    assert_outcomes(website_url, khanza_engine, batch, check_verdicts=check_verdicts)
    assert_khanza_consistent(khanza_engine, DEMO_PATIENTS)


@pytest.fixture
def sqlite_website(tmp_path):
    return root.new_website_store(f"sqlite:///{tmp_path / 'website.db'}")


@settings(DB_LARGE, max_examples=50)
@given(batch=st.lists(hostile_rows(), min_size=1, max_size=10))
def test_hostile_rows_end_synced_or_rejected_on_sqlite(khanza, sqlite_website, batch):
    assert_pipeline_outcomes(khanza, sqlite_website, batch, check_verdicts=True)


@settings(DB_LARGE, max_examples=15)
@given(batch=st.lists(hostile_rows(), min_size=1, max_size=10))
def test_hostile_rows_end_synced_or_rejected_on_postgresql(khanza, postgres_url, batch):
    url = root.new_website_store(postgres_url, drop=True)
    rows = [(for_postgres(row), verdict) for row, verdict in batch]
    # PostgreSQL-shaped rows were altered after the verdict was drawn: check the invariants only
    assert_pipeline_outcomes(khanza, url, rows, check_verdicts=False)


@settings(DB_LARGE, max_examples=10)
@given(batch=st.lists(hostile_rows(), min_size=1, max_size=10))
def test_hostile_rows_end_synced_or_rejected_on_mariadb(khanza, mysql_website_url, batch):
    """The same invariants with the website on MariaDB (utf8mb4; in strict mode it holds what PostgreSQL holds)."""
    url = root.new_website_store(mysql_website_url, drop=True)
    rows = [(for_postgres(row), verdict) for row, verdict in batch]
    assert_pipeline_outcomes(khanza, url, rows, check_verdicts=False)


def test_demo_patients_are_known(khanza):
    assert demo_patient_ids(khanza) == DEMO_PATIENTS


@settings(DB, max_examples=25)
@given(target=st.sampled_from(["reg_periksa", "booking"]),
       batch=st.lists(hostile_rows(), min_size=1, max_size=8))
def test_booking_target_is_just_as_safe(khanza, sqlite_website, target, batch):
    root.insert_registrations(sqlite_website, [row for row, _ in batch])
    run_pipeline(khanza, sqlite_website, khanza_target=target)
    rows = root.website_rows(sqlite_website, [r["id"] for r, _ in batch])
    assert set(rows["status"]) <= {"synced", "rejected"}
    assert set(rows["error_code"].dropna()) <= KNOWN_CODES
    with khanza.connect() as conn:
        # no booking or visit without its ledger row, no patient without one of them
        assert conn.execute(text(
            "SELECT COUNT(*) FROM booking_registrasi b LEFT JOIN khanza_sync_ledger l ON l.no_rkm_medis = b.no_rkm_medis "
            "AND l.tanggal = b.tanggal_periksa AND l.target = 'booking' WHERE l.registration_id IS NULL")).scalar() == 0
        assert conn.execute(text(
            "SELECT COUNT(*) FROM pasien p WHERE p.no_rkm_medis NOT IN ('-', '000050') AND NOT EXISTS "
            "(SELECT 1 FROM khanza_sync_ledger l WHERE l.no_rkm_medis = p.no_rkm_medis AND l.patient_created = 1)"
        )).scalar() == 0


# ---------------------------------------------------------------- the loader alone, defence in depth

def mapped_row(**overrides) -> dict:
    """A row as load_batch receives it (checked and mapped), before hostile overrides."""
    base = root.registration()
    row = {**base, "nik": "3310" + base["nik"][4:], "full_name": "Budi Santoso", "gender": "L",
           "phone": "081234567890", "payment": "umum", "kd_poli": "INT", "kd_dokter": "D001", "kd_pj": "A09",
           "attempts": 1}
    row.update(overrides)
    return row


unchecked_text = st.one_of(st.sampled_from(SQLI), st.text(max_size=300),
                           st.text(alphabet=string.printable, min_size=150, max_size=300))


@settings(DB, max_examples=40)
@given(fields=st.fixed_dictionaries({}, optional={
    "full_name": unchecked_text, "address": unchecked_text.filter(bool), "birth_place": unchecked_text,
    "mother_name": unchecked_text, "email": unchecked_text, "phone": unchecked_text,
    "nik": st.one_of(st.sampled_from(SQLI), st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=30)),
}), copies=st.integers(1, 3))
def test_load_batch_never_half_writes_even_unchecked_values(khanza, fields, copies):
    """If a value the checks should have stopped reaches the loader anyway, MariaDB (strict mode) refuses
    it and the registration is rejected whole: no pasien without reg_periksa + ledger, no exception."""
    regs = pd.DataFrame([mapped_row(**fields) for _ in range(copies)])
    before = demo_patient_ids(khanza)
    result = registration.load_batch(khanza, regs, root.base_settings(), datetime.now(TZ).replace(tzinfo=None))
    assert list(result["id"]) == list(regs["id"])
    assert set(result["status"]) <= {"synced", "rejected"}
    assert set(result["error_code"].dropna()) <= KNOWN_CODES
    with khanza.connect() as conn:
        for out in result.to_dict("records"):
            in_ledger = conn.execute(text("SELECT COUNT(*) FROM khanza_sync_ledger WHERE registration_id = :i"),
                                     {"i": out["id"]}).scalar()
            assert in_ledger == (1 if out["status"] == "synced" else 0)
        created = conn.execute(text("SELECT no_rkm_medis FROM khanza_sync_ledger WHERE patient_created = 1")).all()
        patients = demo_patient_ids(khanza) - before
        assert patients <= {r[0] for r in created}, "a pasien row without its ledger row"
        for rm in patients:
            stored = conn.execute(text("SELECT nm_pasien, alamat, nm_ibu, no_tlp FROM pasien WHERE no_rkm_medis = :rm"),
                                  {"rm": rm}).one()
            sent = fields
            # stored exactly as sent: strict mode never truncates silently
            if "full_name" in sent:
                assert stored.nm_pasien == sent["full_name"]
            if "address" in sent:
                assert stored.alamat == sent["address"]


SYNCED: list[int] = []


@settings(DB_LARGE, max_examples=4)
@given(batch=st.lists(hostile_rows(), min_size=30, max_size=30))
def test_hostile_batches_get_every_clean_row_into_khanza(khanza, sqlite_website, batch):
    """Hostile rows next to clean ones never cost a clean row its visit: every row whose fields are all valid is
    synced (zero tolerance). Also guards the strategies: hostile rows must not crowd out the valid ones."""
    with khanza.connect() as conn:  # patients of earlier examples (Hypothesis repeats values across them too)
        known = [{"id": f"known-{i}", "nik": r[0], "bpjs_number": r[1]} for i, r in enumerate(conn.execute(text(
            "SELECT no_ktp, no_peserta FROM pasien")))]
    root.insert_registrations(sqlite_website, [row for row, _ in batch])
    result = run_pipeline(khanza, sqlite_website)
    clean = [row["id"] for row, verdict in batch if must_pass_checks(verdict)]
    synced = set(result.loc[result["status"] == "synced", "id"])
    assert len(clean) >= 3, "the strategy should produce clean rows"
    # A NIK or card another row of the batch, or a patient already in Khanza, also carries may be another person's
    # (Hypothesis repeats values): that row is either the same patient (synced) or PATIENT_CONFLICT, nothing else.
    shared = _shared_identity_ids([row for row, _ in batch] + known)
    codes = result.set_index("id")["error_code"]
    assert all(i in synced or codes[i] == "PATIENT_CONFLICT" for i in clean if i in shared), codes.to_dict()
    alone = [i for i in clean if i not in shared]
    assert all(i in synced for i in alone), codes.loc[[i for i in alone if i not in synced]].tolist()


def _shared_identity_ids(rows: list[dict]) -> set[str]:
    """Ids of rows whose NIK (its digits) or BPJS card number another row of the batch carries too."""
    from collections import Counter

    def keys(row):
        out = []
        for field in ("nik", "bpjs_number"):
            value = row.get(field)
            digits = "".join(ch for ch in value if ch.isdigit()) if isinstance(value, str) else ""
            if digits:
                out.append((field, digits))
        return out
    counts = Counter(k for row in rows for k in set(keys(row)))
    return {row["id"] for row in rows if any(counts[k] > 1 for k in keys(row))}


def test_junk_bpjs_number_on_a_non_bpjs_row_never_reaches_khanza(khanza, sqlite_website):
    rows = [root.registration(id="bpjs-junk-1", payment="umum", bpjs_number="' OR 1=1--"),
            root.registration(id="bpjs-junk-2", payment="asuransi", bpjs_number="12AB")]
    root.insert_registrations(sqlite_website, rows)
    run_pipeline(khanza, sqlite_website)
    with khanza.connect() as conn:
        cards = [r[0] for r in conn.execute(text(
            "SELECT no_peserta FROM pasien WHERE no_rkm_medis NOT IN ('-', '000050')"))]
    assert all(card in ("", None) or (len(card) == 13 and card.isdigit()) for card in cards)


def test_non_latin1_nik_reaching_the_loader_is_rejected_not_a_batch_crash(khanza):
    regs = pd.DataFrame([mapped_row(nik="\x80"), mapped_row(nik="张伟"), mapped_row()])
    result = registration.load_batch(khanza, regs, root.base_settings(), datetime.now(TZ).replace(tzinfo=None))
    assert list(result["status"]) == ["rejected", "rejected", "synced"]
