from __future__ import annotations

from datetime import datetime

import pandas as pd

import data_checks
from khanza_sync.settings import Settings
from tasks.retry import step


@step("data-checks")
def check_registrations(settings: Settings, batch: pd.DataFrame, now_local: datetime
                        ) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Normalise and validate with the Great Expectations suite: (valid, rejections, per-rule report)."""
    return data_checks.check(batch, settings, now_local)
