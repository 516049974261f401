"""khanza.registration.load_batch against a real MariaDB with Khanza's tables (strict SQL mode):
the rows it writes, each numbering setting, schedules, quota, matching, duplicates and the ledger."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from khanza.registration import load_batch
from khanza.visits import full_years, umur_text
from tests.support import base_settings, count, hospital_today, loader_registration, rows

CLOCK = datetime.combine(hospital_today(), datetime.min.time()).replace(hour=8, minute=30)
TOMORROW = hospital_today() + timedelta(days=1)
# The demo patient 000050 (Siti Aminah) as her own registration gives her: NIK, gender, birth date.
SITI = {"nik": "3310014107800001", "gender": "P", "birth_date": date(1980, 7, 1)}


def next_weekday(weekday: int) -> date:
    day = hospital_today() + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def reg(**overrides) -> dict:
    return loader_registration(**{"full_name": "Budi Santoso", "gender": "L", "birth_date": date(1985, 3, 14),
                                  "visit_date": TOMORROW, "kd_poli": "INT", "kd_dokter": "D001", **overrides})


def load(engine, *regs, **settings):
    return load_batch(engine, pd.DataFrame(list(regs), dtype=object), base_settings(**settings), CLOCK)


def load_one_while(engine, name: str, replacement) -> tuple[dict, dict]:
    """A new registration and the loader's outcome for it while khanza.registration.`name` is `replacement`
    (restored afterwards)."""
    from khanza import registration

    original = getattr(registration, name)
    setattr(registration, name, replacement)
    try:
        r = reg()
        return r, load_one(engine, r)
    finally:
        setattr(registration, name, original)


def patients(engine) -> int:
    """How many pasien rows Khanza has."""
    return count(engine, "SELECT COUNT(*) n FROM pasien")


def by_id(out: pd.DataFrame) -> dict:
    return {r["id"]: r for r in out.to_dict("records")}


def load_one(engine, r: dict, **settings) -> dict:
    """The loader's outcome for the one registration `r`."""
    return by_id(load(engine, r, **settings))[r["id"]]


def test_new_patient_and_visit_as_khanza_writes_them(khanza):
    r = reg(full_name="Budi Santoso", email="budi@example.com")
    out = load_one(khanza, r)
    assert (out["status"], out["outcome"], out["error_code"]) == ("synced", "created", None)
    assert out["no_rkm_medis"] == "000101"  # demo counter 000100, Straight, no prefix
    assert out["no_rawat"] == f"{TOMORROW:%Y/%m/%d}/000001" and out["no_reg"] == "001"

    patient = rows(khanza, "SELECT * FROM pasien WHERE no_rkm_medis = '000101'")[0]
    assert patient["no_ktp"] == r["nik"] and patient["nm_pasien"] == "Budi Santoso"
    assert patient["tgl_daftar"] == TOMORROW and patient["stts_nikah"] == "JOMBLO"  # the visit date (DlgBookingPeriksa)
    assert (patient["keluarga"], patient["namakeluarga"], patient["pnd"], patient["kd_pj"]) == ("SAUDARA", "-", "-", "A09")
    assert (patient["kd_kel"], patient["kd_kec"], patient["kd_kab"], patient["kd_prop"]) == (1, 1, 1, 1)
    assert (patient["suku_bangsa"], patient["bahasa_pasien"], patient["cacat_fisik"], patient["perusahaan_pasien"]) == (1, 1, 1, "-")
    assert patient["umur"] == umur_text(date(1985, 3, 14), CLOCK.date())
    assert rows(khanza, "SELECT no_rkm_medis FROM set_no_rkm_medis") == [{"no_rkm_medis": "000101"}]

    visit = rows(khanza, "SELECT * FROM reg_periksa")[0]
    assert visit["tgl_registrasi"] == TOMORROW and str(visit["jam_reg"]) == "8:30:00"
    assert (visit["kd_dokter"], visit["kd_poli"], visit["kd_pj"]) == ("D001", "INT", "A09")
    assert (visit["stts"], visit["stts_daftar"], visit["status_lanjut"], visit["status_bayar"], visit["status_poli"]) == (
        "Belum", "Baru", "Ralan", "Belum Bayar", "Baru")
    assert visit["biaya_reg"] == 15000 and visit["sttsumur"] == "Th"
    assert (visit["p_jawab"], visit["hubunganpj"], visit["almt_pj"]) == ("-", "SAUDARA", "Jl. Pemuda No. 5, -, -, -")

    ledger = rows(khanza, "SELECT * FROM khanza_sync_ledger")[0]
    assert (ledger["registration_id"], ledger["no_rawat"], ledger["no_reg"], ledger["outcome"]) == (
        r["id"], out["no_rawat"], "001", "created")


