from __future__ import annotations

from datetime import datetime, time, timezone


from khanza_sync import artifacts
from tasks.resources import Resources
from website import store
from tasks.retry import step


def hospital_day_start_utc(now_utc: datetime, tz) -> datetime:
    """Midnight of the hospital's current day (HOSPITAL_TIMEZONE), as naive UTC like the website's timestamps."""
    local_day = now_utc.replace(tzinfo=timezone.utc).astimezone(tz).date()
    return datetime.combine(local_day, time(), tz).astimezone(timezone.utc).replace(tzinfo=None)


@step("queue-status")
def publish_queue_status(res: Resources) -> dict[str, int]:
    """The website queue counted now and published as the hospital's `queue-status-<code>` artifact.
    Returns the headline counts (no patient data)."""
    now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
    status = store.queue_status(res.website, now_utc, hospital_day_start_utc(now_utc, res.settings.tz))
    artifacts.publish_queue_status(status, res.settings.hospital_code, res.settings.tz)
    return {"pending": status.pending, "due_now": status.due_now, "rejected_today": status.rejected_today,
            "cancel_requested": status.cancel_requested}
