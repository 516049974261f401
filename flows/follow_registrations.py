"""Follow mode as a Prefect flow: one run per clock hour (hospital time) that syncs each registration within
seconds of its arrival, with its batches as task runs, renamed with its counts like the sync runs.

    khanza-sync follow [--batch-size N]        (or: python -m flows.sync_registrations --follow)

runs these hourly flow runs one after another until stopped; the deployment starts one each hour. The loop
itself is khanza_sync/follow.py; the batches are flows.sync_registrations.sync_batches (the same tasks).
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed
from pydantic import Field

from flows import offline_state
from khanza_sync import artifacts, follow
from khanza_sync.params import BatchSize
from khanza_sync.settings import load_settings
from tasks.queue_status import publish_queue_status
from tasks.resources import open_resources, timed

FollowSeconds = Annotated[int, Field(ge=1, le=7200)]


@flow(name="follow-registrations", persist_result=False)
def follow_registrations(batch_size: BatchSize | None = None, seconds: FollowSeconds | None = None):
    """Follow the website until the next full hour: each registration synced within seconds of its arrival.

    Args:
        batch_size: Registrations per batch (one set of tasks per batch). Empty: the BATCH_SIZE setting.
        seconds: Follow for at most this many seconds. Empty: until the next full hour (hospital time).
    """
    settings = load_settings()
    res = open_resources(settings)
    logger = get_run_logger()
    window = follow.hour_window(settings.tz, seconds)
    artifacts.name_run(follow.run_name(follow.FollowStats(), window, running=True))
    stats = follow.follow(res, stop=follow.STOP, until=window.until, batch_size=batch_size, logger=logger,
                          on_burst=follow.ThrottledNamer(window, artifacts.name_run))
    if stats.summary.total:  # an hour in which nothing arrived leaves no artifact
        artifacts.publish_sync(stats.summary, stats.checks, settings.hospital_code)
        timed(publish_queue_status, settings)(res)
    artifacts.name_run(follow.run_name(stats, window))
    line = stats.line()
    logger.info(line)
    data = {**stats.summary.as_dict(), "mode": stats.mode, "bursts": stats.bursts, "errors": len(stats.errors)}
    if stats.errors:
        return Failed(message=line, data=data)
    if stats.khanza_offline:  # still offline when the hour ended
        return offline_state(line, data=data)
    return Completed(message=line, data=data)
