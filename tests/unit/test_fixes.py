"""The plain logic of fixing one registration (khanza_sync/fixes.py) and its parameter types: which ids may be
re-queued, what disagrees with the chosen patient (field names only), and the bounds staff input must keep."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from khanza_sync import fixes, params

NOW = datetime(2026, 12, 7, 8, 0)


def states(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["id", "status", "error_code", "next_attempt_at", "attempts"], dtype=object)


def test_requeue_plan_per_id():
    plans = fixes.requeue_plan(["rej", "tma", "deferred", "due", "synced", "cancelled", "nope"], states(
        ("rej", "rejected", "INVALID_NIK", None, 1), ("tma", "rejected", "TOO_MANY_ATTEMPTS", None, 9),
        ("deferred", "pending", "KHANZA_UNREACHABLE", datetime(2026, 12, 7, 9), 2), ("due", "pending", None, None, 0),
        ("synced", "synced", None, None, 1), ("cancelled", "cancelled", "CANCELLED", None, 1)), NOW)
    got = {p.id: (p.action, p.note) for p in plans}
    assert got["rej"] == ("requeue", "was rejected INVALID_NIK") and got["tma"][0] == "requeue"
    assert got["deferred"] == ("requeue", "was deferred KHANZA_UNREACHABLE") and got["due"][0] == "due"
    assert [got[i][0] for i in ("synced", "cancelled", "nope")] == ["refused"] * 3
    assert "already synced" in got["synced"][1] and "no such registration" in got["nope"][1]


def test_differences_name_fields_never_values():
    reg = {"nik": "3310014107800001", "bpjs_number": "9999999999999", "birth_date": date(1985, 3, 14),
           "full_name": "Siti  aminah", "gender": "P"}
    patient = {"no_ktp": "3310014107800001", "no_peserta": "0001234567890", "tgl_lahir": date(1980, 7, 1),
               "nm_pasien": "SITI AMINAH", "jk": "P"}
    found = fixes.differences(reg, patient)
    assert found == ["bpjs card differs", "birth date differs"]  # name compared ignoring case and spaces
    assert fixes.findings_text(fixes.differences({**reg, "bpjs_number": None, "birth_date": date(1980, 7, 1)},
                                                 patient)) == "nothing differs"
    assert "bpjs card not in Khanza" in fixes.differences(reg, {**patient, "no_peserta": "-"})


def test_decision_parameters_must_fit_together():
    assert fixes.decision_refusal("link_patient", None) and fixes.decision_refusal("link_patient", "  ")
    assert fixes.decision_refusal("new_patient", "000050")
    assert fixes.decision_refusal("link_patient", "000050") is None and fixes.decision_refusal("new_patient", None) is None


@pytest.mark.parametrize("annotated, bad", [
    (params.RegistrationIds, []), (params.RegistrationIds, [f"id-{i}" for i in range(101)]),
    (params.RegistrationIds, ["  "]), (params.DecidedBy, " "), (params.Reason, "x"), (params.NoRkmMedis, "1" * 16)])
def test_parameter_bounds(annotated, bad):
    with pytest.raises(ValidationError):
        TypeAdapter(annotated).validate_python(bad)


def test_parameters_are_stripped():
    assert TypeAdapter(params.RegistrationIds).validate_python([" web-1 "]) == ["web-1"]
    assert fixes.unique(["a", " a", "b", "a "]) == ["a", "b"]
