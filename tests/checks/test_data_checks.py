"""The GX suite through data_checks.check, on plain DataFrames (no database, no Prefect)."""
from datetime import datetime, timedelta

import pandas as pd
import pytest

from data_checks import check
from khanza_sync.settings import Settings

NOW = datetime(2026, 11, 27, 9, 0)  # hospital local time
CREATED = "2026-11-27 01:00:00"  # UTC = 08:00 WIB


def row(**overrides):
    base = dict(id="r1", created_at=CREATED, nik="3310012345678901", full_name="Budi Santoso",
                birth_date="1980-02-01", gender="Laki-laki", phone="0812-3456-7890", address="Jl. Merapi 1",
                birth_place=None, mother_name=None, email=None, poliklinik="anak", doctor="dr-citra-spa",
                visit_date="2026-11-28", payment="umum", bpjs_number=None, local_queue_number=None, attempts=1)
    base.update(overrides)
    return base


def run(*rows, **settings):
    s = Settings(_env_file=None, booking_same_day_cutoff_hour=12, booking_max_days_ahead=30, **settings)
    return check(pd.DataFrame(list(rows), dtype=object), s, NOW)


@pytest.mark.parametrize(
    "overrides, code",
    [
        (dict(nik="0000000000000000"), "INVALID_NIK"),
        (dict(nik="331001234567890A"), "INVALID_NIK"),
        (dict(nik="331001234567"), "INVALID_NIK"),
        (dict(nik=None), "INVALID_NIK"),
        (dict(full_name=None), "MISSING_NAME"),
        (dict(full_name="   "), "MISSING_NAME"),
        (dict(full_name="A" * 41), "NAME_TOO_LONG"),
        (dict(full_name="Robert'); DROP TABLE pasien;--"), "INVALID_NAME"),
        (dict(birth_date="2026-02-30"), "INVALID_BIRTH_DATE"),
        (dict(birth_date="1800-01-01"), "INVALID_BIRTH_DATE"),
        (dict(birth_date="2030-01-01"), "INVALID_BIRTH_DATE"),
        (dict(gender="x"), "INVALID_GENDER"),
        (dict(phone="12345"), "INVALID_PHONE"),
        (dict(address=None), "MISSING_ADDRESS"),
        (dict(visit_date="2026-13-01"), "INVALID_VISIT_DATE"),
        (dict(visit_date="2026-11-20"), "VISIT_DATE_PASSED"),
        (dict(visit_date="2027-06-01"), "OUTSIDE_BOOKING_WINDOW"),
        (dict(visit_date="2026-11-27", created_at="2026-11-27 06:00:00"), "OUTSIDE_BOOKING_WINDOW"),  # 13:00 WIB
        (dict(payment="cash"), "INVALID_PAYMENT"),
        (dict(payment="bpjs"), "INVALID_BPJS_NUMBER"),
        (dict(payment="bpjs", bpjs_number="12345"), "INVALID_BPJS_NUMBER"),
    ],
)
def test_each_rule_rejects_with_its_code(overrides, code):
    valid, rejections, report = run(row(id="bad", **overrides), row(id="good"))
    assert list(valid["id"]) == ["good"]
    assert rejections.to_dict("records")[0]["id"] == "bad"
    assert rejections.to_dict("records")[0]["error_code"] == code


def test_valid_rows_are_normalised_for_khanza():
    valid, rejections, _ = run(row(gender="Perempuan", phone="+62 812 3456 7890", payment="BPJS",
                                   bpjs_number="0001234567890", visit_date="2026-11-27"))
    assert rejections.empty
    r = valid.to_dict("records")[0]
    assert (r["gender"], r["phone"], r["payment"]) == ("P", "081234567890", "bpjs")
    assert r["visit_date"] == datetime(2026, 11, 27).date()


def test_report_carries_only_registration_ids():
    _, rejections, report = run(row(id="bad-nik", nik="1234"), row(id="ok"))
    failing = [entry for entry in report if not entry["success"]]
    assert failing == [{"name": "nik 16 digits", "code": "INVALID_NIK", "success": False, "ids": ["bad-nik"]}]
    assert "1234" not in str(report)


def test_first_failing_rule_wins_and_the_batch_goes_on():
    rows = [row(id=f"ok{i}") for i in range(50)] + [row(id="multi", nik="1", phone="1", payment="x")]
    valid, rejections, _ = run(*rows)
    assert len(valid) == 50
    assert rejections.set_index("id").loc["multi", "error_code"] == "INVALID_NIK"


def test_booking_window_is_a_setting():
    far = row(visit_date=(NOW + timedelta(days=40)).date().isoformat())
    assert run(far)[1]["error_code"].tolist() == ["OUTSIDE_BOOKING_WINDOW"]
    s = Settings(_env_file=None, booking_max_days_ahead=60)
    assert check(pd.DataFrame([far], dtype=object), s, NOW)[1].empty