def test_existing_patient_found_by_nik_is_not_overwritten(khanza):
    before = rows(khanza, "SELECT * FROM pasien WHERE no_rkm_medis = '000050'")[0]
    r = reg(**SITI, full_name="Someone Else Entirely", address="Elsewhere", kd_pj="BPJ",
            payment="bpjs", bpjs_number="0001234567890")
    out = load_one(khanza, r)
    assert out["no_rkm_medis"] == "000050" and out["outcome"] == "created"
    after = rows(khanza, "SELECT * FROM pasien WHERE no_rkm_medis = '000050'")[0]
    assert {k: v for k, v in after.items() if k != "umur"} == {k: v for k, v in before.items() if k != "umur"}
    assert patients(khanza) == 2  # placeholder + Siti: nobody new
    visit = rows(khanza, "SELECT * FROM reg_periksa")[0]
    assert (visit["stts_daftar"], visit["biaya_reg"], visit["p_jawab"], visit["hubunganpj"]) == ("Lama", 10000, "AHMAD", "SUAMI")
    assert visit["almt_pj"] == "JL. MERAPI 10, DUKUH, KLATEN UTARA, KLATEN"
    # second clinic visit later: status_poli Lama only for the clinic already visited
    r2 = reg(**SITI, visit_date=TOMORROW + timedelta(days=1))
    r3 = reg(**SITI, visit_date=TOMORROW + timedelta(days=1), kd_poli="MATA", kd_dokter="D005")
    load(khanza, r2, r3)
    polis = {v["kd_poli"]: v["status_poli"] for v in rows(
        khanza, "SELECT kd_poli, status_poli FROM reg_periksa WHERE tgl_registrasi = :d", d=r2["visit_date"])}
    assert polis == {"INT": "Lama", "MATA": "Baru"}


@pytest.mark.parametrize("card, code", [("9999999999999", "PATIENT_CONFLICT"), ("0001234567890", None)])
def test_bpjs_card_must_agree_with_the_matched_patient(khanza, card, code):
    r = reg(**SITI, payment="bpjs", kd_pj="BPJ", bpjs_number=card)
    assert load_one(khanza, r)["error_code"] == code


def test_card_held_by_another_patient_is_a_conflict_not_a_new_patient(khanza):
    r = reg(payment="bpjs", kd_pj="BPJ", bpjs_number="0001234567890")  # Siti's card, new NIK
    out = load_one(khanza, r)
    assert (out["status"], out["error_code"]) == ("rejected", "PATIENT_CONFLICT")
    assert patients(khanza) == 2
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 0


def test_nik_on_two_patients_is_a_conflict(khanza):
    with khanza.begin() as conn:
        conn.execute(text("INSERT INTO pasien SELECT '000051', nm_pasien, no_ktp, jk, tmp_lahir, tgl_lahir, nm_ibu, "
                          "alamat, gol_darah, pekerjaan, stts_nikah, agama, tgl_daftar, no_tlp, umur, pnd, keluarga, "
                          "namakeluarga, kd_pj, NULL, kd_kel, kd_kec, kd_kab, pekerjaanpj, alamatpj, kelurahanpj, "
                          "kecamatanpj, kabupatenpj, perusahaan_pasien, suku_bangsa, bahasa_pasien, cacat_fisik, "
                          "email, nip, kd_prop, propinsipj FROM pasien WHERE no_rkm_medis = '000050'"))
    r = reg(**SITI)
    assert load_one(khanza, r)["error_code"] == "PATIENT_CONFLICT"


