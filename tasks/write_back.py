from __future__ import annotations

from datetime import datetime

import pandas as pd

from tasks.resources import Resources
from website import reconcile as wr
from website import store
from tasks.retry import fixed_retry, step


@step("write-back", retry=fixed_retry(3, 5))
def write_back(res: Resources, outcomes: pd.DataFrame, now_utc: datetime) -> dict[str, int]:
    """Statuses and real numbers back to the website, one statement per status."""
    return store.write_outcomes(res.website, outcomes, now_utc)


@step("requeue-rejected")
def requeue_rejected(res: Resources, window: wr.Window, error_codes: list[str] | None, dry_run: bool) -> list[str]:
    """Backfill: the window's rejected rows back to pending (dry run: only their ids). Returns the ids."""
    fn = wr.rejected_ids if dry_run else wr.requeue_rejected
    return fn(res.website, window, res.settings.tz, error_codes)


@step("write-back-changes", retry=fixed_retry(3, 5))
def write_changes(res: Resources, changes: list[dict]) -> int:
    """Reconcile: what Khanza changed, onto the website rows (guarded by the status each change saw)."""
    return wr.apply_changes(res.website, changes)
