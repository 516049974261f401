from __future__ import annotations

import logging
from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from khanza_sync import publishing
from tasks.resources import Resources, timed

log = logging.getLogger(__name__)


@task(name="publish-master-data", cache_policy=NO_CACHE, persist_result=False)
def publish_master_data(res: Resources, today: date, days_ahead: int):
    """Khanza's master data -> the website tables: (rows written per table, mapping problems, quota)."""
    return publishing.publish(res.khanza, res.website, res.settings, today, days_ahead)


@task(name="publish-quota", cache_policy=NO_CACHE, persist_result=False)
def publish_quota(res: Resources, days: set[date]) -> int:
    """The website's remaining quota of `days`, as the loader decides it (khanza_sync.publishing.publish_quota)."""
    return publishing.publish_quota(res.khanza, res.website, res.settings, days)


def refresh_quota(res: Resources, days: set[date]) -> None:
    """Refresh the website's remaining quota of `days` (nothing when empty). Not being able to is logged and
    left to the next burst or reconcile run: it never fails the run that registered people."""
    if not days:
        return
    try:
        timed(publish_quota, res.settings)(res, days)
    except Exception as error:  # noqa: BLE001 - the quota is a courtesy to the website, the sync is done
        log.warning("remaining quota not refreshed on the website (%s); the next burst or reconcile run does it",
                    type(error).__name__)