def test_second_registration_same_patient_clinic_day_is_a_duplicate(khanza):
    first, again = reg(nik="3310011111110001"), reg(nik="3310011111110001")
    out1 = load_one(khanza, first)
    out2 = load_one(khanza, again)
    assert (out2["status"], out2["outcome"], out2["error_code"]) == ("synced", "duplicate", "DUPLICATE_REGISTRATION")
    assert (out2["no_rawat"], out2["no_reg"], out2["no_rkm_medis"]) == (out1["no_rawat"], out1["no_reg"], out1["no_rkm_medis"])
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 1


def test_visit_made_at_the_desk_counts_as_duplicate(khanza):
    with khanza.begin() as conn:
        conn.execute(text(
            "INSERT INTO reg_periksa VALUES ('001', :rawat, :d, '07:00:00', 'D011', '000050', 'INT', 'AHMAD', '-', "
            "'SUAMI', 10000, 'Belum', 'Lama', 'Ralan', 'A09', 46, 'Th', 'Belum Bayar', 'Lama')"),
            {"rawat": f"{TOMORROW:%Y/%m/%d}/000001", "d": TOMORROW})
    r = reg(**SITI)
    out = load_one(khanza, r)
    assert out["outcome"] == "duplicate" and out["no_rawat"] == f"{TOMORROW:%Y/%m/%d}/000001"


def test_ledger_makes_a_repeat_load_a_repair_not_a_second_visit(khanza):
    regs = [reg() for _ in range(3)]
    first = by_id(load(khanza, *regs))
    again = by_id(load(khanza, *regs))
    for r in regs:
        assert (again[r["id"]]["no_rawat"], again[r["id"]]["no_reg"]) == (first[r["id"]]["no_rawat"], first[r["id"]]["no_reg"])
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 3
    assert patients(khanza) == 5


def test_no_schedule_and_quota_full(khanza):
    wednesday = next_weekday(2)
    thursday = next_weekday(3)
    regs = [reg(kd_dokter="D012", visit_date=wednesday) for _ in range(3)] + [reg(kd_dokter="D012", visit_date=thursday)]
    out = load(khanza, *regs)
    assert list(out["error_code"].fillna("-")) == ["-", "-", "QUOTA_FULL", "NO_SCHEDULE"]
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa WHERE kd_dokter = 'D012'") == 2
    assert patients(khanza) == 4  # rejected rows created no patient


def test_cancelled_visits_still_count_toward_the_quota(khanza):
    """Mobile JKN counts every reg_periksa row for clinic, doctor and date, Batal included."""
    wednesday = next_weekday(2)
    a, b = reg(kd_dokter="D012", visit_date=wednesday), reg(kd_dokter="D012", visit_date=wednesday)
    load(khanza, a, b)
    with khanza.begin() as conn:
        conn.execute(text("UPDATE reg_periksa SET stts = 'Batal' WHERE kd_dokter = 'D012' AND no_reg = '001'"))
    c = reg(kd_dokter="D012", visit_date=wednesday)
    assert load_one(khanza, c)["error_code"] == "QUOTA_FULL"


def desk_visit(engine, day, no_reg, counter, dokter="D001", poli="INT"):
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO reg_periksa VALUES (:no_reg, :rawat, :d, '07:00:00', :dokter, '000050', :poli, '-', '-', "
            "'SAUDARA', 10000, 'Belum', 'Lama', 'Ralan', 'A09', 46, 'Th', 'Belum Bayar', 'Lama')"),
            {"no_reg": no_reg, "rawat": f"{day:%Y/%m/%d}/{counter:06d}", "d": day, "dokter": dokter, "poli": poli})


