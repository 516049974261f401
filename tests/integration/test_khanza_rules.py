"""What Khanza's registration desk enforces, on Khanza's real schema (../shared/khanza/schema.sql and its sample
rows, strict SQL mode): admitted patients, unpaid earlier visits under cashier closing, the quota as Khanza
counts it (cancelled visits included; a day of several sessions), cancelling as the desk and the booking
dialogs do, stts_daftar / tgl_daftar / fee by Khanza's rule, and the age at registration on the day written."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from khanza import cancellation, ledger
from khanza.registration import load_batch
from khanza.schedule import HARI_KERJA
from khanza_sync.error_codes import STAFF_CHECK
from tests.support import (KHANZA_TEST_DB, base_settings, check_and_map, count, hospital_today,
                           khanza_reference_db, loader_registration, registration, rows)

RULES_DB = KHANZA_TEST_DB + "_rules"
TODAY = hospital_today()
CLOCK = datetime.combine(TODAY, datetime.min.time()).replace(hour=8, minute=30)
NIK_000054 = "3310010101900054"  # the sample patient 000054 (no NIK in the dump), given one here
# 000054 as the dump has him (JAROT KUMBORO, L, born 1990-01-01): his own registration gives these
JAROT = {"nik": NIK_000054, "gender": "L", "birth_date": date(1990, 1, 1)}


def weekday_after(day: date, weekday: int) -> date:
    day += timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


WEDNESDAY = weekday_after(TODAY, 2)  # the sample's dr. Qotrunnada (D0000003) practises at U0003 on Wednesdays


@pytest.fixture
def real(khanza_server):
    engine = khanza_reference_db(RULES_DB)
    with engine.begin() as conn:
        # Registrasi (Baru) and registrasilama (Lama) differ, so the fee shows which one Khanza would charge.
        conn.execute(text("UPDATE poliklinik SET registrasi = 15000, registrasilama = 10000 WHERE kd_poli = 'U0003'"))
        conn.execute(text("UPDATE pasien SET no_ktp = :nik WHERE no_rkm_medis = '000054'"), {"nik": NIK_000054})
        # dr. Qotrunnada at U0003 every day (kuota 30), so a visit today works whatever today is
        for hari in HARI_KERJA:
            conn.execute(text("INSERT IGNORE INTO jadwal VALUES ('D0000003', :h, '00:00:00', '00:00:00', 'U0003', 30)"),
                         {"h": hari})
    yield engine
    engine.dispose()


def reg(**overrides) -> dict:
    return loader_registration(**{"full_name": "Ani Lestari", "gender": "P", "birth_date": date(1990, 5, 17),
                                  "visit_date": WEDNESDAY, "kd_poli": "U0003", "kd_dokter": "D0000003",
                                  **overrides})


def load(engine, *regs, **settings) -> dict:
    out = load_batch(engine, pd.DataFrame(list(regs), dtype=object), base_settings(khanza_db_name=RULES_DB, **settings),
                     CLOCK)
    out = out.astype(object).where(out.notna(), None)
    return {r["id"]: r for r in out.to_dict("records")}


def load_one(engine, r: dict, **settings) -> dict:
    """The loader's outcome for the one registration `r`."""
    return load(engine, r, **settings)[r["id"]]


