"""One website registration = one Khanza transaction: patient (found or created), visit or booking,
ledger row. A batch shares one connection and holds the pipeline's numbering lock throughout.

Per batch, under the lock, the loader reads once what it needs to decide (the patients by NIK, their
visit history, each visit day's numbers and quota use) and keeps that current as it inserts, so
each registration costs only its own writes. After the loop it checks that no desk registration
took one of its queue numbers meanwhile, and renumbers before anything is written back.

Transient database errors (Khanza gone, lock timeouts, deadlocks) propagate so the Prefect task retries
the whole batch; the ledger makes that retry idempotent, and the rows an interrupted attempt committed get
the same queue-number check on the retry as fresh ones. An error Khanza's server raised for this row
(a key, a value, a constraint) rejects it (KHANZA_REJECTED); any other exception is a fault of ours
(PIPELINE_ERROR): the row waits with backoff for a fix or staff, it is never rejected for it. Either way
the batch goes on.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, Engine, exc

from khanza_sync.error_codes import ErrorCode
from khanza import capabilities, decisions, ledger, masterdata, numbering, patients, regions, schedule, visits
from khanza.db import is_transient, mysql_code
from khanza.locks import writers_lock
from khanza_sync.outcomes import COLUMNS as OUTCOME_COLUMNS
from khanza_sync.outcomes import too_many_attempts
from khanza_sync.regions import LEVELS as REGION_LEVELS
from khanza_sync.regions import differences as region_differences
from khanza_sync.rules import valid_bpjs_number, valid_nik
from khanza_sync.settings import Settings

log = logging.getLogger(__name__)

MAX_INSERT_ATTEMPTS = 5  # as the desktop's isRegistrasi


KhanzaSetupError = capabilities.KhanzaSetupError  # Khanza lacks something every registration needs


class NumbersBusy(Exception):
    """The desk took every no_rawat we tried: transient, for this registration only."""


class Rejected(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None):
        super().__init__(code.value)
        self.code = code
        self.message = message or code.website_message


@dataclass
class Batch:
    """What the loader knows while it works through one batch."""

    settings: Settings
    md: masterdata.MasterData
    fixed_clock: datetime | None = None  # tests pin the clock; otherwise each registration reads it
    people: patients.PatientIndex = field(default_factory=patients.PatientIndex)
    history: dict[str, list[dict]] = field(default_factory=dict)  # no_rkm_medis -> visits
    admitted: set[str] = field(default_factory=set)  # no_rkm_medis with an open inpatient stay (kamar_inap)
    days: dict[date, numbering.DayBook] = field(default_factory=dict)
    # Staff decisions (khanza/decisions.py): registration id -> latest link_patient/new_patient; linked patients
    decided: dict[str, dict] = field(default_factory=dict)
    linked: dict[str, dict] = field(default_factory=dict)  # no_rkm_medis -> patient

    def now(self) -> datetime:
        """Wall-clock time in the hospital's zone (naive), read per registration as the desktop's clock is."""
        return self.fixed_clock or datetime.now(self.settings.tz).replace(tzinfo=None)

    @property
    def booking(self) -> bool:
        return self.settings.khanza_target == "booking"

    @property
    def sequence(self) -> dict[str, bool]:
        """Which tables the no_reg we number is the next of. A visit: reg_periksa, and with BASENOREG=booking
        also booking_registrasi (DlgReg isNumber takes the larger maximum). A booking: booking_registrasi only,
        whatever BASENOREG says (the booking dialogs' isNomer)."""
        if self.booking:
            return {"visits": False, "bookings": True}
        return {"visits": True, "bookings": self.settings.noreg_shared_with_booking}

    @property
    def scope(self) -> str:
        """The URUTNOREG scope of the sequence we number in: DlgReg's reading for visits (Settings.noreg_scope);
        for bookings the booking dialogs' (same exact strings, anything else per doctor)."""
        return numbering.booking_scope(self.settings) if self.booking else self.settings.noreg_scope

    def reread_day(self, conn: Connection, day: date) -> numbering.DayBook:
        self.days[day] = numbering.read_days(conn, {day}, self.scope)[day]
        return self.days[day]


def outcome(reg_id: str, status: str, kind: str, code: ErrorCode | None = None, message: str | None = None,
            no_rkm_medis=None, no_rawat=None, no_reg=None, regions_added: int = 0, findings: str | None = None) -> dict:
    """One outcome row; `message` (the website's last_error) defaults to what the website may show for `code`.
    `regions_added`: region rows this registration added to Khanza; `findings`: what disagrees with Khanza's
    records that was kept as Khanza has it (field names only)."""
    return {"id": reg_id, "status": status, "outcome": kind, "error_code": code.value if code else None,
            "message": message if message is not None else (code.website_message if code else None),
            "no_rkm_medis": no_rkm_medis, "no_rawat": no_rawat, "no_reg": no_reg, "regions_added": regions_added,
            "findings": findings}


def from_ledger(entry: dict) -> dict:
    dup = entry["outcome"] == "duplicate"
    return outcome(entry["registration_id"], "synced", "duplicate" if dup else "created",
                   ErrorCode.DUPLICATE_REGISTRATION if dup else None,
                   no_rkm_medis=entry["no_rkm_medis"], no_rawat=entry["no_rawat"], no_reg=entry["no_reg"])


def already_loaded(engine: Engine, ids: list[str], settings: Settings) -> pd.DataFrame:
    """Outcomes of the registrations the ledger already holds (a crashed or cut-off run's work).

    Their queue numbers get the same check as fresh ones before they are written back: the desk may
    have taken one of them while the run that made them was down."""
    with engine.connect() as conn:
        with writers_lock(conn, settings):
            with conn.begin():
                done = ledger.lookup(conn, ids)
            results = [from_ledger(entry) for entry in done.values()]
            batch = Batch(settings=settings, md=masterdata.MasterData())
            today = batch.now().date()
            created = [(_as_loaded(e), result) for e, result in zip(done.values(), results)
                       if _to_verify(e, settings, today)]
            _verify_no_reg(conn, batch, created)
    return pd.DataFrame(results, columns=OUTCOME_COLUMNS)


def _to_verify(entry: dict, settings: Settings, today: date) -> bool:
    """A ledger row whose queue number is ours to check before it is reported: a visit or booking we created
    (a duplicate reports the desk's own numbers), for today or later, in the target we number."""
    return entry["outcome"] == "created" and entry["tanggal"] >= today and entry["target"] == settings.khanza_target


def _as_loaded(entry: dict) -> dict:
    """A ledger row as the registration `_verify_no_reg` checks: its id, day, doctor and clinic as written."""
    return {"id": entry["registration_id"], "visit_date": entry["tanggal"], "kd_dokter": entry["kd_dokter"],
            "kd_poli": entry["kd_poli"]}


def load_batch(engine: Engine, regs: pd.DataFrame, settings: Settings, clock: datetime | None = None,
               md: masterdata.MasterData | None = None) -> pd.DataFrame:
    """Load mapped registrations into Khanza; returns one outcome row per registration.
    `clock` pins the wall-clock time (tests); by default each registration reads the hospital's clock."""
    results: list[dict] = []
    records = regs.to_dict("records")
    with engine.connect() as conn:
        with writers_lock(conn, settings):
            # The ledger is read under the lock: a run that overlaps ours (a lease ran out) has finished
            # writing by now, and what it loaded is repaired here instead of inserted twice.
            with conn.begin():
                md = md or masterdata.load(conn)
                done = ledger.lookup(conn, [r["id"] for r in records])
                # Staff decisions under the same lock: one recorded before this batch is seen, none half-way.
                decided = decisions.patient_decisions(conn, [r["id"] for r in records if r["id"] not in done])
            capabilities.require_essentials(md.caps)  # also when the caller handed its own master data
            missing = masterdata.missing_placeholders(md)
            if missing:  # every new patient would fail: a set-up problem, not one row's
                raise KhanzaSetupError(f"Khanza lacks the '-' placeholder rows for: {', '.join(missing)}")
            batch = Batch(settings=settings, md=md, fixed_clock=clock, decided=decided)
            # Defence in depth for callers that skip the data checks: the checks' own NIK and card rules
            # (khanza_sync.rules). A malformed one would break the batch's shared lookups, so it is this
            # row's rejection instead.
            refused = {r["id"]: outcome(r["id"], "rejected", "rejected", code)
                       for r in records if r["id"] not in done and (code := _malformed(r))}
            todo = [r for r in records if r["id"] not in done and r["id"] not in refused]
            with conn.begin():
                _read_batch_state(conn, batch, todo)
            created: list[tuple[dict, dict]] = []
            today = batch.now().date()
            for reg in records:
                if reg["id"] in done:  # already in Khanza: a crashed or retried run is repaired here
                    result = from_ledger(done[reg["id"]])
                    results.append(result)
                    # A Prefect retry after a lock wait or deadlock mid-batch lands here for the rows the failed
                    # attempt committed: they never reached that attempt's check, so they get it now.
                    if _to_verify(done[reg["id"]], settings, today):
                        created.append((_as_loaded(done[reg["id"]]), result))
                    continue
                if reg["id"] in refused:
                    results.append(refused[reg["id"]])
                    continue
                result = _load_one(conn, reg, batch)
                results.append(result)
                if result["outcome"] == "created":
                    created.append((reg, result))
            _verify_no_reg(conn, batch, created)
    return pd.DataFrame(results, columns=OUTCOME_COLUMNS)


def _malformed(reg: dict) -> ErrorCode | None:
    if not valid_nik(reg.get("nik")):
        return ErrorCode.INVALID_NIK
    card = reg.get("bpjs_number")
    if card is not None and not valid_bpjs_number(card):
        return ErrorCode.INVALID_BPJS_NUMBER
    return None


def _read_batch_state(conn: Connection, batch: Batch, todo: list[dict]) -> None:
    batch.people = patients.read_index(conn, [r["nik"] for r in todo],
                                       [r["bpjs_number"] for r in todo if r.get("bpjs_number")])
    batch.linked = patients.by_record(conn, [d["no_rkm_medis"] for r in todo if (d := batch.decided.get(r["id"]))
                                             and d["action"] == "link_patient"])
    rms = [p["no_rkm_medis"] for found in batch.people.by_nik.values() for p in found] + list(batch.linked)
    batch.history = visits.patient_history(conn, rms, batch.md.caps.has("reg_periksa", "status_bayar"))
    batch.admitted = visits.admitted(conn, rms) if batch.md.caps.has("kamar_inap") else set()
    batch.days = numbering.read_days(conn, {r["visit_date"] for r in todo}, batch.scope)


def _load_one(conn: Connection, reg: dict, batch: Batch) -> dict:
    try:
        with conn.begin():
            result, on_commit = register(conn, reg, batch)
    except Rejected as rejection:
        return outcome(reg["id"], "rejected", "rejected", rejection.code, rejection.message)
    except NumbersBusy:
        # Not in Khanza (its transaction rolled back, and we hold the lock): safe to retry later, or,
        # after too many attempts, to hand to staff.
        if too_many_attempts(reg.get("attempts"), batch.settings):
            return outcome(reg["id"], "rejected", "rejected", ErrorCode.TOO_MANY_ATTEMPTS)
        return outcome(reg["id"], "deferred", "deferred", ErrorCode.KHANZA_BUSY)
    except patients.PatientConflict as conflict:
        # The staff's detail (field names, never values) goes to the log; the website gets a message that does
        # not say the NIK belongs to a patient here (ErrorCode.website_message).
        log.warning("registration %s: %s (%s)", reg["id"], ErrorCode.PATIENT_CONFLICT.value, conflict)
        return outcome(reg["id"], "rejected", "rejected", ErrorCode.PATIENT_CONFLICT)
    except Exception as error:  # noqa: BLE001 - one bad row must not stop the batch
        if is_transient(error):
            raise
        # Log the class and MySQL error number only: the message text may quote the row's values.
        if refused_by_khanza(error):
            log.warning("registration %s refused by Khanza: %s (MySQL error %s)", reg["id"],
                        type(error).__name__, mysql_code(error))
            return outcome(reg["id"], "rejected", "rejected", ErrorCode.KHANZA_REJECTED)
        # Not Khanza's verdict on this row (a bug of ours, master data changed under us, a missing right):
        # rolled back, and the row waits with backoff; it is not the registration's fault.
        log.error("registration %s: unexpected %s (MySQL error %s) while loading; rolled back, waits as %s",
                  reg["id"], type(error).__name__, mysql_code(error), ErrorCode.PIPELINE_ERROR.value)
        if too_many_attempts(reg.get("attempts"), batch.settings):  # as KHANZA_BUSY: to staff, not in Khanza
            return outcome(reg["id"], "rejected", "rejected", ErrorCode.TOO_MANY_ATTEMPTS)
        return outcome(reg["id"], "deferred", "deferred", ErrorCode.PIPELINE_ERROR)
    on_commit()  # committed: the batch's memory follows it (outside the try: it is never a rejection)
    return result


# Errors of the server that are not about the row: a right or an object missing, SQL the server cannot read.
_NOT_THE_ROWS = frozenset({1044, 1045, 1054, 1064, 1142, 1143, 1146})


def refused_by_khanza(error: BaseException) -> bool:
    """True when Khanza's server refused this row's values (a duplicate key, a foreign key, a value too long,
    NULL where it may not be, a CHECK constraint...): an error the server raised with its number (the client's
    own are 2000-2999), other than a missing right or object or unreadable SQL. Anything else is not the row's."""
    code = mysql_code(error)
    return (code is not None and not 2000 <= code < 3000 and code not in _NOT_THE_ROWS
            and not isinstance(error, exc.ProgrammingError))


def register(conn: Connection, reg: dict, batch: Batch):
    """Everything for one registration, inside the caller's transaction.

    Returns (outcome, on_commit): on_commit updates the batch's memory once the transaction is committed."""
    day: date = reg["visit_date"]
    kd_poli, kd_dokter, kd_pj = reg["kd_poli"], reg["kd_dokter"], reg["kd_pj"]
    target = batch.settings.khanza_target
    clock = batch.now()

    patient = _patient_of(reg, batch)
    history = batch.history.get(patient["no_rkm_medis"], []) if patient else []
    if patient is not None:
        duplicate = _existing_registration(conn, patient["no_rkm_medis"], history, kd_poli, day, batch.booking)
        if duplicate is not None:
            no_rawat, no_reg = duplicate
            no_reg = no_reg or ""  # Khanza allows a visit without no_reg; the ledger column does not
            # What was found decides where reconcile must look: a visit (even in booking mode) or a booking.
            found_in = "reg_periksa" if no_rawat else "booking"
            ledger.record(conn, registration_id=reg["id"], outcome="duplicate", target=found_in,
                          no_rkm_medis=patient["no_rkm_medis"], no_rawat=no_rawat, no_reg=no_reg, kd_poli=kd_poli,
                          kd_dokter=kd_dokter, tanggal=day, patient_created=False, written_at=clock,
                          tz=batch.settings.tz)
            return outcome(reg["id"], "synced", "duplicate", ErrorCode.DUPLICATE_REGISTRATION,
                           no_rkm_medis=patient["no_rkm_medis"], no_rawat=no_rawat, no_reg=no_reg), _nothing
        refused = desk_refusal(batch, patient["no_rkm_medis"], history)
        if refused is not None:
            raise Rejected(refused)

    book = batch.days[day]
    refusal = schedule.refusal(batch.md, kd_dokter, kd_poli, day,
                               taken=book.taken(kd_dokter, kd_poli, booking=batch.booking))
    if refusal is not None:
        raise Rejected(refusal)

    created = patient is None
    region = _region_of(reg)
    findings = None
    place = None
    if created:  # tgl_daftar = the visit date, as DlgBookingPeriksa creates a patient from a web booking
        if any(region.values()):  # found or added by name, in this transaction (khanza/regions.py)
            place = regions.place_of(conn, region, batch.md.placeholders)
        patient = patients.create(conn, reg, kd_pj, batch.md, clock.date(), registered_on=day, place=place)
    elif any(region.values()):  # the desk's record stays as it is; staff see what differs (names only)
        disagree = region_differences(region, patient)
        if disagree:
            findings = ", ".join(disagree)
            log.info("registration %s: region kept as Khanza has it (%s)", reg["id"], findings)
    khanza_knows_birth = patient["tgl_lahir"] is not None
    if not khanza_knows_birth:  # Khanza allows it; the form's birth date gives the age at registration
        patient = {**patient, "tgl_lahir": reg["birth_date"]}
    rm = patient["no_rkm_medis"]

    if batch.booking:
        no_reg = book.next_no_reg(kd_dokter, kd_poli, **batch.sequence)
        visits.insert_booking(conn, visits.booking_row(no_reg=no_reg, visit_date=day, clock=clock,
                                                       no_rkm_medis=rm, kd_dokter=kd_dokter, kd_poli=kd_poli,
                                                       kd_pj=kd_pj), batch.md.caps)
        no_rawat = None
    else:
        first_visit = not any(v["kd_poli"] == kd_poli for v in history)
        no_rawat, no_reg = _insert_visit(conn, reg, patient, first_visit, batch, clock)
        if not created and khanza_knows_birth:  # a new patient's umur was written a moment ago
            patients.refresh_umur(conn, rm, patient["tgl_lahir"], clock.date())
    ledger.record(conn, registration_id=reg["id"], outcome="created", target=target, no_rkm_medis=rm,
                  no_rawat=no_rawat, no_reg=no_reg, kd_poli=kd_poli, kd_dokter=kd_dokter, tanggal=day,
                  patient_created=created, written_at=clock, tz=batch.settings.tz)  # = the booking's own time

    def on_commit():
        if created:
            batch.people.add(patient)
        batch.days[day].add(kd_dokter, kd_poli, no_reg, no_rawat=no_rawat, booking=batch.booking)
        if no_rawat:
            batch.history.setdefault(rm, []).append({"no_rkm_medis": rm, "kd_poli": kd_poli, "no_rawat": no_rawat,
                                                     "no_reg": no_reg, "stts": "Belum", "tgl_registrasi": day,
                                                     "status_bayar": "Belum Bayar"})

    return outcome(reg["id"], "synced", "created", no_rkm_medis=rm, no_rawat=no_rawat, no_reg=no_reg,
                   regions_added=len(place.added) if place else 0, findings=findings), on_commit


def _patient_of(reg: dict, batch: Batch) -> dict | None:
    """The Khanza patient of this registration, or None for a new one: matched by NIK and BPJS card
    (PatientConflict when they disagree), unless staff decided (khanza/decisions.py): the patient they linked,
    or a new patient although the NIK or card matches others. The desk's refusals, the quota and the
    duplicate-visit check apply either way."""
    decision = batch.decided.get(reg["id"])
    if decision is None:  # the NIK (and card) find the record; the person must agree too
        return batch.people.match(reg["nik"], reg.get("bpjs_number"), reg)
    if decision["action"] == "new_patient":
        return None
    patient = batch.linked.get((decision["no_rkm_medis"] or "").strip())
    if patient is None:  # removed or renumbered at the desk since staff linked it: staff look again
        raise patients.PatientConflict("the patient staff linked is no longer in Khanza; resolve the conflict again")
    return patient


def _nothing():
    return None


def _region_of(reg: dict) -> dict[str, str | None]:
    """The registration's region names as the data checks left them (Khanza's form), None per level not given."""
    out = {}
    for level in REGION_LEVELS:
        value = reg.get(level.name)
        out[level.name] = value if isinstance(value, str) and value else None
    return out


def desk_refusal(batch: Batch, rm: str, history: list[dict]) -> ErrorCode | None:
    """Why Khanza's registration desk would refuse this existing patient, or None (both targets: the web
    booking pages check the same). DlgReg: an open inpatient stay (kamar_inap stts_pulang '-'); isPas: an
    earlier visit not yet paid while set_validasi_registrasi.wajib_closing_kasir is 'Yes'."""
    if rm in batch.admitted:
        return ErrorCode.PATIENT_ADMITTED
    if batch.md.wajib_closing_kasir and visits.unpaid(history):
        return ErrorCode.UNPAID_PREVIOUS_VISIT
    return None


def _existing_registration(conn, rm, history, kd_poli, day, booking) -> tuple[str | None, str] | None:
    """The patient's live visit (or, in booking mode, booking) at this clinic that day."""
    visit = visits.live_visit(history, kd_poli, day)
    if visit is not None:
        return visit["no_rawat"], visit["no_reg"]
    if booking:
        held = visits.existing_booking(conn, rm, day)
        if held is not None:
            if held["kd_poli"] == kd_poli and held["status"] in ("Belum", "Terdaftar"):
                return None, held["no_reg"]
            # Khanza allows one booking per patient per day (primary key no_rkm_medis + tanggal_periksa).
            raise Rejected(ErrorCode.BOOKING_SAME_DAY)
    return None


def _insert_visit(conn, reg, patient, first_visit, batch: Batch, clock: datetime) -> tuple[str, str]:
    """Insert with the day's next numbers; a no_rawat the desk took meanwhile makes us re-read the day
    and try again, as the desktop retries its own insert."""
    day, kd_dokter, kd_poli = reg["visit_date"], reg["kd_dokter"], reg["kd_poli"]
    book = batch.days[day]
    for attempt in range(MAX_INSERT_ATTEMPTS):
        no_rawat = book.next_no_rawat()
        no_reg = book.next_no_reg(kd_dokter, kd_poli, **batch.sequence)
        row = visits.visit_row(no_reg=no_reg, no_rawat=no_rawat, visit_date=day, clock=clock,
                               kd_dokter=kd_dokter, patient=patient, kd_poli=kd_poli, kd_pj=reg["kd_pj"],
                               fees=batch.md.active_poli[kd_poli], first_visit_to_poli=first_visit)
        try:
            visits.insert_visit(conn, row, batch.md.caps)
            return no_rawat, no_reg
        except exc.IntegrityError as error:
            if mysql_code(error) != 1062:
                raise
            book = batch.reread_day(conn, day)
    raise NumbersBusy(f"no_rawat taken {MAX_INSERT_ATTEMPTS} times in a row")


def _verify_no_reg(conn: Connection, batch: Batch, created: list[tuple[dict, dict]]) -> None:
    """After commit: if a desk registration took one of our no_reg in its scope, give ours a new one
    now, before the numbers are written back to the website (i.e. before the patient is told)."""
    scope = batch.scope
    for _ in range(MAX_INSERT_ATTEMPTS):
        if not created:
            return
        clashes = []
        with conn.begin():
            shared = numbering.shared_no_regs(conn, {reg["visit_date"] for reg, _ in created}, scope,
                                              **batch.sequence)
        for reg, result in created:
            key = numbering.scope_key(scope, reg["kd_dokter"], reg["kd_poli"])
            if (key, result["no_reg"]) in shared[reg["visit_date"]]:
                clashes.append((reg, result))
        if not clashes:
            return
        for reg, result in clashes:
            day = reg["visit_date"]
            with conn.begin():
                book = batch.reread_day(conn, day)
                new = book.next_no_reg(reg["kd_dokter"], reg["kd_poli"], **batch.sequence)
                if batch.booking:
                    visits.renumber_booking(conn, result["no_rkm_medis"], day, new)
                else:
                    visits.renumber_visit(conn, result["no_rawat"], new)
                ledger.update_no_reg(conn, reg["id"], new)
            book.add(reg["kd_dokter"], reg["kd_poli"], new, booking=batch.booking, new_registration=False)
            log.info("registration %s: queue number taken by the desk meanwhile, renumbered", reg["id"])
            result["no_reg"] = new
        created = clashes  # only the renumbered ones need another look


def predict(engine: Engine, mapped: pd.DataFrame, settings: Settings, planned: Counter) -> list[dict]:
    """A dry run of load_batch, from reads only: already in Khanza (ledger), no schedule, quota full, or
    create. `planned` counts predicted creations per (doctor, clinic, day) across a run's pages."""
    rows: list[dict] = []
    if mapped.empty:
        return rows
    records = mapped.to_dict("records")
    with engine.connect() as conn, conn.begin():
        md = masterdata.load(conn)
        done = ledger.lookup(conn, [r["id"] for r in records])
        booking = settings.khanza_target == "booking"
        scope = numbering.booking_scope(settings) if booking else settings.noreg_scope
        days = numbering.read_days(conn, {r["visit_date"] for r in records}, scope)
    for reg in records:
        key = (reg["kd_dokter"], reg["kd_poli"], reg["visit_date"])
        if reg["id"] in done:
            rows.append({"id": reg["id"], "would": "write back existing Khanza numbers", "error_code": None})
            continue
        # planned: per (doctor, clinic, day); a booking counts the doctor's bookings, so sum over clinics
        extra = sum(n for (d, _, day), n in planned.items() if d == key[0] and day == key[2]) if booking else planned[key]
        refusal = schedule.refusal(md, *key, taken=days[key[2]].taken(key[0], key[1], booking=booking) + extra)
        if refusal is not None:
            rows.append({"id": reg["id"], "would": "reject", "error_code": refusal.value})
        else:
            planned[key] += 1
            rows.append({"id": reg["id"], "would": "create in Khanza", "error_code": None})
    return rows
