"""The loader follows staff decisions (khanza/decisions.py) on a real MariaDB: a PATIENT_CONFLICT linked to the
patient staff chose, or resolved by a new patient; only the latest decision counts; without the decisions table
the loader works as before. No Prefect."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from khanza import decisions, ledger
from khanza.registration import load_batch
from tests.support import base_settings, count, hospital_today, loader_registration, rows

CLOCK = datetime.combine(hospital_today(), datetime.min.time()).replace(hour=8, minute=30)
SITI_NIK, SITI_CARD = "3310014107800001", "0001234567890"  # the demo data's patient 000050


@pytest.fixture
def khanza_clean(khanza):
    """No decision rows before or after each test (the khanza fixture does not empty this table)."""
    with khanza.begin() as conn:
        conn.exec_driver_sql("DELETE FROM khanza_sync_decisions")
    yield khanza
    with khanza.begin() as conn:
        conn.exec_driver_sql("DELETE FROM khanza_sync_decisions")


def reg(**overrides) -> dict:
    return loader_registration(**{"full_name": "Budi Santoso", "gender": "L", "birth_date": date(1985, 3, 14),
                                  "visit_date": hospital_today() + timedelta(days=1), "kd_poli": "INT",
                                  "kd_dokter": "D001", "payment": "bpjs", "kd_pj": "BPJ", **overrides})


def load_one(engine, r: dict) -> dict:
    out = load_batch(engine, pd.DataFrame([r], dtype=object), base_settings(), CLOCK)
    return out.to_dict("records")[0]


def decide(engine, reg_id: str, action: str, no_rkm_medis: str | None = None) -> None:
    with engine.begin() as conn:
        decisions.record(conn, registration_id=reg_id, action=action, no_rkm_medis=no_rkm_medis,
                         decided_by="rina", reason="checked at the desk", decided_at=datetime(2026, 12, 1, 9))


def test_link_decision_loads_the_conflict_with_the_chosen_patient(khanza_clean):
    r = reg(nik=SITI_NIK, bpjs_number="9999999999999")  # Siti's NIK, another card: a conflict
    assert load_one(khanza_clean, r)["error_code"] == "PATIENT_CONFLICT"
    decide(khanza_clean, r["id"], "link_patient", "000050")
    out = load_one(khanza_clean, r)
    assert (out["status"], out["outcome"], out["no_rkm_medis"]) == ("synced", "created", "000050")
    assert rows(khanza_clean, "SELECT no_rkm_medis FROM khanza_sync_ledger WHERE registration_id = :i",
                i=r["id"]) == [{"no_rkm_medis": "000050"}]
    assert count(khanza_clean, "SELECT COUNT(*) n FROM pasien") == 2  # nobody new, Siti not overwritten
    assert rows(khanza_clean, "SELECT no_peserta FROM pasien WHERE no_rkm_medis = '000050'")[0]["no_peserta"] == SITI_CARD


def test_new_patient_decision_creates_a_patient_and_only_the_latest_decision_counts(khanza_clean):
    r = reg(bpjs_number=SITI_CARD)  # a new NIK with Siti's card: a conflict
    decide(khanza_clean, r["id"], "link_patient", "000050")
    decide(khanza_clean, r["id"], "new_patient")  # staff changed their mind: this one counts
    decide(khanza_clean, r["id"], "requeue")  # a later re-queue does not revoke it
    out = load_one(khanza_clean, r)
    assert (out["status"], out["outcome"]) == ("synced", "created") and out["no_rkm_medis"] == "000101"
    new = rows(khanza_clean, "SELECT no_ktp, no_peserta FROM pasien WHERE no_rkm_medis = '000101'")[0]
    assert (new["no_ktp"], new["no_peserta"]) == (r["nik"], SITI_CARD)
    assert count(khanza_clean, "SELECT COUNT(*) n FROM pasien WHERE no_peserta = :c", c=SITI_CARD) == 2


def test_link_still_applies_the_desk_refusals_and_the_duplicate_check(khanza_clean):
    first = reg(nik=SITI_NIK, bpjs_number=SITI_CARD, gender="P", birth_date=date(1980, 7, 1))  # Siti herself
    assert load_one(khanza_clean, first)["outcome"] == "created"
    again = reg(nik=SITI_NIK, bpjs_number="9999999999999")
    decide(khanza_clean, again["id"], "link_patient", "000050")
    out = load_one(khanza_clean, again)  # same patient, clinic and day: the existing numbers, no second visit
    assert (out["outcome"], out["error_code"]) == ("duplicate", "DUPLICATE_REGISTRATION")
    gone = reg(nik=SITI_NIK, bpjs_number="9999999999999")
    decide(khanza_clean, gone["id"], "link_patient", "000999")  # the linked patient is no longer in Khanza
    assert load_one(khanza_clean, gone)["error_code"] == "PATIENT_CONFLICT"


def test_without_the_decisions_table_the_loader_finds_no_decisions(khanza_clean):
    with khanza_clean.begin() as conn:
        conn.exec_driver_sql("DROP TABLE khanza_sync_decisions")  # the test database is Khanza Sync's own
    try:
        assert load_one(khanza_clean, reg(nik=SITI_NIK, bpjs_number="9999999999999"))["error_code"] == "PATIENT_CONFLICT"
        assert load_one(khanza_clean, reg(bpjs_number=None, payment="umum", kd_pj="A09"))["outcome"] == "created"
    finally:
        with khanza_clean.begin() as conn:
            ledger.create_table(conn)