def run(engine, sql, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


# ---------------------------------------------------------------- admitted patients (DlgReg: kamar_inap stts_pulang '-')


def admit(engine, stts_pulang: str = "-") -> None:
    run(engine, "INSERT INTO bangsal VALUES ('B01', 'MELATI', '1')")
    run(engine, "INSERT INTO kamar VALUES ('K01', 'B01', 250000, 'ISI', 'Kelas 3', '1')")
    run(engine, "INSERT INTO kamar_inap (no_rawat, kd_kamar, trf_kamar, tgl_masuk, jam_masuk, stts_pulang) "
                "VALUES ('2026/09/27/000001', 'K01', 250000, '2026-09-27', '15:00:00', :s)", s=stts_pulang)


def load_000054(engine, **settings) -> dict:
    """The loader's outcome for a new registration of the sample patient 000054 (by NIK_000054)."""
    return load_one(engine, reg(**JAROT), **settings)


def test_admitted_patient_is_refused_with_its_own_code_and_nothing_is_written(real):
    admit(real)
    out = load_000054(real)
    assert (out["status"], out["error_code"]) == ("rejected", "PATIENT_ADMITTED")
    assert "dirawat inap" in out["message"] and "admitted" in out["message"]
    assert count(real, "SELECT COUNT(*) n FROM reg_periksa WHERE tgl_registrasi = :d", d=WEDNESDAY) == 0
    assert count(real, "SELECT COUNT(*) n FROM khanza_sync_ledger") == 0


def test_admitted_patient_is_refused_for_a_booking_too(real):
    admit(real)
    assert load_000054(real, khanza_target="booking")["error_code"] == "PATIENT_ADMITTED"


def test_discharged_patient_is_accepted(real):
    admit(real, stts_pulang="Sembuh")
    out = load_000054(real)
    assert (out["status"], out["no_rkm_medis"]) == ("synced", "000054")


# ---------------------------------------------------------------- who the patient is: identity before linking


def test_a_parents_nik_with_a_childs_birth_date_and_gender_is_a_conflict_not_a_visit_on_the_parents_record(real,
                                                                                                        caplog):
    """000054 (L, born 1990-01-01) exists. A registration with his NIK, a birth date of 2021-03-04, the other
    gender and another name (a parent typing their own NIK for a child) never becomes his visit. The staff's log
    line names what disagrees, never the values."""
    patients_before = count(real, "SELECT COUNT(*) n FROM pasien")
    caplog.set_level("WARNING", logger="khanza.registration")
    child = reg(id="child", nik=NIK_000054, birth_date=date(2021, 3, 4), gender="P", full_name="Ayu Kumboro")
    for target in ("reg_periksa", "booking"):
        out = load_one(real, child, khanza_target=target)
        assert (out["status"], out["error_code"], out["no_rkm_medis"]) == ("rejected", "PATIENT_CONFLICT", None)
        # what the website may show the submitter: the one staff-check text, nothing about the NIK
        assert out["message"] == STAFF_CHECK
    assert count(real, "SELECT COUNT(*) n FROM reg_periksa WHERE no_rkm_medis = '000054' AND tgl_registrasi = :d",
                 d=WEDNESDAY) == 0
    assert count(real, "SELECT COUNT(*) n FROM booking_registrasi WHERE tanggal_periksa = :d", d=WEDNESDAY) == 0
    assert count(real, "SELECT COUNT(*) n FROM khanza_sync_ledger") == 0
    assert count(real, "SELECT COUNT(*) n FROM pasien") == patients_before  # no second patient made either
    lines = [r.getMessage() for r in caplog.records if "PATIENT_CONFLICT" in r.getMessage()]
    assert lines and all("birth date differs, gender differs" in line for line in lines)
    assert not any(value in line for line in lines for value in ("2021", "1990", NIK_000054, "Ayu", "Kumboro"))


@pytest.mark.parametrize("other", [{"birth_date": date(2021, 3, 4)}, {"gender": "P"}],
                         ids=["birth date alone", "gender alone"])
def test_birth_date_or_gender_alone_keeps_the_registration_off_the_record(real, other):
    out = load_one(real, reg(**{**JAROT, **other}))
    assert out["error_code"] == "PATIENT_CONFLICT"
    assert count(real, "SELECT COUNT(*) n FROM reg_periksa WHERE tgl_registrasi = :d", d=WEDNESDAY) == 0


def test_a_name_spelled_otherwise_is_still_the_patient(real):
    """Names are not compared: the same NIK, birth date and gender with the name spelled another way (and a
    title) is 000054's visit, as the desk and Mobile JKN would make it."""
    out = load_one(real, reg(**JAROT, full_name="Jarot Kumboro S. Kom"))
    assert (out["status"], out["no_rkm_medis"]) == ("synced", "000054")


def test_a_gender_khanza_does_not_have_does_not_block(real):
    run(real, "UPDATE pasien SET jk = NULL WHERE no_rkm_medis = '000054'")
    assert load_one(real, reg(**{**JAROT, "gender": "P"}))["no_rkm_medis"] == "000054"


# ---------------------------------------------------------------- our faults are ours (PIPELINE_ERROR)


def test_a_clinic_deactivated_between_map_and_load_is_a_pipeline_error_not_a_rejection(real, tmp_path):
    """The row was mapped while U0003 was active; the desk deactivates the clinic before the load reads the
    master data again. Khanza did not refuse the row: it waits as PIPELINE_ERROR (the next run's mapping says
    UNKNOWN_POLI), it is never KHANZA_REJECTED, and nothing is written."""
    maps = tmp_path / "mappings"
    maps.mkdir()
    (maps / "poliklinik.yaml").write_text("penyakit-dalam: U0003\n")
    (maps / "dokter.yaml").write_text("dr-qotrunnada: D0000003\n")
    (maps / "penjab.yaml").write_text("umum: A09\nbpjs: BPJ\nasuransi: A09\n")
    settings = base_settings(khanza_db_name=RULES_DB, mappings_dir=maps)
    batch = pd.DataFrame([registration(id="deactivated", poliklinik="penyakit-dalam", doctor="dr-qotrunnada",
                                       visit_date=WEDNESDAY, attempts=1)], dtype=object)
    mapped, invalid, unmapped = check_and_map(batch, settings, real)
    assert list(mapped["kd_poli"]) == ["U0003"] and invalid.empty and unmapped.empty
    run(real, "UPDATE poliklinik SET status = '0' WHERE kd_poli = 'U0003'")
    out = load_batch(real, mapped, settings, CLOCK).iloc[0]
    assert (out["status"], out["outcome"], out["error_code"]) == ("deferred", "deferred", "PIPELINE_ERROR")
    assert count(real, "SELECT COUNT(*) n FROM reg_periksa WHERE tgl_registrasi = :d", d=WEDNESDAY) == 0
    assert count(real, "SELECT COUNT(*) n FROM khanza_sync_ledger") == 0
    _, _, unmapped_now = check_and_map(batch, settings, real)  # and the next run's mapping names the cause
    assert list(unmapped_now["error_code"]) == ["UNKNOWN_POLI"]
    tired = mapped.assign(attempts=settings.max_transient_attempts)  # after MAX_TRANSIENT_ATTEMPTS: to staff
    assert load_batch(real, tired, settings, CLOCK).iloc[0]["error_code"] == "TOO_MANY_ATTEMPTS"


def test_a_row_khanza_refuses_is_still_rejected(real):
    """An error Khanza's server raises for the row itself (here its foreign key on the payer) rejects it."""
    out = load_one(real, reg(kd_pj="ZZZ"))
    assert (out["status"], out["error_code"]) == ("rejected", "KHANZA_REJECTED")


# ---------------------------------------------------------------- unpaid earlier visits (DlgReg isPas)


def test_unpaid_earlier_visit_refused_when_cashier_closing_is_required(real):
    run(real, "UPDATE set_validasi_registrasi SET wajib_closing_kasir = 'Yes'")
    out = load_000054(real)  # 000054's sample visit of 2026-09-27 is 'Belum Bayar'
    assert (out["status"], out["error_code"]) == ("rejected", "UNPAID_PREVIOUS_VISIT")
    assert "kasir" in out["message"] and "not yet paid" in out["message"]
    assert count(real, "SELECT COUNT(*) n FROM reg_periksa WHERE tgl_registrasi = :d", d=WEDNESDAY) == 0


def test_unpaid_earlier_visit_accepted_when_paid_or_not_required_or_cancelled(real):
    first = reg(**JAROT)
    assert load_one(real, first)["status"] == "synced"  # closing not required (the sample's 'No')
    run(real, "UPDATE set_validasi_registrasi SET wajib_closing_kasir = 'Yes'")
    run(real, "UPDATE reg_periksa SET status_bayar = 'Sudah Bayar' WHERE no_rkm_medis = '000054'")
    paid = reg(**JAROT, visit_date=WEDNESDAY + timedelta(days=7))
    assert load_one(real, paid)["status"] == "synced"
    run(real, "UPDATE reg_periksa SET stts = 'Batal' WHERE no_rkm_medis = '000054' AND status_bayar = 'Belum Bayar'")
    cancelled = reg(**JAROT, visit_date=WEDNESDAY + timedelta(days=14))
    assert load_one(real, cancelled)["status"] == "synced"  # a Batal visit is never owed


def test_no_settings_row_means_closing_not_required(real):
    run(real, "DELETE FROM set_validasi_registrasi")
    assert load_000054(real)["status"] == "synced"


# ---------------------------------------------------------------- quota as Khanza counts it


def test_a_cancelled_visit_still_counts_toward_the_quota(real):
    run(real, "UPDATE jadwal SET kuota = 2 WHERE kd_dokter = 'D0000003' AND hari_kerja = 'RABU'")
    a, b = reg(), reg()
    out = load(real, a, b)
    entry = rows(real, "SELECT * FROM khanza_sync_ledger WHERE registration_id = :i", i=a["id"])[0]
    with real.connect() as conn:
        result = cancellation.cancel(conn, a["id"], entry, WEDNESDAY, TODAY)
    assert result.cancelled and result.khanza_changed
    c = reg()
    assert load_one(real, c)["error_code"] == "QUOTA_FULL"  # 2 rows for the day, one of them Batal
    visit = rows(real, "SELECT stts, biaya_reg FROM reg_periksa WHERE no_rawat = :r", r=out[a["id"]]["no_rawat"])[0]
    assert visit == {"stts": "Batal", "biaya_reg": 0}


def test_a_day_of_several_sessions_holds_its_largest_sessions_kuota(real):
    """Mobile JKN counts the whole day's visits against the chosen session's kuota: the most Khanza accepts in
    a day is the largest session's kuota (3 here), not the sum (4)."""
    run(real, "UPDATE jadwal SET kuota = 1 WHERE kd_dokter = 'D0000003' AND hari_kerja = 'RABU'")
    run(real, "INSERT INTO jadwal VALUES ('D0000003', 'RABU', '13:00:00', '16:00:00', 'U0003', 3)")
    regs = [reg() for _ in range(4)]
    out = load(real, *regs)
    assert [out[r["id"]]["error_code"] for r in regs] == [None, None, None, "QUOTA_FULL"]


def test_bookings_count_per_doctor_whatever_their_status(real):
    """The desk's booking dialogs count the doctor's bookings that day, whatever their status."""
    run(real, "UPDATE jadwal SET kuota = 2 WHERE kd_dokter = 'D0000003' AND hari_kerja = 'RABU'")
    run(real, "INSERT INTO booking_registrasi VALUES (:t, '07:00:00', '000054', :d, 'D0000003', 'INT', '001', 'A09', 1, "
              ":w, 'Dokter Berhalangan')", t=TODAY, d=WEDNESDAY, w=datetime.combine(WEDNESDAY, datetime.min.time()))
    a, b = reg(), reg()
    out = load(real, a, b, khanza_target="booking")
    assert [out[a["id"]]["error_code"], out[b["id"]]["error_code"]] == [None, "QUOTA_FULL"]


def desk_patient(real, rm: str) -> None:
    """A patient of the desk's own (a copy of 000054 without a NIK)."""
    run(real, "INSERT INTO pasien SELECT :rm, nm_pasien, NULL, jk, tmp_lahir, tgl_lahir, nm_ibu, alamat, gol_darah, "
              "pekerjaan, stts_nikah, agama, tgl_daftar, no_tlp, umur, pnd, keluarga, namakeluarga, kd_pj, no_peserta, "
              "kd_kel, kd_kec, kd_kab, pekerjaanpj, alamatpj, kelurahanpj, kecamatanpj, kabupatenpj, perusahaan_pasien, "
              "suku_bangsa, bahasa_pasien, cacat_fisik, email, nip, kd_prop, propinsipj FROM pasien "
              "WHERE no_rkm_medis = '000054'", rm=rm)


def desk_visit(real, no_rawat: str, day: date, kd_poli: str, stts: str, rm: str) -> None:
    run(real, "INSERT INTO reg_periksa VALUES ('009', :r, :d, '08:00:00', 'D0000003', :rm, :p, '-', '-', 'SAUDARA', "
              "10000, :s, 'Lama', 'Ralan', 'A09', 36, 'Th', 'Belum Bayar', 'Lama')", r=no_rawat, d=day, p=kd_poli, s=stts,
        rm=rm)


def desk_booking(real, rm: str, kd_poli: str, status: str) -> None:
    run(real, "INSERT INTO booking_registrasi VALUES (:t, '07:00:00', :rm, :d, 'D0000003', :p, '009', 'A09', 1, :w, :s)",
        t=TODAY, rm=rm, d=WEDNESDAY, p=kd_poli, w=datetime.combine(WEDNESDAY, datetime.min.time()), s=status)


@pytest.mark.parametrize("target, remaining", [("reg_periksa", 1), ("booking", 1)])
def test_the_published_quota_is_the_loaders_decision(real, tmp_path, target, remaining):
    """kuota 4 for dr. Qotrunnada at U0003 on WEDNESDAY. That day Khanza holds, made at the desk: visits for
    the pair (one Belum, one Batal, one moved there from the day before: its no_rawat still carries that day),
    one of hers at another clinic, and bookings of hers (two Belum at U0003, one Batal at U0009). Visits count
    the pair's 3 rows; bookings count her 3, whatever the status and clinic. The website is told the places
    the loader counts, in each mode, and the loader then takes exactly that many and refuses the next."""
    from khanza_sync import publishing
    from tests.support import new_website_store
    from website import master_data, store

    run(real, "UPDATE jadwal SET kuota = 4 WHERE kd_dokter = 'D0000003' AND hari_kerja = 'RABU'")
    for rm in ("000091", "000092", "000093"):
        desk_patient(real, rm)
    day_before = WEDNESDAY - timedelta(days=1)
    desk_visit(real, f"{WEDNESDAY:%Y/%m/%d}/000001", WEDNESDAY, "U0003", "Belum", "000091")
    desk_visit(real, f"{WEDNESDAY:%Y/%m/%d}/000002", WEDNESDAY, "U0003", "Batal", "000092")
    desk_visit(real, f"{day_before:%Y/%m/%d}/000009", WEDNESDAY, "U0003", "Belum", "000093")  # moved
    desk_visit(real, f"{WEDNESDAY:%Y/%m/%d}/000003", WEDNESDAY, "U0009", "Belum", "000093")
    desk_booking(real, "000091", "U0003", "Belum")
    desk_booking(real, "000092", "U0003", "Belum")
    desk_booking(real, "000093", "U0009", "Batal")

    settings = base_settings(khanza_db_name=RULES_DB, khanza_target=target)
    web = store.make_engine(new_website_store(f"sqlite:///{tmp_path / 'website.db'}"))
    assert publishing.publish_quota(real, web, settings, {WEDNESDAY}) > 0
    quota = master_data.read_table(web, "khanza_quota")
    web.dispose()
    published = quota[(quota["kd_dokter"] == "D0000003") & (quota["kd_poli"] == "U0003")].iloc[0]
    assert (published["kuota"], published["registered"], published["remaining"]) == (4, 4 - remaining, remaining)

    regs = [reg() for _ in range(int(published["remaining"]) + 1)]
    out = load(real, *regs, khanza_target=target)
    assert [out[r["id"]]["error_code"] for r in regs] == [None] * remaining + ["QUOTA_FULL"]


# ---------------------------------------------------------------- cancelling as Khanza does


def test_cancelling_a_visit_writes_batal_and_no_fee(real):
    r = reg()
    out = load_one(real, r)
    assert rows(real, "SELECT biaya_reg FROM reg_periksa WHERE no_rawat = :n", n=out["no_rawat"])[0]["biaya_reg"] == 15000
    entry = rows(real, "SELECT * FROM khanza_sync_ledger WHERE registration_id = :i", i=r["id"])[0]
    with real.connect() as conn:
        result = cancellation.cancel(conn, r["id"], entry, WEDNESDAY, TODAY)
    assert (result.cancelled, result.khanza_changed, result.reason.value) == (True, True, "CANCELLED")
    assert rows(real, "SELECT stts, biaya_reg FROM reg_periksa WHERE no_rawat = :n", n=out["no_rawat"]) == [
        {"stts": "Batal", "biaya_reg": 0}]


def test_a_cancelled_booking_leaves_the_patient_free_to_book_that_day_again(real):
    first = reg(**JAROT)
    out = load_one(real, first, khanza_target="booking")
    assert out["status"] == "synced" and out["no_rawat"] is None
    entry = rows(real, "SELECT * FROM khanza_sync_ledger WHERE registration_id = :i", i=first["id"])[0]
    with real.connect() as conn:
        result = cancellation.cancel(conn, first["id"], entry, WEDNESDAY, TODAY)
    assert result.cancelled and result.khanza_changed
    assert count(real, "SELECT COUNT(*) n FROM booking_registrasi WHERE no_rkm_medis = '000054' "
                       "AND tanggal_periksa = :d", d=WEDNESDAY) == 0  # removed, as the booking dialogs do
    again = reg(**JAROT)
    later = datetime.combine(TODAY, datetime.min.time()).replace(hour=9)
    out2 = load_batch(real, pd.DataFrame([again], dtype=object),
                      base_settings(khanza_db_name=RULES_DB, khanza_target="booking"), later)
    out2 = out2.astype(object).where(out2.notna(), None).to_dict("records")[0]
    assert (out2["status"], out2["outcome"], out2["error_code"]) == ("synced", "created", None)
    # finishing the first registration's cancellation again (reconcile's sweep) never touches the new booking
    with real.connect() as conn:
        repeat = cancellation.cancel(conn, first["id"], entry, WEDNESDAY, TODAY)
    assert (repeat.cancelled, repeat.khanza_changed) == (True, False)
    assert rows(real, "SELECT status FROM booking_registrasi WHERE no_rkm_medis = '000054' AND tanggal_periksa = :d",
                d=WEDNESDAY) == [{"status": "Belum"}]


def booked_000054(real) -> tuple[dict, dict]:
    """000054's own registration loaded as a booking for WEDNESDAY: (registration, its ledger row)."""
    first = reg(**JAROT)
    assert load_one(real, first, khanza_target="booking")["status"] == "synced"
    return first, rows(real, "SELECT * FROM khanza_sync_ledger WHERE registration_id = :i", i=first["id"])[0]


def cancel_000054(real, first: dict, entry: dict):
    with real.connect() as conn:
        return cancellation.cancel(conn, first["id"], entry, WEDNESDAY, TODAY)


def test_a_checked_in_booking_is_not_cancelled_and_the_desks_visit_is_left_alone(real):
    """Checked in at the desk (booking Terdaftar, a visit the desk made): that visit is not one the ledger names,
    so reconcile refuses, changes nothing, and says why; asked again, it answers from its record."""
    first, entry = booked_000054(real)
    run(real, "UPDATE booking_registrasi SET status = 'Terdaftar' WHERE no_rkm_medis = '000054' "
              "AND tanggal_periksa = :d", d=WEDNESDAY)
    run(real, "INSERT INTO reg_periksa VALUES ('001', :r, :d, '08:00:00', 'D0000003', '000054', 'U0003', '-', '-', "
              "'SAUDARA', 10000, 'Belum', 'Lama', 'Ralan', 'A09', 36, 'Th', 'Belum Bayar', 'Lama')",
        r=f"{WEDNESDAY:%Y/%m/%d}/000001", d=WEDNESDAY)
    result = cancel_000054(real, first, entry)
    assert (result.cancelled, result.khanza_changed, result.reason.value) == (False, False, "CANCEL_REFUSED_CHECKED_IN")
    assert rows(real, "SELECT stts FROM reg_periksa WHERE tgl_registrasi = :d", d=WEDNESDAY) == [{"stts": "Belum"}]
    assert rows(real, "SELECT status FROM booking_registrasi WHERE tanggal_periksa = :d", d=WEDNESDAY) == [
        {"status": "Terdaftar"}]
    again = cancel_000054(real, first, entry)
    assert again.reason.value == "CANCEL_REFUSED_CHECKED_IN" and "earlier run" in again.detail


@pytest.mark.parametrize("change, differ", [("kd_dokter = 'D0000004'", "kd_dokter"), ("no_reg = '007'", "no_reg"),
                                            ("jam_booking = '23:59:59'", "time written")])
def test_a_booking_changed_at_the_desk_is_reported_not_deleted(real, change, differ):
    first, entry = booked_000054(real)
    run(real, f"UPDATE booking_registrasi SET {change} WHERE no_rkm_medis = '000054' AND tanggal_periksa = :d",
        d=WEDNESDAY)
    result = cancel_000054(real, first, entry)
    assert (result.cancelled, result.khanza_changed, result.reason.value) == (True, False, "CANCELLED_NOT_OWNED")
    assert differ in result.left_alone and "left alone" in result.left_alone
    assert count(real, "SELECT COUNT(*) n FROM booking_registrasi WHERE tanggal_periksa = :d", d=WEDNESDAY) == 1
    assert rows(real, "SELECT cancel_result FROM khanza_sync_ledger WHERE registration_id = :i", i=first["id"]) == [
        {"cancel_result": "CANCELLED_NOT_OWNED"}]


# ---------------------------------------------------------------- stts_daftar, tgl_daftar and the fee


def every_row_follows_khanzas_rule(engine) -> None:
    """stts_daftar 'Baru' exactly when pasien.tgl_daftar = tgl_registrasi; biaya_reg follows it."""
    for v in rows(engine, "SELECT r.stts_daftar, r.biaya_reg, r.tgl_registrasi, p.tgl_daftar FROM reg_periksa r "
                          "JOIN pasien p ON p.no_rkm_medis = r.no_rkm_medis WHERE r.tgl_registrasi >= :t", t=TODAY):
        baru = v["tgl_daftar"] == v["tgl_registrasi"]
        assert (v["stts_daftar"], v["biaya_reg"]) == (("Baru", 15000) if baru else ("Lama", 10000)), v


def test_new_patients_today_and_next_week_are_baru_with_the_visit_date_as_tgl_daftar(real):
    today, next_week = reg(visit_date=TODAY), reg(visit_date=TODAY + timedelta(days=7))
    existing = reg(**JAROT, visit_date=TODAY + timedelta(days=7))
    out = load(real, today, next_week, existing)
    for r in (today, next_week):
        o = out[r["id"]]
        assert o["status"] == "synced", o["error_code"]
        patient = rows(real, "SELECT tgl_daftar FROM pasien WHERE no_rkm_medis = :m", m=o["no_rkm_medis"])[0]
        visit = rows(real, "SELECT stts_daftar, biaya_reg FROM reg_periksa WHERE no_rawat = :n", n=o["no_rawat"])[0]
        assert patient["tgl_daftar"] == r["visit_date"]  # DlgBookingPeriksa: the visit date
        assert (visit["stts_daftar"], visit["biaya_reg"]) == ("Baru", 15000)
    old = rows(real, "SELECT stts_daftar, biaya_reg FROM reg_periksa WHERE no_rawat = :n",
               n=out[existing["id"]]["no_rawat"])[0]
    assert (old["stts_daftar"], old["biaya_reg"]) == ("Lama", 10000)  # registered 2025: a returning patient
    every_row_follows_khanzas_rule(real)


def test_a_patient_registered_at_the_desk_today_is_baru_today_and_lama_next_week(real):
    run(real, "UPDATE pasien SET tgl_daftar = :t WHERE no_rkm_medis = '000054'", t=TODAY)
    a, b = reg(**JAROT, visit_date=TODAY), reg(**JAROT, visit_date=TODAY + timedelta(days=7))
    out = load(real, a, b)
    got = [rows(real, "SELECT stts_daftar FROM reg_periksa WHERE no_rawat = :n", n=out[r["id"]]["no_rawat"])[0]
           ["stts_daftar"] for r in (a, b)]
    assert got == ["Baru", "Lama"]
    every_row_follows_khanzas_rule(real)


# ---------------------------------------------------------------- age at registration, on the day written


def test_infant_booked_ahead_gets_the_age_of_today(real):
    birth = TODAY - timedelta(days=20)
    r = reg(birth_date=birth, visit_date=TODAY + timedelta(days=14))  # 34 days old on the visit date
    out = load_one(real, r)
    visit = rows(real, "SELECT umurdaftar, sttsumur FROM reg_periksa WHERE no_rawat = :n", n=out["no_rawat"])[0]
    assert (visit["umurdaftar"], visit["sttsumur"]) == (20, "Hr")  # not '1 Bl' on the visit date
