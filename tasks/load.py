from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from khanza import registration
from khanza_sync.settings import get_settings
from tasks.resources import khanza_engine


@task(name="load-khanza", cache_policy=NO_CACHE, persist_result=False)
def load_into_khanza(mapped: pd.DataFrame) -> pd.DataFrame:
    """Patient + visit + ledger, one transaction per registration. Retried (see tasks.retry) as a
    whole batch on transient errors: the ledger turns already-loaded rows into repairs.
    The caller holds the Khanza write slot (tasks.limits.khanza_write_slot)."""
    settings = get_settings()
    if mapped.empty:
        return pd.DataFrame(columns=registration.OUTCOME_COLUMNS)
    # The wall clock is read per registration (jam_reg as the desktop writes it), not pinned per batch.
    return registration.load_batch(khanza_engine(settings), mapped, settings)


@task(name="repair-from-ledger", cache_policy=NO_CACHE, persist_result=False)
def repair_from_ledger(batch: pd.DataFrame) -> pd.DataFrame:
    """Registrations of this batch already in Khanza (a crashed or cut-off run loaded them): their
    outcomes come from the ledger, before any check could reject them (e.g. a visit date now past)."""
    settings = get_settings()
    return registration.already_loaded(khanza_engine(settings), batch["id"].tolist(), settings)
