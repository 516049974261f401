"""Hostile rows through the data checks (pandas rules + Great Expectations) and the slug mappings:
every row comes out valid in Khanza's shapes or rejected with a known code, never an exception."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_checks
import mappings
from khanza_sync.error_codes import ErrorCode
from khanza_sync.settings import PROJECT_ROOT
from tests import support as root
from tests.hostile.hostile_strategies import (CONTROL, NAME_OK, NIK_OK, PHONE_OK, TZ, hostile_rows, must_be_rejected,
                                             must_pass_checks, today)
from website.store import INPUT_COLUMNS

SETTINGS = root.base_settings()
MAPS = mappings.load(PROJECT_ROOT / "mappings")
# The codes the mapping files point at, as if all were active in Khanza (the DB tests use Khanza's real list).
CODES = mappings.KhanzaCodes(poli=frozenset(MAPS.poliklinik.values()), dokter=frozenset(MAPS.dokter.values()),
                             penjab=frozenset(MAPS.penjab.values()))
TEXT_LIMITS = {"full_name": 40, "address": 200, "birth_place": 15, "mother_name": 40, "email": 50}


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{**r, "attempts": 1} for r in rows], columns=INPUT_COLUMNS, dtype=object)
    return df


def run_checks(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    now_local = datetime.now(TZ).replace(tzinfo=None)
    valid, rejections, report = data_checks.check(frame(rows), SETTINGS, now_local)
    mapped, unmapped = mappings.apply(valid, MAPS, CODES)
    for entry in report:  # GX results carry registration ids only
        assert set(entry) == {"name", "code", "success", "ids"}
    return mapped, pd.concat([rejections, unmapped], ignore_index=True)


def assert_khanza_shaped(valid: pd.DataFrame) -> None:
    """What the loader receives can be stored by Khanza as it is."""
    now = today()
    for row in valid.to_dict("records"):
        assert NIK_OK.match(row["nik"])
        assert NAME_OK.match(row["full_name"]) and len(row["full_name"]) <= 40
        assert row["gender"] in {"L", "P"}
        assert isinstance(row["birth_date"], date) and date(1900, 1, 1) <= row["birth_date"] <= now
        assert PHONE_OK.match(row["phone"])
        assert isinstance(row["visit_date"], date) and now <= row["visit_date"] <= now + timedelta(days=31)
        assert row["payment"] in {"umum", "bpjs", "asuransi"}
        if row["payment"] == "bpjs":
            assert len(row["bpjs_number"]) == 13 and row["bpjs_number"].isdigit()
        for column, limit in TEXT_LIMITS.items():
            value = row[column]
            if value is None:
                assert column not in ("full_name", "address")
                continue
            assert len(value) <= limit, column
            assert not CONTROL.search(value), column
            value.encode("latin-1")  # Khanza's columns are latin1
            assert value == value.strip() and "  " not in value
        assert row["kd_poli"] and row["kd_dokter"] and row["kd_pj"]
        for level, limit in (("village", 60), ("district", 60), ("regency", 60), ("province", 30)):
            value = row[level]  # Khanza's form: upper case, no level word in front, fits the region table
            if value is not None:
                assert value == value.upper().strip() and len(value) <= limit and not CONTROL.search(value), level
                value.encode("latin-1")
                assert not value.startswith(("KELURAHAN ", "KECAMATAN ", "KABUPATEN ", "PROPINSI ", "PROVINSI ")), level


@settings(database=None, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(hostile_rows(), min_size=1, max_size=25))
def test_every_hostile_row_is_valid_or_rejected_with_a_known_code(batch):
    rows = [row for row, _ in batch]
    valid, rejected = run_checks(rows)
    ids = [r["id"] for r in rows]
    outcome_ids = list(valid["id"]) + list(rejected["id"])
    assert sorted(outcome_ids) == sorted(ids), "every row exactly once: valid or rejected"
    assert set(rejected["error_code"]) <= {c.value for c in ErrorCode}
    for code, message in zip(rejected["error_code"], rejected["message"]):
        assert message == ErrorCode(code).message  # fixed text, never the row's values
    assert_khanza_shaped(valid)
    valid_ids = set(valid["id"])
    for row, verdict in batch:
        if must_be_rejected(verdict):
            assert row["id"] not in valid_ids, f"row with a bad field passed: {sorted(k for k, v in verdict.items() if v is False)}"
        if must_pass_checks(verdict):
            assert row["id"] in valid_ids, "a row with only valid fields was rejected"


@settings(database=None, max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(hostile_rows(), min_size=2, max_size=8))
def test_duplicated_website_ids_are_all_rejected(batch):
    rows = [row for row, _ in batch]
    rows.append({**rows[0]})  # the same website id twice in one batch
    valid, rejected = run_checks(rows)
    dup = rejected[rejected["id"] == rows[0]["id"]]
    assert len(dup) == 2 and set(dup["error_code"]) == {ErrorCode.DUPLICATE_ID.value}
    assert rows[0]["id"] not in set(valid["id"])


def cases(code: ErrorCode, field: str, *values, **also) -> list[tuple[dict, ErrorCode]]:
    """One case per bad value of `field` (with the fields `also`), each to be rejected with `code`."""
    return [({field: value, **also}, code) for value in values]


CASES = [
    *cases(ErrorCode.INVALID_BIRTH_DATE, "birth_date", "2026-02-30", "1800-01-01", date(1899, 12, 31), "future", None),
    *cases(ErrorCode.INVALID_VISIT_DATE, "visit_date", "2026-02-30", None),
    *cases(ErrorCode.VISIT_DATE_PASSED, "visit_date", "past"),
    *cases(ErrorCode.OUTSIDE_BOOKING_WINDOW, "visit_date", "far"),
    *cases(ErrorCode.INVALID_NIK, "nik", "33100A0101900005", "331001010190000", "33100101019000051", "0000000000000000",
           "' OR '1'='1", None),
    *cases(ErrorCode.MISSING_NAME, "full_name", None, " \x00 "),
    *cases(ErrorCode.NAME_TOO_LONG, "full_name", "Budi " * 9),
    *cases(ErrorCode.INVALID_NAME, "full_name", "Robert'); DROP TABLE pasien;--", "Budi <script>", "Budi\\Santoso"),
    *cases(ErrorCode.INVALID_GENDER, "gender", None, "X"),
    *cases(ErrorCode.INVALID_PHONE, "phone", None, "0812-3456-789O", "12345"),
    *cases(ErrorCode.MISSING_ADDRESS, "address", None, "\x00\t "),
    *cases(ErrorCode.INVALID_PAYMENT, "payment", None, "'; DROP TABLE penjab;--"),
    *cases(ErrorCode.INVALID_BPJS_NUMBER, "bpjs_number", None, "12345", payment="bpjs"),
    *cases(ErrorCode.UNKNOWN_POLI, "poliklinik", "jantung", None, "' OR 1=1 --"),
    *cases(ErrorCode.UNKNOWN_DOCTOR, "doctor", "dr-tidak-ada", None),
    *cases(ErrorCode.INVALID_REGION, "village_code", "3399999999", "12345", "' OR 1=1 --", "33.10.24.20O1"),
    *cases(ErrorCode.INVALID_REGION, "regency", "Atlantis", "Klaten; DROP TABLE kabupaten"),
    *cases(ErrorCode.INVALID_REGION, "village", "<script>", "x" * 61),
    *cases(ErrorCode.INCONSISTENT_REGION, "village", "Sekarsuli", "Guwosari", district="Pajangan", regency="Klaten"),
    *cases(ErrorCode.INCONSISTENT_REGION, "district_code", "34.02.07", village_code="3310242001"),
]


def test_each_kind_of_bad_value_gets_its_code():
    """One batch (the suite costs ~0.4 s per call), one bad value per row, each with its own code."""
    now = today()
    special = {"future": now + timedelta(days=10), "past": now - timedelta(days=3), "far": now + timedelta(days=90)}
    rows, expected = [], {}
    for override, code in CASES:
        override = {k: special.get(v, v) if isinstance(v, str) else v for k, v in override.items()}
        row = root.registration(**override)
        rows.append(row)
        expected[row["id"]] = code.value
    valid, rejected = run_checks(rows)
    assert valid.empty
    got = dict(zip(rejected["id"], rejected["error_code"]))
    wrong = {expected[i]: got.get(i) for i in expected if got.get(i) != expected[i]}
    assert not wrong, f"expected code -> got: {wrong}"


@pytest.mark.parametrize("phone", ["081234567890", "0812 3456 7890", "0812-3456-7890", "+6281234567890",
                                   "+62 812-3456-7890", "6281234567890", "62 812 3456 7890", "812-3456-7890",
                                   "(0812) 3456 7890", "0812.3456.7890"])
def test_every_local_phone_format_becomes_khanzas_08_form(phone):
    valid, rejected = run_checks([root.registration(phone=phone)])
    assert rejected.empty
    assert list(valid["phone"]) == ["081234567890"]


def test_over_long_address_is_shortened_at_a_word_boundary():
    address = "Jl. Pemuda No. 5 RT 02/RW 03 " * 12  # 348 characters
    valid, rejected = run_checks([root.registration(address=address)])
    assert rejected.empty
    stored = valid["address"][0]
    assert len(stored) <= 200 and " ".join(address.split()).startswith(stored)
    assert " ".join(address.split())[len(stored)] == " ", "cut between words, not inside one"


def test_every_sampled_region_gets_its_verdict():
    """The region strategy's fixed samples, each checked (not left to Hypothesis's draws): consistent ones pass,
    the others are rejected with a region code."""
    from tests.hostile.hostile_strategies import BAD_REGIONS, GOOD_REGIONS

    good = [root.registration(**region) for region in GOOD_REGIONS]
    bad = [root.registration(**region) for region in BAD_REGIONS]
    valid, rejected = run_checks(good + bad)
    assert sorted(valid["id"]) == sorted(r["id"] for r in good), list(rejected["error_code"])
    assert set(rejected["error_code"]) == {ErrorCode.INVALID_REGION.value, ErrorCode.INCONSISTENT_REGION.value}
    assert_khanza_shaped(valid)
