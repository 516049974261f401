"""The quota decision (khanza/schedule.py), in memory: the loader, the dry run and the remaining quota published
to the website all use it. No database."""
from collections import Counter
from datetime import date

import pandas as pd
import pytest

from khanza import registration
from khanza.masterdata import MasterData
from khanza.numbering import DayBook
from khanza.reconcile import MasterSnapshot, remaining_quota
from khanza.schedule import hari_kerja, quota_for, quota_full, quota_left, refusal, session_kuota
from khanza_sync.error_codes import ErrorCode
from tests.unit.loader_fakes import NoSQL, batch, registration_row

MONDAY, SUNDAY = date(2026, 11, 30), date(2026, 11, 29)


def test_weekdays_use_khanzas_hari_kerja_names():
    assert hari_kerja(MONDAY) == "SENIN"
    assert hari_kerja(SUNDAY) == "AKHAD"  # not MINGGU


@pytest.mark.parametrize("taken, quota, full", [(0, 5, False), (4, 5, False), (5, 5, True), (9, 5, True),
                                                (0, 0, True)])  # kuota 0: nobody fits
def test_full_when_taken_reaches_the_kuota(taken, quota, full):
    assert quota_full(taken, quota) is full


@pytest.mark.parametrize("taken, quota, left", [(0, 5, 5), (3, 5, 2), (5, 5, 0), (7, 5, 0)])
def test_places_left_never_negative(taken, quota, left):
    assert quota_left(taken, quota) == left


@pytest.mark.parametrize("kuota, counts", [(None, 0), (float("nan"), 0), (12, 12), (7.0, 7)])
def test_a_null_session_kuota_counts_zero(kuota, counts):
    assert session_kuota(kuota) == counts


def md_with(**schedules) -> MasterData:
    return MasterData(schedules={tuple(key.split("_")): kuota for key, kuota in schedules.items()})


def test_refusal_no_schedule_on_another_weekday_or_clinic():
    md = md_with(D001_INT_SENIN=3)
    assert refusal(md, "D001", "INT", MONDAY, taken=0) is None
    assert refusal(md, "D001", "INT", SUNDAY, taken=0) is ErrorCode.NO_SCHEDULE
    assert refusal(md, "D001", "MATA", MONDAY, taken=0) is ErrorCode.NO_SCHEDULE
    assert refusal(md, "D002", "INT", MONDAY, taken=0) is ErrorCode.NO_SCHEDULE


def test_refusal_quota_full_at_the_kuota_and_not_before():
    md = md_with(D001_INT_SENIN=3)
    assert [refusal(md, "D001", "INT", MONDAY, taken=n) for n in range(5)] == [
        None, None, None, ErrorCode.QUOTA_FULL, ErrorCode.QUOTA_FULL]


def test_a_session_with_zero_kuota_refuses_as_quota_full_not_as_no_schedule():
    md = md_with(D001_INT_SENIN=0)
    assert quota_for(md, "D001", "INT", MONDAY) == 0
    assert refusal(md, "D001", "INT", MONDAY, taken=0) is ErrorCode.QUOTA_FULL


def snapshot(sessions: list[tuple], booked: list[tuple]) -> MasterSnapshot:
    empty = pd.DataFrame()
    schedules = pd.DataFrame(sessions, columns=["kd_dokter", "kd_poli", "hari_kerja", "kuota"])
    booked_frame = pd.DataFrame(booked, columns=["visit_date", "kd_dokter", "kd_poli", "registered"])
    return MasterSnapshot(empty, empty, empty, schedules, booked_frame)


def test_remaining_quota_takes_the_largest_session_and_counts_a_null_kuota_zero():
    # Three Monday sessions (8, 12, NULL) for D001 at INT, one Monday session for D002 at MATA.
    snap = snapshot([("D001", "INT", "SENIN", 8), ("D001", "INT", "SENIN", 12), ("D001", "INT", "SENIN", None),
                     ("D002", "MATA", "SENIN", 2)],
                    [(MONDAY, "D001", "INT", 3), (MONDAY, "D002", "MATA", 5)])
    rows = remaining_quota(snap, SUNDAY, MONDAY).to_dict("records")
    assert [(r["visit_date"], r["kd_dokter"], r["kuota"], r["registered"], r["remaining"]) for r in rows] == [
        (MONDAY, "D001", 12, 3, 9), (MONDAY, "D002", 2, 5, 0)]  # nothing on Sunday; overbooked shows 0


def test_a_days_sessions_combine_as_the_largest_kuota():
    """Mobile JKN counts the whole day's visits against the chosen session's kuota, so the most a day can ever
    hold through Khanza is its largest session's kuota (not the sum)."""
    assert session_kuota(None) == 0
    assert quota_for(md_with(D001_INT_SENIN=12), "D001", "INT", MONDAY) == 12


def test_website_remaining_quota_and_loader_refusal_agree():
    """A doctor-day the website shows with 0 places left is exactly one the loader refuses as QUOTA_FULL."""
    md = md_with(D001_INT_SENIN=4)
    for registered in range(7):
        snap = snapshot([("D001", "INT", "SENIN", 4)], [(MONDAY, "D001", "INT", registered)])
        remaining = remaining_quota(snap, MONDAY, MONDAY)["remaining"].iloc[0]
        loader = refusal(md, "D001", "INT", MONDAY, taken=registered)
        assert (remaining == 0) == (loader is ErrorCode.QUOTA_FULL), registered


# ---------------------------------------------------------------- the loader asks the same rule, before any write


class WouldWrite(Exception):
    pass


def loader_batch(taken: int, kuota: int | None) -> registration.Batch:
    md = MasterData(schedules={} if kuota is None else {("D001", "INT", "SENIN"): kuota})
    return batch(MONDAY, md=md, book=DayBook(day=MONDAY, scope="dokter", visits=Counter({("D001", "INT"): taken})))


@pytest.mark.parametrize("taken, kuota, code", [(3, 3, "QUOTA_FULL"), (4, 3, "QUOTA_FULL"), (0, 0, "QUOTA_FULL"),
                                                (0, None, "NO_SCHEDULE")])
def test_loader_rejects_with_the_rules_code(taken, kuota, code):
    result = registration._load_one(NoSQL(), registration_row(MONDAY), loader_batch(taken, kuota))
    assert (result["status"], result["error_code"]) == ("rejected", code)
    assert result["no_rawat"] is None and result["no_reg"] is None


def test_loader_goes_on_to_create_the_patient_while_a_place_is_left(monkeypatch):
    def create(*args, **kwargs):
        raise WouldWrite
    monkeypatch.setattr(registration.patients, "create", create)
    with pytest.raises(WouldWrite):
        registration.register(NoSQL(), registration_row(MONDAY), loader_batch(2, 3))
