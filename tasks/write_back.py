from __future__ import annotations

from datetime import datetime

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from khanza_sync.settings import get_settings
from tasks.resources import website_engine
from website import store


@task(name="write-back", cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=5)
def write_back(outcomes: pd.DataFrame, now_utc: datetime) -> dict[str, int]:
    """Statuses and real numbers back to the website, one statement per status."""
    return store.write_outcomes(website_engine(get_settings()), outcomes, now_utc)
