"""patients.PatientIndex: who a registration is, by NIK with the BPJS card checked; every disagreement is a
PATIENT_CONFLICT for staff, never a merge. No database (the index is what the batch read once)."""
from datetime import date

import pytest

from khanza import registration
from khanza.patients import PatientConflict, PatientIndex
from tests.unit.loader_fakes import NoSQL, batch, registration_row

NIK_A, NIK_B, NIK_NEW = "3310010101800001", "3310010101800002", "3310010101800003"
CARD_A, CARD_B = "0001234567890", "0009876543210"


def patient(rm: str, nik: str, card: str | None = "") -> dict:
    return {"no_rkm_medis": rm, "no_ktp": nik, "no_peserta": card, "tgl_lahir": date(1980, 1, 1)}


def index(*patients: dict) -> PatientIndex:
    people = PatientIndex()
    for p in patients:
        people.add(p)
    return people


def test_found_by_nik_and_unknown_nik_is_a_new_patient():
    people = index(patient("000001", NIK_A), patient("000002", NIK_B))
    assert people.match(NIK_B, None)["no_rkm_medis"] == "000002"
    assert people.match(NIK_NEW, None) is None


def test_same_card_matches():
    people = index(patient("000001", NIK_A, CARD_A))
    assert people.match(NIK_A, CARD_A)["no_rkm_medis"] == "000001"


@pytest.mark.parametrize("own_card", ["", "-", None, "  "])
def test_patient_without_a_card_matches_a_registration_with_one(own_card):
    people = index(patient("000001", NIK_A, own_card))
    assert people.match(NIK_A, CARD_A)["no_rkm_medis"] == "000001"


def test_card_not_given_does_not_check_the_patients_card():
    people = index(patient("000001", NIK_A, CARD_A))
    assert people.match(NIK_A, None)["no_rkm_medis"] == "000001"
    assert people.match(NIK_A, "")["no_rkm_medis"] == "000001"


def test_matched_patient_holding_another_card_is_a_conflict():
    people = index(patient("000001", NIK_A, CARD_A))
    with pytest.raises(PatientConflict):
        people.match(NIK_A, CARD_B)


def test_card_of_another_patient_is_a_conflict_for_a_known_or_a_new_nik():
    people = index(patient("000001", NIK_A, CARD_A), patient("000002", NIK_B))
    with pytest.raises(PatientConflict):
        people.match(NIK_B, CARD_A)  # NIK_B has no card of its own, but CARD_A is NIK_A's
    with pytest.raises(PatientConflict):
        people.match(NIK_NEW, CARD_A)  # a new patient would be created holding NIK_A's card


def test_card_holders_read_apart_from_the_patients_count():
    """The batch reads card holders for every card in the batch, also of patients it did not read by NIK."""
    people = PatientIndex()
    people.card_holders[CARD_B] = {NIK_B}
    with pytest.raises(PatientConflict):
        people.match(NIK_NEW, CARD_B)
    assert people.match(NIK_B, CARD_B) is None  # its own card: no conflict (the patient itself was not read)


def test_nik_on_two_patients_is_a_conflict_even_without_a_card():
    people = index(patient("000001", NIK_A), patient("000007", NIK_A))
    with pytest.raises(PatientConflict):
        people.match(NIK_A, None)


def test_trailing_spaces_in_khanza_do_not_hide_a_patient():
    """MariaDB's latin1 comparison finds 'NIK ' for 'NIK'; the in-memory match must find it too."""
    people = index(patient("000001", NIK_A + " ", CARD_A + "  "))
    assert people.match(NIK_A, CARD_A)["no_rkm_medis"] == "000001"
    with pytest.raises(PatientConflict):
        people.match(NIK_NEW, CARD_A)


def test_a_patient_created_in_the_batch_is_matched_by_the_next_registration():
    people = index()
    people.add(patient("000010", NIK_NEW, CARD_B))
    assert people.match(NIK_NEW, CARD_B)["no_rkm_medis"] == "000010"
    with pytest.raises(PatientConflict):
        people.match(NIK_A, CARD_B)


def test_conflict_text_never_carries_the_nik_or_card():
    people = index(patient("000001", NIK_A, CARD_A), patient("000002", NIK_A))
    with pytest.raises(PatientConflict) as raised:
        people.match(NIK_A, CARD_B)
    assert NIK_A not in str(raised.value) and CARD_B not in str(raised.value)


# ---------------------------------------------------------------- what the loader makes of a conflict


def test_loader_rejects_a_conflict_as_patient_conflict_without_writing():
    day = date(2026, 11, 30)
    reg = registration_row(day, id="web-9", nik=NIK_A, bpjs_number=CARD_B, kd_pj="BPJ")
    result = registration._load_one(NoSQL(), reg, batch(day, people=index(patient("000001", NIK_A, CARD_A))))
    assert (result["status"], result["error_code"], result["no_rkm_medis"]) == ("rejected", "PATIENT_CONFLICT", None)
    assert NIK_A not in result["message"] and CARD_B not in result["message"]