@pytest.mark.parametrize("scope, expected", [
    ("dokter", {"D001": "003", "D011": "001"}),        # D001 has 2 desk visits (INT, MATA) -> 003
    ("poli", {"D001": "003", "D011": "004"}),          # INT has 2 (D001, D012) -> 003, then 004
    ("dokter + poli", {"D001": "002", "D011": "001"}),  # D001 at INT has 1 -> 002
])
def test_no_reg_scope_follows_urutnoreg(khanza, scope, expected):
    desk_visit(khanza, TOMORROW, "001", 1, dokter="D001", poli="INT")
    desk_visit(khanza, TOMORROW, "002", 2, dokter="D001", poli="MATA")
    desk_visit(khanza, TOMORROW, "002", 3, dokter="D012", poli="INT")
    a, b = reg(kd_dokter="D001"), reg(kd_dokter="D011")
    out = by_id(load(khanza, a, b, khanza_urutnoreg=scope))
    assert {"D001": out[a["id"]]["no_reg"], "D011": out[b["id"]]["no_reg"]} == expected
    assert out[a["id"]]["no_rawat"].endswith("000004") and out[b["id"]]["no_rawat"].endswith("000005")


def test_basenoreg_booking_shares_one_sequence_with_bookings(khanza):
    with khanza.begin() as conn:
        conn.execute(text("INSERT INTO booking_registrasi VALUES (:today, '07:00:00', '000050', :d, 'D001', 'INT', "
                          "'005', 'A09', 1, :wk, 'Belum')"), {"today": CLOCK.date(), "d": TOMORROW,
                                                              "wk": datetime.combine(TOMORROW, datetime.min.time())})
    plain, shared = reg(), reg()
    assert load_one(khanza, plain)["no_reg"] == "001"
    assert load_one(khanza, shared, khanza_basenoreg="booking")["no_reg"] == "006"


def test_booking_target_writes_booking_registrasi(khanza):
    r = reg(**SITI, kd_pj="BPJ")
    out = load_one(khanza, r, khanza_target="booking")
    assert (out["status"], out["no_rawat"], out["no_reg"], out["no_rkm_medis"]) == ("synced", None, "001", "000050")
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 0
    booking = rows(khanza, "SELECT * FROM booking_registrasi")[0]
    assert booking == {"tanggal_booking": CLOCK.date(), "jam_booking": timedelta(hours=8, minutes=30),
                       "no_rkm_medis": "000050", "tanggal_periksa": TOMORROW, "kd_dokter": "D001", "kd_poli": "INT",
                       "no_reg": "001", "kd_pj": "BPJ", "limit_reg": 1,
                       "waktu_kunjungan": datetime.combine(TOMORROW, CLOCK.time()), "status": "Belum"}
    again = reg(**SITI, kd_pj="BPJ")
    other_clinic = reg(**SITI, kd_poli="MATA", kd_dokter="D005")
    out2 = by_id(load(khanza, again, other_clinic, khanza_target="booking"))
    assert (out2[again["id"]]["outcome"], out2[again["id"]]["no_reg"]) == ("duplicate", "001")
    assert out2[other_clinic["id"]]["error_code"] == "BOOKING_SAME_DAY"


@pytest.mark.parametrize("urutan, tahun, bulan, posisi, counter, expected", [
    ("Straight", "No", "No", "Depan", "000062", "000063"),
    ("Terminal", "No", "No", "Depan", "000062", "010062"),
    ("Middle", "No", "No", "Depan", "000062", "000063"),
    ("Straight", "Yes", "Yes", "Depan", "000062", "{yy}{mm}000063"),
    ("Straight", "Yes", "Yes", "Belakang", "000062", "000063-{mm}{yy}"),
])
def test_rm_number_settings_from_khanza(khanza, urutan, tahun, bulan, posisi, counter, expected):
    with khanza.begin() as conn:
        conn.execute(text("DELETE FROM set_urut_no_rkm_medis"))
        conn.execute(text("INSERT INTO set_urut_no_rkm_medis VALUES (:u, :t, :b, :p)"),
                     {"u": urutan, "t": tahun, "b": bulan, "p": posisi})
        conn.execute(text("UPDATE set_no_rkm_medis SET no_rkm_medis = :c"), {"c": counter})
    r = reg()
    out = load_one(khanza, r)
    want = expected.format(yy=CLOCK.strftime("%y"), mm=CLOCK.strftime("%m"))
    assert out["no_rkm_medis"] == want
    assert rows(khanza, "SELECT no_rkm_medis FROM set_no_rkm_medis") == [{"no_rkm_medis": want}]


