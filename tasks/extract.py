from __future__ import annotations

from datetime import datetime

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from khanza_sync.settings import get_settings
from tasks.resources import website_engine
from website import store


@task(name="extract", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=5)
def extract_pending(now_utc: datetime, batch_size: int) -> pd.DataFrame:
    """Claim the next batch of due pending registrations (oldest first) under a lease."""
    settings = get_settings()
    return store.claim_pending(website_engine(settings), batch_size, now_utc, settings.claim_lease_seconds)
