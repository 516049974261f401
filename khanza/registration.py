"""One website registration = one Khanza transaction: patient (found or created), visit or booking,
ledger row. A batch shares one connection and holds the pipeline's numbering lock throughout.

Transient database errors (Khanza gone, lock timeouts) propagate so the Prefect task retries the
whole batch; the ledger makes that retry idempotent. Anything else is this registration's own
problem: it is rejected with a code and the batch goes on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, Engine, exc

from error_codes import ErrorCode
from outcomes import COLUMNS as OUTCOME_COLUMNS
from khanza import ledger, masterdata, numbering, patients, schedule, visits
from khanza.db import is_transient, mysql_code
from khanza.locks import numbering_lock
from settings import Settings

log = logging.getLogger(__name__)

MAX_INSERT_ATTEMPTS = 5  # as the desktop's isRegistrasi


class Rejected(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None):
        super().__init__(code.value)
        self.code = code
        self.message = message or code.message


@dataclass
class Context:
    settings: Settings
    md: masterdata.MasterData
    clock: datetime  # now, in the hospital's time zone (naive wall-clock)

    @property
    def today(self) -> date:
        return self.clock.date()

    @property
    def booking(self) -> bool:
        return self.settings.khanza_target == "booking"

    @property
    def sequence(self) -> dict[str, bool]:
        """Which tables share the no_reg sequence we number in (BASENOREG=booking joins both)."""
        shared = self.settings.noreg_shared_with_booking
        return {"visits": shared or not self.booking, "bookings": shared or self.booking}


def outcome(reg_id: str, status: str, kind: str, code: ErrorCode | None = None, message: str | None = None,
            no_rkm_medis=None, no_rawat=None, no_reg=None) -> dict:
    return {"id": reg_id, "status": status, "outcome": kind, "error_code": code.value if code else None,
            "message": message if message is not None else (code.message if code else None),
            "no_rkm_medis": no_rkm_medis, "no_rawat": no_rawat, "no_reg": no_reg}


def from_ledger(entry: dict) -> dict:
    dup = entry["outcome"] == "duplicate"
    return outcome(entry["registration_id"], "synced", "duplicate" if dup else "created",
                   ErrorCode.DUPLICATE_REGISTRATION if dup else None,
                   no_rkm_medis=entry["no_rkm_medis"], no_rawat=entry["no_rawat"], no_reg=entry["no_reg"])


def load_batch(engine: Engine, regs: pd.DataFrame, settings: Settings, clock: datetime) -> pd.DataFrame:
    """Load mapped registrations into Khanza; returns one outcome row per registration."""
    results: list[dict] = []
    with engine.connect() as conn:
        with conn.begin():
            md = masterdata.load(conn)
            done = ledger.lookup(conn, regs["id"].tolist())
        ctx = Context(settings=settings, md=md, clock=clock)
        with numbering_lock(conn, f"khanza_sync:{settings.khanza_db_name}", settings.khanza_lock_timeout_seconds):
            for reg in regs.to_dict("records"):
                if reg["id"] in done:  # already in Khanza: a crashed or retried run is repaired here
                    results.append(from_ledger(done[reg["id"]]))
                    continue
                results.append(_load_one(conn, reg, ctx))
    return pd.DataFrame(results, columns=OUTCOME_COLUMNS)


def _load_one(conn: Connection, reg: dict, ctx: Context) -> dict:
    try:
        with conn.begin():
            result = register(conn, reg, ctx)
        if result["outcome"] == "created":
            _verify_no_reg(conn, reg, result, ctx)
        return result
    except Rejected as rejection:
        return outcome(reg["id"], "rejected", "rejected", rejection.code, rejection.message)
    except patients.PatientConflict:
        return outcome(reg["id"], "rejected", "rejected", ErrorCode.PATIENT_CONFLICT)
    except Exception as error:  # noqa: BLE001 - one bad row must not stop the batch
        if is_transient(error):
            raise
        # Log the class and MySQL error number only: the message text may quote the row's values.
        log.warning("registration %s refused by Khanza: %s (MySQL error %s)", reg["id"],
                    type(error).__name__, mysql_code(error))
        return outcome(reg["id"], "rejected", "rejected", ErrorCode.KHANZA_REJECTED)


def register(conn: Connection, reg: dict, ctx: Context) -> dict:
    """Everything for one registration, inside the caller's transaction."""
    day: date = reg["visit_date"]
    kd_poli, kd_dokter, kd_pj = reg["kd_poli"], reg["kd_dokter"], reg["kd_pj"]
    booking = ctx.booking

    patient = patients.match(conn, reg["nik"], reg.get("bpjs_number"))
    if patient is not None:
        duplicate = _existing_registration(conn, patient["no_rkm_medis"], kd_poli, day, booking)
        if duplicate is not None:
            no_rawat, no_reg = duplicate
            ledger.record(conn, registration_id=reg["id"], outcome="duplicate", target=ctx.settings.khanza_target,
                          no_rkm_medis=patient["no_rkm_medis"], no_rawat=no_rawat, no_reg=no_reg, kd_poli=kd_poli,
                          kd_dokter=kd_dokter, tanggal=day, patient_created=False, created_at=ctx.clock)
            return outcome(reg["id"], "synced", "duplicate", ErrorCode.DUPLICATE_REGISTRATION,
                           no_rkm_medis=patient["no_rkm_medis"], no_rawat=no_rawat, no_reg=no_reg)

    quota = schedule.quota_for(ctx.md, kd_dokter, kd_poli, day)
    if quota is None:
        raise Rejected(ErrorCode.NO_SCHEDULE)
    if visits.registrations_that_day(conn, kd_dokter, kd_poli, day) >= quota:
        raise Rejected(ErrorCode.QUOTA_FULL)

    created = patient is None
    if created:
        patient = patients.create(conn, reg, kd_pj, ctx.md, ctx.today)
    khanza_knows_birth = patient["tgl_lahir"] is not None
    if not khanza_knows_birth:  # Khanza allows it; the form's birth date gives the age at registration
        patient = {**patient, "tgl_lahir": reg["birth_date"]}
    rm = patient["no_rkm_medis"]

    if booking:
        no_reg = numbering.format_no_reg(
            numbering.max_no_reg(conn, day, ctx.settings.noreg_scope, kd_dokter, kd_poli, **ctx.sequence) + 1)
        visits.insert_booking(conn, visits.booking_row(no_reg=no_reg, visit_date=day, clock=ctx.clock,
                                                       no_rkm_medis=rm, kd_dokter=kd_dokter, kd_poli=kd_poli,
                                                       kd_pj=kd_pj))
        no_rawat = None
    else:
        first_visit = created or visits.first_visit_to_poli(conn, rm, kd_poli)
        no_rawat, no_reg = _insert_visit(conn, reg, patient, created, first_visit, ctx)
    ledger.record(conn, registration_id=reg["id"], outcome="created", target=ctx.settings.khanza_target,
                  no_rkm_medis=rm, no_rawat=no_rawat, no_reg=no_reg, kd_poli=kd_poli, kd_dokter=kd_dokter,
                  tanggal=day, patient_created=created, created_at=ctx.clock)
    if not booking and khanza_knows_birth:
        patients.refresh_umur(conn, rm, patient["tgl_lahir"], ctx.today)
    return outcome(reg["id"], "synced", "created", no_rkm_medis=rm, no_rawat=no_rawat, no_reg=no_reg)


