"""Every error code a registration can end with, the message staff see for it, and what the website may show.

Messages never contain the registration's own values (NIK, name, phone...), only what to fix,
so they are safe in the website row, in logs and in Prefect artifacts.

Two audiences: `message` is the staff's (Prefect artifacts, the README); `website_message` is what the
pipeline writes to the website row's `last_error`, which the website may show whoever filled in the form. They
are the same text except where the staff's text would tell a stranger something about a patient of the
hospital: a PATIENT_CONFLICT says the NIK or card belongs to someone here, so the website gets the one
"needs a check by staff" text it also gets for rows Khanza refused or that failed too often (`STAFF_CHECK`).
"""
from __future__ import annotations

from enum import Enum

from khanza_sync.rules import BPJS_DIGITS, NAME_MAX, NIK_DIGITS


class ErrorCode(str, Enum):
    # Data checks (data_checks/)
    INVALID_NIK = "INVALID_NIK"
    MISSING_NAME = "MISSING_NAME"
    INVALID_NAME = "INVALID_NAME"
    NAME_TOO_LONG = "NAME_TOO_LONG"
    INVALID_BIRTH_DATE = "INVALID_BIRTH_DATE"
    INVALID_GENDER = "INVALID_GENDER"
    INVALID_PHONE = "INVALID_PHONE"
    MISSING_ADDRESS = "MISSING_ADDRESS"
    INVALID_VISIT_DATE = "INVALID_VISIT_DATE"
    VISIT_DATE_PASSED = "VISIT_DATE_PASSED"
    OUTSIDE_BOOKING_WINDOW = "OUTSIDE_BOOKING_WINDOW"
    INVALID_PAYMENT = "INVALID_PAYMENT"
    INVALID_BPJS_NUMBER = "INVALID_BPJS_NUMBER"
    INVALID_REGION = "INVALID_REGION"
    INCONSISTENT_REGION = "INCONSISTENT_REGION"
    DUPLICATE_ID = "DUPLICATE_ID"
    INVALID_CREATED_AT = "INVALID_CREATED_AT"
    # Waits (pending, not rejected): the website's clock or time zone is off
    CREATED_AT_IN_FUTURE = "CREATED_AT_IN_FUTURE"
    # Mapping (mappings/)
    UNKNOWN_POLI = "UNKNOWN_POLI"
    UNKNOWN_DOCTOR = "UNKNOWN_DOCTOR"
    UNKNOWN_PAYER = "UNKNOWN_PAYER"
    # Khanza rules (khanza/)
    NO_SCHEDULE = "NO_SCHEDULE"
    QUOTA_FULL = "QUOTA_FULL"
    PATIENT_CONFLICT = "PATIENT_CONFLICT"
    PATIENT_ADMITTED = "PATIENT_ADMITTED"
    UNPAID_PREVIOUS_VISIT = "UNPAID_PREVIOUS_VISIT"
    BOOKING_SAME_DAY = "BOOKING_SAME_DAY"
    DUPLICATE_REGISTRATION = "DUPLICATE_REGISTRATION"
    KHANZA_REJECTED = "KHANZA_REJECTED"
    # Transient
    KHANZA_UNREACHABLE = "KHANZA_UNREACHABLE"
    KHANZA_BUSY = "KHANZA_BUSY"
    PIPELINE_ERROR = "PIPELINE_ERROR"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    # Cancellations and reconciliation (flows/reconcile_queue_numbers.py)
    CANCELLED = "CANCELLED"
    CANCELLED_IN_KHANZA = "CANCELLED_IN_KHANZA"
    DELETED_IN_KHANZA = "DELETED_IN_KHANZA"
    DOCTOR_UNAVAILABLE = "DOCTOR_UNAVAILABLE"
    CANCELLED_NOT_OWNED = "CANCELLED_NOT_OWNED"
    CANCEL_REFUSED_SERVED = "CANCEL_REFUSED_SERVED"
    CANCEL_REFUSED_PAST = "CANCEL_REFUSED_PAST"
    CANCEL_REFUSED_CHECKED_IN = "CANCEL_REFUSED_CHECKED_IN"

    @property
    def message(self) -> str:
        """The staff's text: what happened and what to do."""
        return MESSAGES[self]

    @property
    def website_message(self) -> str:
        """What the website row's last_error says, and the website may show the submitter."""
        return WEBSITE_MESSAGES.get(self, MESSAGES[self])


MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_NIK: f"NIK harus {NIK_DIGITS} digit angka dan bukan nol semua / NIK must be {NIK_DIGITS} digits, "
                           "not all zeros.",
    ErrorCode.MISSING_NAME: "Nama pasien kosong / Patient name is missing.",
    ErrorCode.INVALID_NAME: "Nama hanya boleh huruf, spasi dan tanda . , ' ` - (tanpa angka atau simbol lain), diawali huruf "
                            "/ Name may contain only letters, spaces and . , ' ` - (no digits or other symbols), starting "
                            "with a letter.",
    ErrorCode.NAME_TOO_LONG: f"Nama lebih dari {NAME_MAX} karakter (batas Khanza); singkat lalu kirim ulang / Name longer "
                             f"than Khanza's {NAME_MAX} characters; abbreviate and re-queue.",
    ErrorCode.INVALID_BIRTH_DATE: "Tanggal lahir tidak valid, sebelum 1900 atau di masa depan / Birth date invalid, before 1900 or in the future.",
    ErrorCode.INVALID_GENDER: "Jenis kelamin harus L/P (Laki-laki/Perempuan) / Gender must be L or P.",
    ErrorCode.INVALID_PHONE: "Nomor HP tidak valid (contoh 0812..., +62812...) / Phone number not plausible.",
    ErrorCode.MISSING_ADDRESS: "Alamat kosong / Address is missing.",
    ErrorCode.INVALID_VISIT_DATE: "Tanggal periksa tidak valid / Visit date is not a valid date.",
    ErrorCode.VISIT_DATE_PASSED: "Tanggal periksa sudah lewat / The visit date has already passed.",
    ErrorCode.OUTSIDE_BOOKING_WINDOW: "Tanggal periksa di luar jangka pendaftaran (terlalu jauh, atau hari ini lewat jam tutup) / Visit date outside the booking window.",
    ErrorCode.INVALID_PAYMENT: "Cara bayar harus umum, bpjs atau asuransi / Payment must be umum, bpjs or asuransi.",
    ErrorCode.INVALID_BPJS_NUMBER: f"Nomor kartu BPJS wajib {BPJS_DIGITS} digit untuk pasien BPJS / BPJS number "
                                   f"({BPJS_DIGITS} digits) required for payment bpjs.",
    ErrorCode.INVALID_REGION: "Wilayah (desa/kelurahan, kecamatan, kabupaten/kota, provinsi) tidak dikenal: kode "
                              "Kemendagri salah atau tidak ada, atau nama berisi karakter yang tidak boleh atau terlalu "
                              "panjang; pilih dari daftar wilayah lalu kirim ulang / Region unknown: a Kemendagri code "
                              "that is malformed or does not exist, or a name with characters Khanza does not take or "
                              "too long; pick it from the region list and re-queue.",
    ErrorCode.INCONSISTENT_REGION: "Wilayah tidak cocok satu sama lain (desa/kelurahan tidak ada di kecamatan itu, "
                                   "kecamatan tidak ada di kabupaten/kota itu, atau kabupaten tidak ada di provinsi "
                                   "itu, menurut daftar wilayah Kemendagri); perbaiki lalu kirim ulang / The region "
                                   "levels do not fit together (the village is not in that district, the district not "
                                   "in that regency, or the regency not in that province, per the Kemendagri list); "
                                   "correct it and re-queue.",
    ErrorCode.DUPLICATE_ID: "ID pendaftaran muncul lebih dari sekali dalam satu batch / Registration id appears more than once.",
    ErrorCode.INVALID_CREATED_AT: "Waktu pendaftaran (created_at) kosong atau tidak valid; kesalahan website, perbaiki lalu "
                                  "kirim ulang / The submission time (created_at) is missing or not a timestamp: a "
                                  "website fault; fix the row and re-queue it.",
    ErrorCode.CREATED_AT_IN_FUTURE: "Waktu pendaftaran (created_at) di masa depan: jam atau zona waktu website salah "
                                    "(harus UTC); menunggu / The submission time (created_at) lies in the future: the "
                                    "website's clock or time zone is off (created_at must be UTC); the registration waits.",
    ErrorCode.UNKNOWN_POLI: "Poliklinik tidak ada di mappings/poliklinik.yaml atau tidak aktif di Khanza / Clinic slug unmapped or not active in Khanza.",
    ErrorCode.UNKNOWN_DOCTOR: "Dokter tidak ada di mappings/dokter.yaml atau tidak aktif di Khanza / Doctor slug unmapped or not active in Khanza.",
    ErrorCode.UNKNOWN_PAYER: "Cara bayar tidak ada di mappings/penjab.yaml atau tidak aktif di Khanza / Payer unmapped or not active in Khanza.",
    ErrorCode.NO_SCHEDULE: "Dokter tidak praktik di poliklinik ini pada hari tersebut (jadwal) / Doctor has no schedule at this clinic on that weekday.",
    ErrorCode.QUOTA_FULL: "Kuota dokter untuk hari itu penuh (kunjungan yang dibatalkan tetap dihitung, seperti di Khanza) / The doctor's quota for that day is full (cancelled visits still count, as in Khanza).",
    ErrorCode.PATIENT_ADMITTED: "Pasien sedang dirawat inap (kamar inap belum pulang); Khanza tidak menerima pendaftaran "
                                "rawat jalan / The patient is currently admitted (open inpatient stay); Khanza refuses an "
                                "outpatient registration until discharge.",
    ErrorCode.UNPAID_PREVIOUS_VISIT: "Pasien punya tagihan kunjungan sebelumnya yang belum di-closing kasir (wajib closing "
                                     "kasir aktif); selesaikan di kasir / The patient has an earlier visit not yet paid and "
                                     "the hospital requires cashier closing first; settle it at the cashier.",
    ErrorCode.PATIENT_CONFLICT: "NIK/nomor BPJS cocok dengan pasien Khanza yang bukan orang ini (tanggal lahir/jenis "
                                "kelamin beda), ada pada beberapa pasien, atau kartu BPJS bentrok; petugas memutuskan "
                                "(resolve-patient-conflict) / The NIK or BPJS card matches a Khanza patient who is not "
                                "this person (birth date or gender differ), is on several patients, or the card "
                                "disagrees; staff decide with resolve-patient-conflict (link or new patient).",
    ErrorCode.BOOKING_SAME_DAY: "Pasien sudah punya booking lain di tanggal itu (Khanza: satu booking per hari) / Patient already has another booking that day.",
    ErrorCode.DUPLICATE_REGISTRATION: "Pasien sudah terdaftar di poliklinik ini pada tanggal itu; nomor yang ada dipakai / Already registered at this clinic that day; existing numbers returned.",
    ErrorCode.KHANZA_REJECTED: "Khanza menolak data ini; hubungi tim data / Khanza refused this row; contact the data team.",
    ErrorCode.KHANZA_UNREACHABLE: "Khanza tidak bisa dihubungi; akan dicoba lagi otomatis / Khanza unreachable; will retry automatically.",
    ErrorCode.KHANZA_BUSY: "Nomor antrian sedang dipakai bersamaan di loket; akan dicoba lagi otomatis / Numbers taken concurrently at the desk; will retry automatically.",
    ErrorCode.PIPELINE_ERROR: "Kesalahan pada pipeline (bukan data pasien); tim data melihatnya di Prefect, akan dicoba lagi / Pipeline error, not the registration's data; visible to the data team in Prefect, will retry.",
    ErrorCode.TOO_MANY_ATTEMPTS: "Terlalu banyak percobaan gagal; perlu diperiksa tim data / Failed transiently too many times; needs review.",
    ErrorCode.CANCELLED: "Pendaftaran dibatalkan sesuai permintaan / Registration cancelled as requested.",
    ErrorCode.CANCELLED_IN_KHANZA: "Kunjungan dibatalkan oleh rumah sakit (Khanza) / The hospital cancelled this visit in Khanza.",
    ErrorCode.DELETED_IN_KHANZA: "Kunjungan/booking dihapus di Khanza (loket membatalkan booking dengan menghapusnya) / The visit or booking was removed from Khanza (the desk cancels a booking by deleting it).",
    ErrorCode.DOCTOR_UNAVAILABLE: "Dokter berhalangan; booking dibatalkan rumah sakit / Doctor unavailable; the hospital cancelled the booking.",
    ErrorCode.CANCELLED_NOT_OWNED: "Dibatalkan di website; kunjungan di Khanza dibuat di loket, batalkan di loket bila perlu / Cancelled on the website; the Khanza visit was made elsewhere, cancel it at the desk if needed.",
    ErrorCode.CANCEL_REFUSED_SERVED: "Kunjungan sudah dilayani, tidak bisa dibatalkan / The visit has already been served; not cancelled.",
    ErrorCode.CANCEL_REFUSED_PAST: "Tanggal periksa sudah lewat, tidak bisa dibatalkan / The visit date has passed; not cancelled.",
    ErrorCode.CANCEL_REFUSED_CHECKED_IN: "Booking sudah check-in di loket; batalkan di loket / The booking has been "
                                         "checked in at the desk; cancel it there.",
}

# The text the website gets for every registration that needs a person at the hospital to look at it, whatever
# the reason: a PATIENT_CONFLICT must read exactly like the others, so a stranger learns nothing from it.
STAFF_CHECK = ("Pendaftaran perlu diperiksa petugas rumah sakit; silakan hubungi loket pendaftaran / The registration "
               "needs a check by hospital staff; please contact the registration desk.")
WEBSITE_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.PATIENT_CONFLICT: STAFF_CHECK,
    ErrorCode.KHANZA_REJECTED: STAFF_CHECK,
    ErrorCode.TOO_MANY_ATTEMPTS: STAFF_CHECK,
}
