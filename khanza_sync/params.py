"""The types of the flows' parameters, shared by the flows (the Prefect UI renders them as a form with
choices and help) and by the `khanza-sync` command line (its choices and help come from here too)."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from khanza_sync.error_codes import ErrorCode

WindowBy = Literal["visit", "submitted"]
RequeueStatus = Literal["pending", "rejected"]

BatchSize = Annotated[int, Field(ge=1, le=100_000)]
MaxBatches = Annotated[int, Field(ge=1)]
DaysBack = Annotated[int, Field(ge=0, le=366)]
DaysAhead = Annotated[int, Field(ge=0, le=366)]

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
    "dry_run": "Only report what would happen (artifact backfill-dry-run); nothing is written anywhere.",
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
