from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from khanza_sync import publishing
from tasks.resources import Resources


@task(name="publish-master-data", cache_policy=NO_CACHE, persist_result=False)
def publish_master_data(res: Resources, today: date, days_ahead: int):
    """Khanza's master data -> the website tables: (rows written per table, mapping problems, quota)."""
    return publishing.publish(res.khanza, res.website, res.settings, today, days_ahead)
