"""The record-format rules (khanza_sync/rules.py) that the data checks, the loader and the log filter share:
the same NIK / card / name limits wherever a registration is judged."""
from datetime import date, datetime

import pandas as pd
import pytest

from data_checks import check
from khanza import registration
from khanza.masterdata import PLACEHOLDER_LOOKUPS, MasterData
from khanza.patients import new_patient_row
from khanza.visits import visit_row
from khanza_sync import privacy, rules
from khanza_sync.error_codes import ErrorCode
from khanza_sync.settings import Settings

NIK = "3310012345678901"
# Values the data checks' normalisation leaves as they are (no spaces, ASCII), so both sides judge the same text.
NIK_CANDIDATES = [NIK, "0000000000000000", "0000000000000001", "331001234567890", "33100123456789012",
                  "331001234567890A", "3310-0123456789", "+3310012345678901"]


@pytest.mark.parametrize("value, ok", [(NIK, True), ("0000000000000001", True), ("0000000000000000", False),
                                       ("331001234567890", False), ("33100123456789012", False),
                                       ("331001234567890A", False), (NIK + "\n", False), (None, False),
                                       (3310012345678901, False)])
def test_nik(value, ok):
    assert rules.valid_nik(value) is ok


@pytest.mark.parametrize("value, ok", [("0001234567890", True), ("000123456789", False), ("00012345678901", False),
                                       ("000123456789X", False), ("0001234567890\n", False), (None, False),
                                       (float("nan"), False)])
def test_bpjs_number(value, ok):
    assert rules.valid_bpjs_number(value) is ok


def form(reg_id: str, **values) -> dict:
    return {"id": reg_id, "created_at": "2026-11-27 01:00:00", "nik": NIK, "full_name": "Budi Santoso",
            "birth_date": "1980-02-01", "gender": "L", "phone": "081234567890", "address": "Jl. Merapi 1",
            "birth_place": None, "mother_name": None, "email": None, "poliklinik": "anak", "doctor": "dr-citra-spa",
            "visit_date": "2026-11-28", "payment": "umum", "bpjs_number": None, "local_queue_number": None,
            "attempts": 1, **values}


NIK_ROWS = [form(f"n{i}", nik=nik) for i, nik in enumerate(NIK_CANDIDATES)]
NAME_ROWS = [form("name40", full_name="A" * 40), form("name41", full_name="A" * 41)]


@pytest.fixture(scope="module")
def checked() -> dict[str, str | None]:
    """One run of the data checks over every form below (the suite costs ~0.5 s a run): id -> error code."""
    rows = NIK_ROWS + NAME_ROWS
    _, rejections, _ = check(pd.DataFrame(rows, dtype=object), Settings(_env_file=None), datetime(2026, 11, 27, 9))
    codes = dict(zip(rejections["id"], rejections["error_code"]))
    return {r["id"]: codes.get(r["id"]) for r in rows}


def test_loader_refuses_exactly_the_niks_the_data_checks_refuse(checked):
    """Defence in depth must not be a second, different rule: a NIK one side accepts, the other accepts too."""
    refused_by_checks = {r["id"] for r in NIK_ROWS if checked[r["id"]] == "INVALID_NIK"}
    refused_by_loader = {r["id"] for r in NIK_ROWS if registration._malformed(r) is ErrorCode.INVALID_NIK}
    assert refused_by_checks == refused_by_loader
    assert refused_by_loader == {"n1", "n3", "n4", "n5", "n6", "n7"}  # all but the two real NIKs


def test_loader_refuses_a_malformed_card_only_when_one_is_given():
    assert registration._malformed({"nik": NIK, "bpjs_number": None}) is None
    assert registration._malformed({"nik": NIK, "bpjs_number": "0001234567890"}) is None
    assert registration._malformed({"nik": NIK, "bpjs_number": "12345"}) is ErrorCode.INVALID_BPJS_NUMBER


def test_log_filter_masks_numbers_of_the_lengths_the_checks_accept():
    assert privacy.mask(f"nik {NIK}") == "nik ************8901"
    assert privacy.mask("kartu 0001234567890") == "kartu *********7890"


def test_messages_state_the_limits_the_rules_apply():
    assert "16 digit" in ErrorCode.INVALID_NIK.message
    assert "13 digit" in ErrorCode.INVALID_BPJS_NUMBER.message
    assert "40 karakter" in ErrorCode.NAME_TOO_LONG.message and "40 characters" in ErrorCode.NAME_TOO_LONG.message


def test_names_up_to_khanzas_40_characters_pass(checked):
    assert (checked["name40"], checked["name41"]) == (None, "NAME_TOO_LONG")


def test_shorten_never_cuts_a_word_when_a_space_allows():
    assert rules.shorten("Jl. Panjang, Sekali", 12) == "Jl. Panjang"  # the comma goes with the cut
    assert rules.shorten("Jl. Panjang Sekali", 18) == "Jl. Panjang Sekali"  # exactly fits
    assert rules.shorten("Jl. Panjang Sekali", 17) == "Jl. Panjang"
    assert rules.shorten("Supercalifragilistic", 5) == "Super"  # one long word: a hard cut
    assert rules.shorten(None, 5) is None


def test_new_patients_alamatpj_is_the_address_cut_at_a_word_to_khanzas_100():
    address = " ".join(["Jl. Panjang Sekali Nomor 123"] * 6)  # 173 characters
    md = MasterData(placeholders={name: 1 for name in PLACEHOLDER_LOOKUPS})
    reg = {"full_name": "Budi", "nik": NIK, "gender": "L", "birth_date": date(1980, 1, 1), "address": address,
           "phone": "081234567890"}
    row = new_patient_row(reg, "000123", "A09", md, date(2026, 11, 27))
    assert row["alamat"] == address
    assert len(row["alamatpj"]) <= 100 and address.startswith(row["alamatpj"])
    assert address[len(row["alamatpj"])] == " "  # ends where a word ends
    assert len(row["alamatpj"]) > 90  # and keeps what fits


def test_visit_almt_pj_is_cut_hard_at_khanzas_200():
    patient = {"no_rkm_medis": "000050", "tgl_lahir": date(1980, 7, 1), "alamat": "x" * 250}
    row = visit_row(no_reg="001", no_rawat="2026/11/28/000001", visit_date=date(2026, 11, 28),
                    clock=datetime(2026, 11, 27, 9), kd_dokter="D001", patient=patient, kd_poli="INT", kd_pj="A09",
                    fees=(1.0, 1.0), new_patient=False, first_visit_to_poli=False)
    assert row["almt_pj"] == "x" * 200
