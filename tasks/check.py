from __future__ import annotations

from datetime import datetime

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

import data_checks
from khanza_sync.settings import Settings


@task(name="data-checks", cache_policy=NO_CACHE, persist_result=False)
def check_registrations(settings: Settings, batch: pd.DataFrame, now_local: datetime
                        ) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Normalise and validate with the Great Expectations suite: (valid, rejections, per-rule report)."""
    return data_checks.check(batch, settings, now_local)
