from __future__ import annotations

from datetime import date


from khanza_sync import reconciliation
from tasks.limits import khanza_write_slot
from tasks.resources import Resources
from tasks.retry import khanza_retry, step


@step("cancel-requested", retry=khanza_retry)
def cancel_requested(res: Resources, today: date) -> reconciliation.Outcome:
    """Website cancellations carried out in Khanza (the only Khanza writes of reconcile: under the write slot)."""
    with khanza_write_slot(res.settings.khanza_concurrency_limit, res.settings.khanza_slot_lease_seconds):
        return reconciliation.process_cancellations(res.khanza, res.website, today)


@step("compare-with-khanza", retry=khanza_retry)
def compare_with_khanza(res: Resources, today: date, days_back: int, days_ahead: int) -> reconciliation.Outcome:
    """Both sides read (read-only): the website changes and the findings."""
    return reconciliation.compare_with_khanza(res.khanza, res.website, res.settings, today, days_back, days_ahead)
