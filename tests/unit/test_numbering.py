from datetime import date

import pytest

from khanza.numbering import RmFormat, day_range, format_no_rawat, format_no_reg


def test_no_rawat_format_and_day_range():
    day = date(2026, 3, 9)
    assert format_no_rawat(day, 7) == "2026/03/09/000007"
    lo, hi = day_range(day)
    assert lo == "2026/03/09/" and hi == "2026/03/090"
    # every number of that day sorts inside the range, the next day's outside
    assert lo <= format_no_rawat(day, 999999) < hi
    assert not (lo <= format_no_rawat(date(2026, 3, 10), 1) < hi)


def test_no_reg_three_digits():
    assert format_no_reg(1) == "001"
    assert format_no_reg(42) == "042"
    assert format_no_reg(1000) == "1000"


@pytest.mark.parametrize(
    "urutan, stored, expected",
    [
        ("Straight", "000062", "000063"),
        ("Straight", "000099", "000100"),
        # Terminal: pairs read reversed: 12|34|56 -> 563412 + 1 = 563413 -> written back 13|34|56
        ("Terminal", "123456", "133456"),
        ("Terminal", "990000", "000100"),  # 99|00|00 -> 000099 + 1 = 000100 -> 00|01|00 reversed
        # Middle: pairs read in order 3-4, 1-2, 5-6: 12|34|56 -> 341256 + 1 = 341257 -> 12|34|57
        ("Middle", "123456", "123457"),
        ("Middle", "009999", "019900"),  # 00|99|99 -> 990099 + 1 = 990100 -> 99|01|00 -> stored 01|99|00
    ],
)
def test_rm_digit_orders(urutan, stored, expected):
    assert RmFormat(urutan=urutan).next_after(stored, date(2026, 11, 27)) == expected


def test_rm_terminal_round_trip_is_a_counter():
    """Terminal numbers issued one after another are the counter 1, 2, 3... with pairs reversed."""
    fmt = RmFormat(urutan="Terminal")
    stored = "000000"
    issued = []
    for _ in range(3):
        stored = fmt.next_after(stored, date(2026, 1, 1))
        issued.append(stored)
    assert issued == ["010000", "020000", "030000"]


@pytest.mark.parametrize(
    "tahun, bulan, posisi, expected",
    [
        (True, True, "Depan", "2611000063"),
        (True, False, "Depan", "26000063"),
        (False, True, "Depan", "11000063"),
        (True, True, "Belakang", "000063-1126"),
        (True, False, "Belakang", "000063-26"),
        (False, False, "Belakang", "000063"),
    ],
)
def test_rm_year_month_prefix_and_suffix(tahun, bulan, posisi, expected):
    fmt = RmFormat(urutan="Straight", tahun=tahun, bulan=bulan, posisi=posisi)
    stored = fmt.decorate("000062", date(2026, 11, 27))
    assert fmt.next_after(stored, date(2026, 11, 27)) == expected


def test_rm_core_of_garbage_counter_starts_at_one():
    assert RmFormat().next_after("", date(2026, 1, 1)) == "000001"
    assert RmFormat().next_after("abc", date(2026, 1, 1)) == "000001"
