from __future__ import annotations

import pandas as pd

from khanza import registration
from khanza_sync.outcomes import WAIT_CODES
from tasks.resources import Resources
from tasks.retry import khanza_retry, step


@step("load-khanza", retry=khanza_retry)
def load_into_khanza(res: Resources, mapped: pd.DataFrame) -> pd.DataFrame:
    """Patient + visit + ledger, one transaction per registration. Retried (see tasks.retry) as a
    whole batch on transient errors: the ledger turns already-loaded rows into repairs.
    The caller holds the Khanza write slot (tasks.limits.khanza_write_slot)."""
    if mapped.empty:
        return pd.DataFrame(columns=registration.OUTCOME_COLUMNS)
    # The wall clock is read per registration (jam_reg as the desktop writes it), not pinned per batch.
    return registration.load_batch(res.khanza, mapped, res.settings)


@step("repair-from-ledger", retry=khanza_retry)
def repair_from_ledger(res: Resources, batch: pd.DataFrame) -> pd.DataFrame:
    """Registrations of this batch already in Khanza (a crashed or cut-off run loaded them): their
    outcomes come from the ledger, before any check could reject them (e.g. a visit date now past)."""
    return registration.already_loaded(res.khanza, batch["id"].tolist(), res.settings)


@step("preview-load")
def preview_load(res: Resources, mapped: pd.DataFrame, rejections: pd.DataFrame, planned) -> pd.DataFrame:
    """What loading would do, from reads only (khanza.registration.predict): for backfill dry runs."""
    rows = [{"id": r["id"], "would": "wait" if r["error_code"] in WAIT_CODES else "reject", "error_code": r["error_code"]}
            for r in rejections.to_dict("records")]
    rows += registration.predict(res.khanza, mapped, res.settings, planned)
    return pd.DataFrame(rows, columns=["id", "would", "error_code"])
