"""The types of the flows' parameters, shared by the flows (the Prefect UI renders them as a form with
choices and help) and by the `khanza-sync` command line (its choices and help come from here too)."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints

from khanza_sync.error_codes import ErrorCode

WindowBy = Literal["visit", "submitted"]
RequeueStatus = Literal["pending", "rejected"]

BatchSize = Annotated[int, Field(ge=1, le=100_000)]
MaxBatches = Annotated[int, Field(ge=1)]
DaysBack = Annotated[int, Field(ge=0, le=366)]
DaysAhead = Annotated[int, Field(ge=0, le=366)]

# Fixing single registrations (flows/fix_registrations.py)
MAX_FIX_IDS = 100
RegistrationId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
RegistrationIds = Annotated[list[RegistrationId], Field(min_length=1, max_length=MAX_FIX_IDS)]
ConflictDecision = Literal["link_patient", "new_patient"]
# Empty for new_patient: a plain text box in the UI form (an Optional would show a str/None switch)
NoRkmMedis = Annotated[str, StringConstraints(strip_whitespace=True, max_length=15)]
DecidedBy = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]

# One text per parameter: the Prefect UI's help (through `documented`) and the CLI's --help.
HELP = {
    "batch_size": "Registrations per batch (one set of tasks per batch). Empty: the BATCH_SIZE setting.",
    "max_batches": "Stop after this many batches. Empty: until nothing is due.",
    "days_back": "Reconcile synced rows whose visit date is up to this many days back.",
    "days_ahead": "Days ahead to cover (reconcile: visit dates compared; master data: quota published). "
                  "Empty: the BOOKING_MAX_DAYS_AHEAD setting.",
    "start": "First day of the window (YYYY-MM-DD), inclusive.",
    "end": "Last day of the window (YYYY-MM-DD), inclusive.",
    "by": "visit: the window is of visit dates; submitted: of the days registrations were submitted (hospital time).",
    "status": "rejected: first put the window's rejected rows back to pending (after a mapping fix); "
              "pending or empty: only rows already pending.",
    "error_codes": "With status=rejected: only rows rejected with these codes. Empty: every code.",
    "dry_run": "Only report what would happen (the run's dry-run artifact); nothing is written anywhere.",
    "registration_ids": f"Website registration ids (1 to {MAX_FIX_IDS}) to put back to pending and sync now: "
                        "rejected rows (any code, TOO_MANY_ATTEMPTS too: attempts reset) and deferred pending rows. "
                        "Synced and cancelled rows are refused, each with its reason; the rest go on.",
    "registration_id": "The website registration id rejected with PATIENT_CONFLICT.",
    "decision": "link_patient: the registration belongs to the Khanza patient no_rkm_medis (checked: it exists; "
                "what disagrees is shown by field name). new_patient: create a new patient although the NIK or "
                "BPJS card matches others. Recorded, then synced now.",
    "no_rkm_medis": "With link_patient: the Khanza medical-record number staff chose. Empty for new_patient.",
    "decided_by": "Who decides (staff name or user id): recorded in the audit table khanza_sync_decisions.",
    "reason": "Why (e.g. 'NIK corrected after a call with the patient'): recorded in the audit. Never patient data.",
}


def documented(fn):
    """Append an `Args:` section built from HELP to a flow function's docstring (put it under @flow):
    Prefect reads parameter help from the docstring, so the UI form and the CLI say the same thing."""
    import inspect

    names = [n for n in inspect.signature(fn).parameters if n in HELP]
    lines = [inspect.cleandoc(fn.__doc__ or ""), "", "Args:"] + [f"    {n}: {HELP[n]}" for n in names]
    fn.__doc__ = "\n".join(lines)
    return fn


def choices(literal) -> list[str]:
    """The values of a Literal type, for argparse `choices`."""
    return list(get_args(literal))


def bounds(annotated) -> tuple[int | None, int | None]:
    """(ge, le) of an Annotated int, so the CLI refuses what the flow would refuse."""
    lo = hi = None
    for meta in getattr(annotated, "__metadata__", ()):
        for item in getattr(meta, "metadata", ()):
            lo = getattr(item, "ge", lo)
            hi = getattr(item, "le", hi)
    return lo, hi


ERROR_CODE_CHOICES = [code.value for code in ErrorCode]
