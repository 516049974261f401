"""numbering.DayBook: how a batch allocates no_rawat and no_reg in memory after one read of the day, per
URUTNOREG scope, with visits and bookings in separate or shared sequences. No database."""
from datetime import date

import pytest

from khanza.numbering import DayBook, no_rawat_day, no_rawat_prefix, scope_columns, scope_key

DAY = date(2026, 11, 28)


def test_first_numbers_of_an_empty_day():
    book = DayBook(day=DAY, scope="dokter")
    assert book.next_no_rawat() == "2026/11/28/000001"
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "001"
    assert book.taken("D001", "INT") == 0


def test_no_rawat_follows_the_days_counter_across_doctors():
    book = DayBook(day=DAY, scope="dokter", last_rawat=41)
    assert book.next_no_rawat() == "2026/11/28/000042"
    book.add("D001", "INT", "001", no_rawat="2026/11/28/000042")
    book.add("D002", "MATA", "001", no_rawat="2026/11/28/000043")
    assert book.next_no_rawat() == "2026/11/28/000044"


def test_asking_does_not_allocate():
    """next_* only propose; the number is used once the caller records it with add (after commit)."""
    book = DayBook(day=DAY, scope="dokter", last_rawat=5, visit_max={("D001",): 2})
    assert book.next_no_rawat() == book.next_no_rawat() == "2026/11/28/000006"
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "003"
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "003"


def test_an_older_no_rawat_never_moves_the_counter_back():
    book = DayBook(day=DAY, scope="dokter", last_rawat=9)
    book.add("D001", "INT", "004", no_rawat="2026/11/28/000003")  # e.g. a renumbered visit
    assert book.next_no_rawat() == "2026/11/28/000010"


@pytest.mark.parametrize("scope, expected", [
    # the same three registrations, numbered per doctor, per clinic, or per doctor and clinic
    ("dokter", ["001", "001", "002"]),
    ("poli", ["001", "002", "001"]),
    ("dokter+poli", ["001", "001", "001"]),
])
def test_no_reg_sequence_per_urutnoreg_scope(scope, expected):
    book = DayBook(day=DAY, scope=scope)
    got = []
    for kd_dokter, kd_poli in [("D001", "INT"), ("D002", "INT"), ("D001", "MATA")]:
        no_reg = book.next_no_reg(kd_dokter, kd_poli, visits=True, bookings=False)
        book.add(kd_dokter, kd_poli, no_reg)
        got.append(no_reg)
    assert got == expected


def test_unknown_scope_counts_per_doctor():
    assert scope_columns("something else") == scope_columns("dokter") == ("kd_dokter",)
    assert scope_key("something else", "D001", "INT") == ("D001",)
    assert scope_key("dokter+poli", "D001", "INT") == ("D001", "INT")
    assert scope_key("poli", "D001", "INT") == ("INT",)


def test_visits_and_bookings_are_separate_sequences_unless_shared():
    book = DayBook(day=DAY, scope="dokter", visit_max={("D001",): 7}, booking_max={("D001",): 12})
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "008"
    assert book.next_no_reg("D001", "INT", visits=False, bookings=True) == "013"
    assert book.next_no_reg("D001", "INT", visits=True, bookings=True) == "013"  # BASENOREG=booking: the max of both
    book = DayBook(day=DAY, scope="dokter", visit_max={("D001",): 12}, booking_max={("D001",): 7})
    assert book.next_no_reg("D001", "INT", visits=False, bookings=True) == "008"
    assert book.next_no_reg("D001", "INT", visits=True, bookings=True) == "013"


def test_a_booking_is_recorded_in_the_booking_sequence_only():
    book = DayBook(day=DAY, scope="dokter")
    book.add("D001", "INT", "005", booking=True)
    assert book.next_no_reg("D001", "INT", visits=False, bookings=True) == "006"
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "001"
    assert book.next_no_rawat() == "2026/11/28/000001"  # a booking has no no_rawat


def test_taken_counts_visits_per_doctor_and_clinic_and_bookings_per_doctor_whatever_the_scope():
    """Mobile JKN counts reg_periksa rows for clinic + doctor + date; the booking dialogs count the doctor's
    bookings that day. Neither looks at the other table."""
    book = DayBook(day=DAY, scope="poli")
    book.add("D001", "INT", "001", no_rawat="2026/11/28/000001")
    book.add("D002", "INT", "002", no_rawat="2026/11/28/000002")
    book.add("D001", "INT", "003", booking=True)
    book.add("D001", "MATA", "001", booking=True)
    assert (book.taken("D001", "INT"), book.taken("D002", "INT"), book.taken("D001", "MATA")) == (1, 1, 0)
    assert (book.taken("D001", "INT", booking=True), book.taken("D001", "MATA", booking=True)) == (2, 2)
    assert book.taken("D002", "INT", booking=True) == 0


def test_a_renumbered_registration_takes_no_second_place_in_the_quota():
    book = DayBook(day=DAY, scope="dokter")
    book.add("D001", "INT", "001", no_rawat="2026/11/28/000001")
    book.add("D001", "INT", "002", new_registration=False)  # the same visit, given a new no_reg
    assert book.taken("D001", "INT") == 1
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "003"


def test_no_reg_beyond_999_keeps_counting():
    book = DayBook(day=DAY, scope="dokter", visit_max={("D001",): 999})
    assert book.next_no_reg("D001", "INT", visits=True, bookings=False) == "1000"


def test_no_rawat_day_reads_back_the_prefix():
    assert no_rawat_day("2026/11/28/000042") == DAY
    assert no_rawat_day("2026/11/28") == DAY  # LEFT(no_rawat, 10), as the reconcile queries return it
    assert no_rawat_day(no_rawat_prefix(date(2027, 1, 2)) + "000001") == date(2027, 1, 2)
