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
        (dict(payment="cash"), "INVALID_PAYMENT"),
        (dict(payment="bpjs"), "INVALID_BPJS_NUMBER"),
        (dict(payment="bpjs", bpjs_number="12345"), "INVALID_BPJS_NUMBER"),
        (dict(created_at=None), "INVALID_CREATED_AT"),
        (dict(created_at="yesterday"), "INVALID_CREATED_AT"),
        (dict(created_at="2026-11-27 09:00:00"), "CREATED_AT_IN_FUTURE"),  # 09:00 WIB written as UTC: 7 h ahead
    ],
)
def test_each_rule_rejects_with_its_code(overrides, code):
    valid, rejections, report = run(row(id="bad", **overrides), row(id="good"))
    assert list(valid["id"]) == ["good"]
    assert rejections.to_dict("records")[0]["id"] == "bad"
    assert rejections.to_dict("records")[0]["error_code"] == code


def test_same_day_registration_after_the_cut_off_is_outside_the_booking_window():
    s = Settings(_env_file=None, booking_same_day_cutoff_hour=12, booking_max_days_ahead=30)
    late = row(id="late", visit_date="2026-11-27", created_at="2026-11-27 06:00:00")  # 13:00 WIB
    early = row(id="early", visit_date="2026-11-27", created_at="2026-11-27 04:00:00")  # 11:00 WIB
    valid, rejections, _ = check(pd.DataFrame([late, early], dtype=object), s, datetime(2026, 11, 27, 14, 0))
    assert list(valid["id"]) == ["early"] and list(rejections["error_code"]) == ["OUTSIDE_BOOKING_WINDOW"]


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


# ---------------------------------------------------------------- created_at: present, a timestamp, not in the future


def test_a_created_at_ahead_within_the_skew_is_fine_beyond_it_the_row_waits_with_the_offset_reported():
    """NOW is 09:00 WIB = 02:00 UTC. A clock 4 minutes fast is within the default 5-minute skew; a website that
    writes local time as UTC puts created_at 7 hours ahead: the row is not valid, and the report says by how much."""
    valid, rejections, report = run(row(id="drift", created_at="2026-11-27 02:04:00"),
                                    row(id="local-time", created_at="2026-11-27 09:00:00"),
                                    row(id="also-local", created_at="2026-11-27 08:30:00"))
    assert list(valid["id"]) == ["drift"]
    assert dict(zip(rejections["id"], rejections["error_code"])) == {
        "local-time": "CREATED_AT_IN_FUTURE", "also-local": "CREATED_AT_IN_FUTURE"}
    clock = [e for e in report if e["code"] == "CREATED_AT_IN_FUTURE"][0]
    assert clock["offset_seconds"] == 7 * 3600 and sorted(clock["ids"]) == ["also-local", "local-time"]
    _, tight, _ = run(row(id="drift", created_at="2026-11-27 02:04:00"), created_at_max_skew_seconds=60)
    assert list(tight["error_code"]) == ["CREATED_AT_IN_FUTURE"]  # the skew is a setting


def test_a_future_created_at_waits_before_any_rule_judged_by_the_submission_time():
    """Same-day registration, created_at 7 h ahead (it would read as 16:00 WIB, after the 12:00 cut-off): it is
    not rejected OUTSIDE_BOOKING_WINDOW by a time that is wrong; it waits."""
    _, rejections, _ = run(row(visit_date="2026-11-27", created_at="2026-11-27 09:00:00"))
    assert list(rejections["error_code"]) == ["CREATED_AT_IN_FUTURE"]


def test_waiting_rows_become_deferred_outcomes_never_rejections():
    from khanza_sync import outcomes

    _, rejections, _ = run(row(id="late", created_at="2026-11-27 09:00:00"), row(id="junk", created_at="junk"))
    result = outcomes.rejected(rejections).set_index("id")
    assert result.loc["late", ["status", "outcome"]].tolist() == ["deferred", "deferred"]
    assert result.loc["junk", ["status", "outcome"]].tolist() == ["rejected", "rejected"]
