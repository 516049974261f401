"""Find a patient by NIK (checking the BPJS card and that the person agrees), or create one as Khanza's Mobile JKN
`pasienbaru` does.

A NIK alone does not say who is coming: a parent may type their own NIK for their child. A registration joins an
existing patient only when the person agrees too: the birth date, and the gender where Khanza has one
(`khanza_sync.fixes.identity_disagreements`, the comparison staff see when they resolve a conflict). Names are not
compared (spelling varies too much: the README says why). Anything else is a PatientConflict for staff.

Existing patients are never overwritten with website data: the desk has verified them, the
website has not. Only `umur` is refreshed after a visit, as the desktop does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, bindparam, exc, text

from khanza import capabilities, numbering
from khanza.db import mysql_code
from khanza.masterdata import MasterData
from khanza.regions import Place
from khanza.visits import umur_text
from khanza_sync.fixes import identity_disagreements
from khanza_sync.rules import ALAMATPJ_MAX, shorten

EMPTY_CARD = {"", "-", None}

# What the loader knows of a patient, with the region names it repeats, and who the person is (name, gender,
# birth date: compared before a registration joins the record); `{where}` filters.
_PATIENTS = (
    "SELECT p.no_rkm_medis, p.no_ktp, p.no_peserta, p.tgl_lahir, p.tgl_daftar, p.alamat, p.namakeluarga, "
    "p.keluarga, kel.nm_kel, kec.nm_kec, kab.nm_kab, prop.nm_prop, p.nm_pasien, p.jk FROM pasien p "
    "LEFT JOIN kelurahan kel ON kel.kd_kel = p.kd_kel LEFT JOIN kecamatan kec ON kec.kd_kec = p.kd_kec "
    "LEFT JOIN kabupaten kab ON kab.kd_kab = p.kd_kab LEFT JOIN propinsi prop ON prop.kd_prop = p.kd_prop "
    "WHERE {where}")
_FIND = text(_PATIENTS.format(where="p.no_ktp IN :niks")).bindparams(bindparam("niks", expanding=True))
_CARDS = text("SELECT no_peserta, no_ktp FROM pasien WHERE no_peserta IN :cards").bindparams(
    bindparam("cards", expanding=True))
# By record number: the patients staff linked registrations to.
_BY_RM = text(_PATIENTS.format(where="p.no_rkm_medis IN :rms")).bindparams(bindparam("rms", expanding=True))
_HOLDERS = text("SELECT COUNT(*) FROM pasien WHERE no_ktp = :nik")
_CARD_HOLDERS = text("SELECT COUNT(*) FROM pasien WHERE no_peserta = :card")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class PatientConflict(Exception):
    """Khanza's records and the registration disagree about who this is (never merged silently). The text names
    what disagrees (field names, never values): it is the staff's detail, logged and safe to log."""


@dataclass
class PatientIndex:
    """The batch's patients, read once: by NIK, and the NIKs holding each BPJS card given in the batch.
    Patients the batch creates are added as it goes."""

    by_nik: dict[str, list[dict]] = field(default_factory=dict)
    card_holders: dict[str, set] = field(default_factory=dict)

    def add(self, patient: dict) -> None:
        # Keys are stripped: MariaDB's latin1 comparison ignores trailing spaces, so the query finds
        # 'NIK ' for 'NIK', and the match must too (or a second patient would be created).
        nik, card = _strip(patient["no_ktp"]), _strip(patient.get("no_peserta"))
        self.by_nik.setdefault(nik, []).append(patient)
        if card not in EMPTY_CARD:
            self.card_holders.setdefault(card, set()).add(nik)

    def match(self, nik: str, bpjs_number: str | None, person: dict | None = None) -> dict | None:
        """The patient with this NIK, or None. Raises PatientConflict when the NIK is on more than one
        patient, when a BPJS card is given and it belongs to another patient or differs from the
        matched patient's card, or when `person` (the registration: birth_date, gender) is not the matched
        patient: another birth date (or none in Khanza), or another gender where Khanza has one."""
        found = self.by_nik.get(nik, [])
        if len(found) > 1:
            raise PatientConflict("NIK is on more than one patient")
        patient = found[0] if found else None
        if bpjs_number:
            own_card = _strip(patient["no_peserta"]) if patient else None
            if own_card not in EMPTY_CARD and own_card != bpjs_number:
                raise PatientConflict("matched patient has another BPJS card")
            if self.card_holders.get(bpjs_number, set()) - {nik}:
                raise PatientConflict("BPJS card belongs to another patient")
        if patient is not None and person is not None:
            disagree = identity_disagreements(person, patient)
            if disagree:  # e.g. a parent's NIK with the child's birth date: not this patient's visit
                raise PatientConflict("matched patient is another person: " + ", ".join(disagree))
        return patient


def read_index(conn: Connection, niks: list[str], cards: list[str]) -> PatientIndex:
    index = PatientIndex()
    if niks:
        for row in conn.execute(_FIND, {"niks": sorted(set(niks))}).mappings():
            index.add(dict(row))
    if cards:
        for card, nik in conn.execute(_CARDS, {"cards": sorted(set(cards))}):
            index.card_holders.setdefault(_strip(card), set()).add(_strip(nik))
    return index