def test_rm_number_taken_at_the_desk_is_skipped(khanza):
    """The desk used 000101 without moving the counter (it may skip ChkRM): we take 000102."""
    with khanza.begin() as conn:
        conn.execute(text("INSERT INTO pasien SELECT '000101', nm_pasien, '3300000000000001', jk, tmp_lahir, tgl_lahir, "
                          "nm_ibu, alamat, gol_darah, pekerjaan, stts_nikah, agama, tgl_daftar, no_tlp, umur, pnd, "
                          "keluarga, namakeluarga, kd_pj, NULL, kd_kel, kd_kec, kd_kab, pekerjaanpj, alamatpj, "
                          "kelurahanpj, kecamatanpj, kabupatenpj, perusahaan_pasien, suku_bangsa, bahasa_pasien, "
                          "cacat_fisik, email, nip, kd_prop, propinsipj FROM pasien WHERE no_rkm_medis = '000050'"))
    r = reg()
    assert load_one(khanza, r)["no_rkm_medis"] == "000102"


def test_no_reg_taken_by_desk_after_our_insert_is_renumbered(khanza):
    """Simulate the desktop's unlocked max()+1 landing on our number before we tell the patient."""
    from khanza import registration

    original = registration._verify_no_reg

    def desk_races_then_verify(conn, batch, created):
        for reg_, result in created:  # same doctor, same number, committed by "the desk" before we check
            desk_visit(khanza, reg_["visit_date"], result["no_reg"], 900)
        return original(conn, batch, created)

    r, out = load_one_while(khanza, "_verify_no_reg", desk_races_then_verify)
    assert out["no_reg"] == "002"
    ours = rows(khanza, "SELECT no_reg FROM reg_periksa WHERE no_rawat = :r", r=out["no_rawat"])[0]["no_reg"]
    ledger = rows(khanza, "SELECT no_reg FROM khanza_sync_ledger WHERE registration_id = :i", i=r["id"])[0]["no_reg"]
    assert ours == ledger == "002"


def test_one_bad_row_does_not_stop_the_batch(khanza):
    good1, bad, good2 = reg(), reg(kd_poli="NOPE"), reg()  # unmapped code slipping through: FK refuses it
    out = by_id(load(khanza, good1, bad, good2))
    assert out[bad["id"]]["error_code"] in {"KHANZA_REJECTED", "NO_SCHEDULE"}
    assert out[good1["id"]]["status"] == out[good2["id"]]["status"] == "synced"
    assert count(khanza, "SELECT COUNT(*) n FROM khanza_sync_ledger") == 2


def test_existing_patient_without_birth_date_in_khanza(khanza):
    """Khanza has no birth date for 000050: the NIK alone cannot say the registration is that person, so it
    is a PATIENT_CONFLICT; once staff link it, the visit's age comes from the form's birth date."""
    from khanza import decisions

    with khanza.begin() as conn:
        conn.execute(text("UPDATE pasien SET tgl_lahir = NULL WHERE no_rkm_medis = '000050'"))
    r = reg(**SITI)
    assert load_one(khanza, r)["error_code"] == "PATIENT_CONFLICT"
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 0
    with khanza.begin() as conn:
        decisions.record(conn, registration_id=r["id"], action="link_patient", no_rkm_medis="000050",
                         decided_by="test", reason="same person", decided_at=datetime.now())
    assert load_one(khanza, r)["status"] == "synced"
    visit = rows(khanza, "SELECT umurdaftar, sttsumur FROM reg_periksa")[0]
    assert (visit["umurdaftar"], visit["sttsumur"]) == (full_years(date(1980, 7, 1), CLOCK.date()), "Th")
    # Khanza's own umur is left as it was: it has no birth date to compute it from
    assert rows(khanza, "SELECT umur FROM pasien WHERE no_rkm_medis = '000050'")[0]["umur"] == "40 Th 0 Bl 0 Hr"


