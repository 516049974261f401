from datetime import date, datetime

import pytest

from khanza.visits import booking_row, umur_daftar, umur_text, visit_row


@pytest.mark.parametrize(
    "birth, on, expected",
    [
        (date(1985, 3, 14), date(2026, 3, 13), (40, "Th")),
        (date(1985, 3, 14), date(2026, 3, 14), (41, "Th")),
        (date(2026, 1, 31), date(2026, 11, 27), (9, "Bl")),
        (date(2026, 1, 31), date(2026, 2, 28), (28, "Hr")),  # not a full month, as TIMESTAMPDIFF
        (date(2026, 11, 20), date(2026, 11, 27), (7, "Hr")),
        (date(2026, 11, 27), date(2026, 11, 27), (0, "Hr")),
    ],
)
def test_umur_daftar_as_timestampdiff(birth, on, expected):
    assert umur_daftar(birth, on) == expected


def test_umur_text_years_months_days():
    assert umur_text(date(1980, 7, 1), date(2026, 11, 27)) == "46 Th 4 Bl 26 Hr"
    assert umur_text(date(2024, 2, 29), date(2025, 2, 28)) == "0 Th 11 Bl 30 Hr"
    assert umur_text(date(2026, 11, 27), date(2026, 11, 27)) == "0 Th 0 Bl 0 Hr"


PATIENT = {"no_rkm_medis": "000050", "tgl_lahir": date(1980, 7, 1), "tgl_daftar": date(2020, 1, 15),
           "alamat": "JL. MERAPI 10", "nm_kel": "DUKUH", "nm_kec": "KLATEN UTARA", "nm_kab": "KLATEN",
           "namakeluarga": "AHMAD", "keluarga": "SUAMI"}


def test_visit_row_existing_patient_matches_desktop():
    row = visit_row(no_reg="003", no_rawat="2026/11/28/000009", visit_date=date(2026, 11, 28),
                    clock=datetime(2026, 11, 27, 9, 15, 2), kd_dokter="D001", patient=PATIENT, kd_poli="INT",
                    kd_pj="BPJ", fees=(15000.0, 10000.0), new_patient=False, first_visit_to_poli=False)
    assert row == {
        "no_reg": "003", "no_rawat": "2026/11/28/000009", "tgl_registrasi": date(2026, 11, 28),
        "jam_reg": "09:15:02", "kd_dokter": "D001", "no_rkm_medis": "000050", "kd_poli": "INT",
        "p_jawab": "AHMAD", "almt_pj": "JL. MERAPI 10, DUKUH, KLATEN UTARA, KLATEN", "hubunganpj": "SUAMI",
        "biaya_reg": 10000.0, "stts": "Belum", "stts_daftar": "Lama", "status_lanjut": "Ralan", "kd_pj": "BPJ",
        "umurdaftar": 46, "sttsumur": "Th", "status_bayar": "Belum Bayar", "status_poli": "Lama",
    }


def simple_visit_row(visit_date: date, patient: dict, *, kd_poli: str = "INT", **flags) -> dict:
    """visit_row for queue 001 (no_rawat "x"), written 2026-11-27 09:00 for D001, payer A09, fees
    15000 (Baru) / 10000 (Lama)."""
    return visit_row(no_reg="001", no_rawat="x", visit_date=visit_date, clock=datetime(2026, 11, 27, 9),
                     kd_dokter="D001", patient=patient, kd_poli=kd_poli, kd_pj="A09", fees=(15000.0, 10000.0),
                     **flags)


def test_visit_row_new_patient_pays_registrasi_and_is_baru():
    """A patient created from a web booking has the visit date as tgl_daftar (DlgBookingPeriksa)."""
    row = visit_row(no_reg="001", no_rawat="2026/11/28/000001", visit_date=date(2026, 11, 28),
                    clock=datetime(2026, 11, 27, 9, 0), kd_dokter="D001",
                    patient={**PATIENT, "tgl_daftar": date(2026, 11, 28)}, kd_poli="INT", kd_pj="A09",
                    fees=(15000.0, 10000.0), first_visit_to_poli=True)
    assert (row["stts_daftar"], row["status_poli"], row["biaya_reg"]) == ("Baru", "Baru", 15000.0)


def test_stts_daftar_follows_tgl_daftar_only_whoever_made_the_patient():
    """Khanza's rule is tgl_daftar = tgl_registrasi; a patient registered today visiting next week is Lama."""
    row = simple_visit_row(date(2026, 12, 4), {**PATIENT, "tgl_daftar": date(2026, 11, 27)}, new_patient=True,
                           first_visit_to_poli=True)
    assert (row["stts_daftar"], row["biaya_reg"]) == ("Lama", 10000.0)


def test_age_at_registration_is_counted_on_the_day_the_row_is_written():
    """DlgReg isCekPasien: TIMESTAMPDIFF(..., tgl_lahir, CURDATE()); an infant booked ahead keeps today's age."""
    infant = {**PATIENT, "tgl_lahir": date(2026, 11, 20), "tgl_daftar": date(2027, 1, 5)}
    row = simple_visit_row(date(2027, 1, 5), infant, kd_poli="ANAK", first_visit_to_poli=True)
    assert (row["umurdaftar"], row["sttsumur"]) == (7, "Hr")  # not 1 Bl on the visit date


def test_visit_row_existing_patient_registered_today_is_baru_as_desktop():
    """Desktop rule: stts_daftar is Baru when pasien.tgl_daftar equals the registration date."""
    row = simple_visit_row(date(2026, 11, 27), {**PATIENT, "tgl_daftar": date(2026, 11, 27)}, new_patient=False,
                           first_visit_to_poli=False)
    assert row["stts_daftar"] == "Baru" and row["biaya_reg"] == 15000.0


def test_booking_row_as_khanza_booking_acceptance():
    row = booking_row(no_reg="004", visit_date=date(2026, 11, 30), clock=datetime(2026, 11, 27, 10, 5, 7, 123),
                      no_rkm_medis="000050", kd_dokter="D001", kd_poli="INT", kd_pj="A09")
    assert row == {"tanggal_booking": date(2026, 11, 27), "jam_booking": "10:05:07", "no_rkm_medis": "000050",
                   "tanggal_periksa": date(2026, 11, 30), "kd_dokter": "D001", "kd_poli": "INT", "no_reg": "004",
                   "kd_pj": "A09", "limit_reg": 1, "waktu_kunjungan": datetime(2026, 11, 30, 10, 5, 7),
                   "status": "Belum"}
