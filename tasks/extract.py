from __future__ import annotations

from datetime import datetime

import pandas as pd

from tasks.resources import Resources
from website import reconcile as wr
from website import store
from tasks.retry import fixed_retry, step


@step("extract", retry=fixed_retry(2, 5))
def extract_pending(res: Resources, now_utc: datetime, batch_size: int) -> pd.DataFrame:
    """Claim the next batch of due pending registrations (oldest first) under a lease."""
    return store.claim_pending(res.website, batch_size, now_utc, res.settings.claim_lease_seconds)


@step("extract-window", retry=fixed_retry(2, 5))
def extract_window(res: Resources, window: wr.Window, now_utc: datetime, batch_size: int) -> pd.DataFrame:
    """Backfill: claim the next batch of due pending rows inside the window, under the same lease."""
    return wr.claim_window(res.website, window, res.settings.tz, batch_size, now_utc, res.settings.claim_lease_seconds)


@step("read-window")
def read_window(res: Resources, window: wr.Window, statuses: list[str], now_utc: datetime, batch_size: int,
                offset: int) -> pd.DataFrame:
    """Backfill dry run: one page of the rows the backfill would take, read-only."""
    return wr.select_window(res.website, window, res.settings.tz, statuses, now_utc, batch_size, offset)
