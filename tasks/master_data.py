from __future__ import annotations

from datetime import date


from khanza_sync import publishing
from tasks.resources import Resources
from tasks.retry import khanza_retry, step


@step("publish-master-data", retry=khanza_retry)
def publish_master_data(res: Resources, today: date, days_ahead: int):
    """Khanza's master data -> the website tables: (rows written per table, mapping problems, quota)."""
    return publishing.publish(res.khanza, res.website, res.settings, today, days_ahead)