def test_new_patient_row_column_by_column(khanza):
    """rules.md §7, Mobile JKN pasienbaru column: every pasien column the pipeline writes for a new patient."""
    r = reg(nik="3310012020200004", full_name="José Müller", gender="L", birth_date=date(1975, 12, 20),
            phone="081322220004", address="Perum Griya Asri B-4", birth_place="Klaten", mother_name="Maria",
            email="jose@example.com", kd_pj="BPJ", payment="bpjs", bpjs_number="0001112223334")
    rm = load_one(khanza, r)["no_rkm_medis"]
    row = rows(khanza, "SELECT * FROM pasien WHERE no_rkm_medis = :rm", rm=rm)[0]
    assert row == {
        "no_rkm_medis": "000101", "nm_pasien": "José Müller", "no_ktp": "3310012020200004", "jk": "L",
        "tmp_lahir": "Klaten", "tgl_lahir": date(1975, 12, 20), "nm_ibu": "Maria", "alamat": "Perum Griya Asri B-4",
        "gol_darah": "-", "pekerjaan": "-", "stts_nikah": "JOMBLO", "agama": "-", "tgl_daftar": TOMORROW,
        "no_tlp": "081322220004", "umur": umur_text(date(1975, 12, 20), CLOCK.date()), "pnd": "-",
        "keluarga": "SAUDARA", "namakeluarga": "-", "kd_pj": "BPJ", "no_peserta": "0001112223334",
        "kd_kel": 1, "kd_kec": 1, "kd_kab": 1, "pekerjaanpj": "-", "alamatpj": "Perum Griya Asri B-4",
        "kelurahanpj": "-", "kecamatanpj": "-", "kabupatenpj": "-", "perusahaan_pasien": "-", "suku_bangsa": 1,
        "bahasa_pasien": 1, "cacat_fisik": 1, "email": "jose@example.com", "nip": "-", "kd_prop": 1,
        "propinsipj": "-",
    }


def test_no_rawat_taken_by_desk_after_the_day_was_read_is_retried(khanza):
    """The desk inserts (unlocked max()+1) between our read of the day and our insert: our insert hits
    the no_rawat primary key, we re-read the day and take the next numbers, as the desktop would."""
    from khanza import registration

    original = registration._read_batch_state

    def read_then_desk_registers(conn, batch, todo):
        original(conn, batch, todo)
        desk_visit(khanza, TOMORROW, "001", 1)  # the desk takes no_rawat ...000001 and no_reg 001

    _, out = load_one_while(khanza, "_read_batch_state", read_then_desk_registers)
    assert out["no_rawat"] == f"{TOMORROW:%Y/%m/%d}/000002" and out["no_reg"] == "002"
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 2


def test_long_address_fits_alamatpj_at_a_word_boundary(khanza):
    address = "Jalan Panglima Besar Jenderal Sudirman Nomor 123 RT 004 RW 007 Kelurahan Kebonsari Kecamatan Sumbersari Kabupaten"
    r = reg(address=address)
    rm = load_one(khanza, r)["no_rkm_medis"]
    row = rows(khanza, "SELECT alamat, alamatpj FROM pasien WHERE no_rkm_medis = :rm", rm=rm)[0]
    assert row["alamat"] == address
    assert len(row["alamatpj"]) <= 100 and address.startswith(row["alamatpj"])
    assert address[len(row["alamatpj"])] == " "  # cut between words


# ---------------------------------------------------------------- review findings, pinned


def test_booking_mode_duplicate_of_a_desk_visit_is_recorded_as_that_visit(khanza):
    desk_visit(khanza, TOMORROW, "001", 1)  # Siti (000050) already registered at the desk for INT
    r = reg(**SITI)
    out = load_one(khanza, r, khanza_target="booking")
    assert (out["outcome"], out["no_rawat"], out["no_reg"]) == ("duplicate", f"{TOMORROW:%Y/%m/%d}/000001", "001")
    entry = rows(khanza, "SELECT target, no_rawat FROM khanza_sync_ledger WHERE registration_id = :i", i=r["id"])[0]
    assert entry == {"target": "reg_periksa", "no_rawat": f"{TOMORROW:%Y/%m/%d}/000001"}  # reconcile looks there


