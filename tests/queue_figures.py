"""The queue-status figures worked out in plain Python from website rows (dicts as the tests seed them or read
them back), for tests to compare with website.store.queue_status and the published artifact; and the artifact's
markdown parsed back into tables."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

import pandas as pd

TMA = "TOO_MANY_ATTEMPTS"


def _time(value) -> datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).to_pydatetime()


def expected(rows: list[dict], now: datetime, day_start: datetime) -> dict:
    """What the queue holds at `now` (naive UTC): a row is due without a retry time or once it has come;
    rejected today means its synced_at is at or after `day_start`."""
    pending = [r for r in rows if r["status"] == "pending"]
    waiting = [r for r in pending if _time(r.get("next_attempt_at")) is not None and _time(r["next_attempt_at"]) > now]
    rejected = [r for r in rows if r["status"] == "rejected"]
    today = [r for r in rejected if _time(r.get("synced_at")) is not None and _time(r["synced_at"]) >= day_start]
    return {
        "pending": len(pending),
        "due_now": len(pending) - len(waiting),
        "deferred_by_code": dict(Counter(r.get("error_code") for r in waiting)),
        "oldest_pending_created_at": min((_time(r["created_at"]) for r in pending), default=None),
        "rejected_today_by_code": dict(Counter(r.get("error_code") for r in today)),
        "too_many_attempts_rejected": sum(r.get("error_code") == TMA for r in rejected),
        "too_many_attempts_rejected_today": sum(r.get("error_code") == TMA for r in today),
        "too_many_attempts_pending": sum(r.get("error_code") == TMA for r in pending),
        "cancel_requested": sum(r["status"] == "cancel_requested" for r in rows),
    }


def tables(markdown: str) -> list[dict[str, str]]:
    """Each markdown table of the artifact as {first column: second column}, in order."""
    found, current = [], None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if current is None:  # a header row starts a table
            current = {}
            found.append(current)
        elif not set(cells[0]) <= {"-"}:
            current[cells[0]] = cells[1]
    return found


def rows_as_dicts(frame: pd.DataFrame) -> list[dict]:
    """Website rows read back (store.fetch_rows) as dicts with None for NULL."""
    return [{k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]
