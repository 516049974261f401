from datetime import date

import pandas as pd
import pytest

from data_checks.normalize import (
    clean_text,
    normalize_phone,
    parse_dates,
    shorten,
    to_latin1,
)


@pytest.mark.parametrize("raw", ["081234567890", "0812-3456-7890", "0812 3456 7890", "+62 812-3456-7890",
                                 "+6281234567890", "6281234567890", "81234567890", "(0812) 3456.7890"])
def test_phone_formats_normalise_to_08(raw):
    assert normalize_phone(raw) == "081234567890"


def test_latin1_kept_and_others_transliterated():
    assert to_latin1("José Müller") == "José Müller"  # latin1 as it is
    assert to_latin1("Nguyễn") == "Nguyen"
    assert to_latin1("Łukasz") == "Lukasz"
    assert to_latin1("张伟").strip() == "Zhang Wei"
    out = clean_text("Budi\x00 Santoso\t😀")
    assert out.encode("latin-1") and "\x00" not in out


def test_shorten_cuts_at_a_word_boundary():
    text = "Jl. Panjang Sekali Nomor 12 RT 01 RW 02"
    assert shorten(text, 20) == "Jl. Panjang Sekali"
    assert shorten(text, 200) == text
    assert shorten("x" * 30, 10) == "x" * 10  # no space at all: hard cut


def test_impossible_dates_become_missing():
    parsed = parse_dates(pd.Series(["2026-02-30", "1990-01-01", "garbage", None, date(2000, 2, 29)]))
    assert list(parsed) == [None, date(1990, 1, 1), None, None, date(2000, 2, 29)]