def test_visit_moved_by_the_desk_counts_on_its_new_date(khanza):
    """The desk moved a visit (no_rawat keeps yesterday's prefix) onto our day: its no_reg is taken."""
    yesterday_prefix_day = TOMORROW - timedelta(days=1)
    desk_visit(khanza, yesterday_prefix_day, "001", 7)
    with khanza.begin() as conn:
        conn.execute(text("UPDATE reg_periksa SET tgl_registrasi = :d"), {"d": TOMORROW})
    r = reg()
    out = load_one(khanza, r)
    assert out["no_reg"] == "002"
    assert out["no_rawat"] == f"{TOMORROW:%Y/%m/%d}/000001"  # the no_rawat counter follows the prefix


def test_visit_moved_away_is_not_a_duplicate_any_more(khanza):
    desk_visit(khanza, TOMORROW, "001", 1)  # Siti at INT tomorrow ...
    with khanza.begin() as conn:  # ... moved by the desk three days later
        conn.execute(text("UPDATE reg_periksa SET tgl_registrasi = :d"), {"d": TOMORROW + timedelta(days=3)})
    r = reg(**SITI)
    out = load_one(khanza, r)
    assert out["outcome"] == "created"


def test_nik_stored_with_trailing_spaces_is_the_same_patient(khanza):
    with khanza.begin() as conn:
        conn.execute(text("UPDATE pasien SET no_ktp = '3310014107800001  ' WHERE no_rkm_medis = '000050'"))
    r = reg(**SITI)
    assert load_one(khanza, r)["no_rkm_medis"] == "000050"
    assert patients(khanza) == 2


def test_booking_the_hospital_cancelled_is_not_a_live_duplicate(khanza):
    with khanza.begin() as conn:
        conn.execute(text("INSERT INTO booking_registrasi VALUES (:t, '07:00:00', '000050', :d, 'D001', 'INT', '003', "
                          "'A09', 1, :w, 'Dokter Berhalangan')"),
                     {"t": CLOCK.date(), "d": TOMORROW, "w": datetime.combine(TOMORROW, datetime.min.time())})
    r = reg(**SITI)
    assert load_one(khanza, r, khanza_target="booking")["error_code"] == "BOOKING_SAME_DAY"


def test_duplicate_of_a_visit_without_queue_number_is_still_synced(khanza):
    desk_visit(khanza, TOMORROW, "001", 1)
    with khanza.begin() as conn:
        conn.execute(text("UPDATE reg_periksa SET no_reg = NULL"))
    r = reg(**SITI)
    out = load_one(khanza, r)
    assert (out["status"], out["outcome"]) == ("synced", "duplicate")


def test_missing_placeholder_rows_stop_the_batch_with_a_clear_error(khanza):
    from khanza.registration import KhanzaSetupError

    with khanza.begin() as conn:
        conn.execute(text("UPDATE cacat_fisik SET nama_cacat = 'TIDAK ADA (lama)' WHERE nama_cacat = '-'"))
    with pytest.raises(KhanzaSetupError, match="cacat_fisik"):
        load(khanza, reg())
    assert count(khanza, "SELECT COUNT(*) n FROM reg_periksa") == 0


def test_repaired_registrations_get_the_queue_number_check_too(khanza):
    """A run loaded a registration and died before the write-back; meanwhile the desk took its no_reg.
    The repair renumbers before the number reaches the website."""
    from khanza.registration import already_loaded

    r = reg()
    first = load_one(khanza, r)
    desk_visit(khanza, TOMORROW, first["no_reg"], 900)
    repaired = by_id(already_loaded(khanza, [r["id"]], base_settings()))[r["id"]]
    assert repaired["no_rawat"] == first["no_rawat"] and repaired["no_reg"] == "002"
    assert rows(khanza, "SELECT no_reg FROM reg_periksa WHERE no_rawat = :n", n=first["no_rawat"])[0]["no_reg"] == "002"


def test_long_address_without_spaces_still_fits_alamatpj(khanza):
    r = reg(address="X" * 150)
    rm = load_one(khanza, r)["no_rkm_medis"]
    assert rows(khanza, "SELECT alamatpj FROM pasien WHERE no_rkm_medis = :rm", rm=rm)[0]["alamatpj"] == "X" * 100