def by_record(conn: Connection, rms: list[str]) -> dict[str, dict]:
    """no_rkm_medis -> the patient (the loader's columns), for those that exist: the patients staff linked
    registrations to (khanza/decisions.py)."""
    if not rms:
        return {}
    return {_strip(r["no_rkm_medis"]): dict(r) for r in conn.execute(_BY_RM, {"rms": sorted(set(rms))}).mappings()}


def holders(conn: Connection, nik: str | None, card: str | None) -> tuple[int, int]:
    """How many Khanza patients carry this NIK, and this BPJS card: what a PATIENT_CONFLICT is about."""
    by_nik = conn.execute(_HOLDERS, {"nik": nik}).scalar_one() if nik else 0
    by_card = conn.execute(_CARD_HOLDERS, {"card": card}).scalar_one() if card else 0
    return int(by_nik), int(by_card)


def new_patient_row(reg: dict, no_rkm_medis: str, kd_pj: str, md: MasterData, today: date,
                    registered_on: date | None = None, place: Place | None = None) -> dict:
    """Every NOT NULL column filled with Khanza's own placeholders (rules.md §7, Mobile JKN column).

    The region: `place` (khanza/regions.py), the rows found or added for the registration's region, ids in
    kd_kel..kd_prop and their names in kelurahanpj..propinsipj as Mobile JKN's pasienbaru writes them; without
    it (no region given) Khanza's '-' rows and '-' names, as before.

    tgl_daftar is the visit date (`registered_on`), as DlgBookingPeriksa gives a patient it creates from a web
    booking; so the patient's first visit is 'Baru' by Khanza's own rule (tgl_daftar = tgl_registrasi).
    umur is the age today, when the row is written."""
    ph = md.placeholders
    ids = place.ids if place else {"village": ph["kd_kel"], "district": ph["kd_kec"], "regency": ph["kd_kab"],
                                   "province": ph["kd_prop"]}
    names = place.names if place else {"village": "-", "district": "-", "regency": "-", "province": "-"}
    return {
        "no_rkm_medis": no_rkm_medis,
        "nm_pasien": reg["full_name"],
        "no_ktp": reg["nik"],
        "jk": reg["gender"],
        "tmp_lahir": reg.get("birth_place") or "-",
        "tgl_lahir": reg["birth_date"],
        "nm_ibu": reg.get("mother_name") or "-",
        "alamat": reg["address"],
        "gol_darah": "-",
        "pekerjaan": "-",
        "stts_nikah": "JOMBLO",
        "agama": "-",
        "tgl_daftar": registered_on or today,
        "no_tlp": reg["phone"],
        "umur": umur_text(reg["birth_date"], today),
        "pnd": "-",
        "keluarga": "SAUDARA",
        "namakeluarga": "-",
        "kd_pj": kd_pj,
        "no_peserta": reg.get("bpjs_number") or "",
        "kd_kel": ids["village"],
        "kd_kec": ids["district"],
        "kd_kab": ids["regency"],
        "pekerjaanpj": "-",
        "alamatpj": shorten(reg["address"], ALAMATPJ_MAX),  # alamatpj is shorter than alamat
        "kelurahanpj": names["village"],
        "kecamatanpj": names["district"],
        "kabupatenpj": names["regency"],
        "perusahaan_pasien": ph["perusahaan_pasien"],
        "suku_bangsa": ph["suku_bangsa"],
        "bahasa_pasien": ph["bahasa_pasien"],
        "cacat_fisik": ph["cacat_fisik"],
        "email": reg.get("email") or "-",
        "nip": "-",
        "kd_prop": ids["province"],
        "propinsipj": names["province"],
    }


def create(conn: Connection, reg: dict, kd_pj: str, md: MasterData, today: date, attempts: int = 20,
           registered_on: date | None = None, place: Place | None = None) -> dict:
    """Insert a new patient with the next no_rkm_medis and move Khanza's counter on.

    The counter row is read FOR UPDATE; a number the desk took meanwhile (desktop inserts don't
    lock) makes the insert hit the primary key, and we step to the next number, as Khanza's own
    booking dialog retries.
    """
    stored = numbering.read_rm_counter(conn)
    for _ in range(attempts):
        candidate = md.rm_format.next_after(stored, today)
        row = new_patient_row(reg, candidate, kd_pj, md, today, registered_on, place)
        try:
            row = capabilities.insert(conn, md.caps, "pasien", row)
        except exc.IntegrityError as error:
            if mysql_code(error) != 1062:
                raise
            stored = candidate
            continue
        numbering.write_rm_counter(conn, candidate)
        return {**row, "nm_kel": row["kelurahanpj"], "nm_kec": row["kecamatanpj"], "nm_kab": row["kabupatenpj"],
                "nm_prop": row["propinsipj"]}
    raise RuntimeError("no free no_rkm_medis after retries")


def refresh_umur(conn: Connection, no_rkm_medis: str, birth: date, today: date) -> None:
    conn.execute(text("UPDATE pasien SET umur = :umur WHERE no_rkm_medis = :rm"),
                 {"umur": umur_text(birth, today), "rm": no_rkm_medis})
