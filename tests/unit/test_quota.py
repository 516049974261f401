"""The quota decision (khanza/schedule.py), in memory: the loader, the dry run and the remaining quota published
to the website all use it. No database."""
from collections import Counter
from datetime import date

import pytest

from khanza import registration
from khanza.masterdata import MasterData
from khanza.numbering import DayBook
from khanza.schedule import hari_kerja, quota_for, quota_full, quota_left, quota_rows, refusal, session_kuota
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


def active_md(**schedules) -> MasterData:
    md = md_with(**schedules)
    md.active_dokter = {key[0] for key in md.schedules}
    md.active_poli = {key[1]: (0.0, 0.0) for key in md.schedules}
    return md


def test_published_quota_takes_the_days_kuota_and_skips_days_without_a_session():
    md = active_md(D001_INT_SENIN=12, D002_MATA_SENIN=2)
    books = {SUNDAY: DayBook(day=SUNDAY, scope="dokter"),
             MONDAY: DayBook(day=MONDAY, scope="dokter", visits=Counter({("D001", "INT"): 3, ("D002", "MATA"): 5}))}
    rows = quota_rows(md, books, booking=False)
    assert [(r["visit_date"], r["kd_dokter"], r["kuota"], r["registered"], r["remaining"]) for r in rows] == [
        (MONDAY, "D001", 12, 3, 9), (MONDAY, "D002", 2, 5, 0)]  # nothing on Sunday; overbooked shows 0


def test_published_quota_leaves_out_inactive_doctors_and_clinics():
    md = active_md(D001_INT_SENIN=12, D002_MATA_SENIN=2)
    md.active_dokter.discard("D002")
    assert [r["kd_dokter"] for r in quota_rows(md, {MONDAY: DayBook(day=MONDAY, scope="dokter")}, booking=False)] == [
        "D001"]


def test_booking_mode_publishes_the_doctors_bookings_on_each_of_his_clinics():
    """The booking dialogs count the doctor's bookings that day whatever the clinic: so does the published figure."""
    md = active_md(D001_INT_SENIN=4, D001_MATA_SENIN=4)
    book = DayBook(day=MONDAY, scope="dokter", visits=Counter({("D001", "INT"): 1}), bookings=Counter({"D001": 3}))
    rows = quota_rows(md, {MONDAY: book}, booking=True)
    assert [(r["kd_poli"], r["registered"], r["remaining"]) for r in rows] == [("INT", 3, 1), ("MATA", 3, 1)]
    visits = quota_rows(md, {MONDAY: book}, booking=False)
    assert [(r["kd_poli"], r["registered"]) for r in visits] == [("INT", 1), ("MATA", 0)]


def test_a_days_sessions_combine_as_the_largest_kuota():
    """Mobile JKN counts the whole day's visits against the chosen session's kuota, so the most a day can ever
    hold through Khanza is its largest session's kuota (not the sum)."""
    assert session_kuota(None) == 0
    assert quota_for(md_with(D001_INT_SENIN=12), "D001", "INT", MONDAY) == 12


@pytest.mark.parametrize("booking", [False, True], ids=["visits", "bookings"])
def test_website_remaining_quota_and_loader_refusal_agree(booking):
    """A doctor-day the website shows with 0 places left is exactly one the loader refuses as QUOTA_FULL."""
    md = active_md(D001_INT_SENIN=4)
    for registered in range(7):
        book = (DayBook(day=MONDAY, scope="dokter", bookings=Counter({"D001": registered})) if booking else
                DayBook(day=MONDAY, scope="dokter", visits=Counter({("D001", "INT"): registered})))
        remaining = quota_rows(md, {MONDAY: book}, booking=booking)[0]["remaining"]
        loader = refusal(md, "D001", "INT", MONDAY, taken=book.taken("D001", "INT", booking=booking))
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