def _existing_registration(conn, rm, kd_poli, day, booking) -> tuple[str | None, str] | None:
    """The patient's live visit (or, in booking mode, booking) at this clinic that day."""
    visit = visits.existing_visit(conn, rm, kd_poli, day)
    if visit is not None:
        return visit
    if booking:
        held = visits.existing_booking(conn, rm, day)
        if held is not None:
            if held["kd_poli"] == kd_poli and held["status"] != "Batal":
                return None, held["no_reg"]
            # Khanza allows one booking per patient per day (primary key no_rkm_medis + tanggal_periksa).
            raise Rejected(ErrorCode.BOOKING_SAME_DAY)
    return None


def _insert_visit(conn, reg, patient, created, first_visit, ctx) -> tuple[str, str]:
    """Allocate no_rawat/no_reg and insert; a no_rawat taken by the desk meanwhile is retried like the desktop."""
    day, kd_dokter, kd_poli = reg["visit_date"], reg["kd_dokter"], reg["kd_poli"]
    for attempt in range(MAX_INSERT_ATTEMPTS):
        no_rawat = numbering.next_no_rawat(conn, day)
        no_reg = numbering.format_no_reg(
            numbering.max_no_reg(conn, day, ctx.settings.noreg_scope, kd_dokter, kd_poli, **ctx.sequence) + 1)
        row = visits.visit_row(no_reg=no_reg, no_rawat=no_rawat, visit_date=day, clock=ctx.clock,
                               kd_dokter=kd_dokter, patient=patient, kd_poli=kd_poli, kd_pj=reg["kd_pj"],
                               fees=ctx.md.active_poli[kd_poli], new_patient=created,
                               first_visit_to_poli=first_visit)
        try:
            visits.insert_visit(conn, row)
            return no_rawat, no_reg
        except exc.IntegrityError as error:
            if mysql_code(error) != 1062 or attempt == MAX_INSERT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _verify_no_reg(conn: Connection, reg: dict, result: dict, ctx: Context) -> None:
    """After commit: if a desk registration took the same no_reg in this scope, take a new one now,
    before the number is written back to the website (i.e. before the patient is told)."""
    day, kd_dokter, kd_poli = reg["visit_date"], reg["kd_dokter"], reg["kd_poli"]
    scope = ctx.settings.noreg_scope
    for _ in range(MAX_INSERT_ATTEMPTS):
        with conn.begin():
            if numbering.no_reg_holders(conn, day, scope, kd_dokter, kd_poli, result["no_reg"], **ctx.sequence) <= 1:
                return
            new = numbering.format_no_reg(
                numbering.max_no_reg(conn, day, scope, kd_dokter, kd_poli, **ctx.sequence) + 1)
            if ctx.booking:
                visits.renumber_booking(conn, result["no_rkm_medis"], day, new)
            else:
                visits.renumber_visit(conn, result["no_rawat"], new)
            ledger.update_no_reg(conn, reg["id"], new)
        log.info("registration %s: queue number taken by the desk meanwhile, renumbered", reg["id"])
        result["no_reg"] = new
