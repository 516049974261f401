"""Follow mode: sync each website registration within seconds of its arrival, through the same
check -> map -> load -> write-back code as the scheduled sync (flows.sync_registrations.sync_batches).

    stats = follow(res, stop=event, until=time.monotonic() + 3600)

The loop, until `stop` is set or the monotonic deadline `until` passes:
1. `due_now`: is a pending row due? One indexed EXISTS on the website database (website/notify.py).
2. If so, a *burst*: take the Khanza write slot (the strict Prefect limit), sync batches (claim, ledger repair,
   checks, map, load, write back: `sync_batches`) until nothing is due, then release the slot. A burst gives
   the slot back after HOLD_MAX_SECONDS even while registrations keep arriving, so a scheduled sync run (the
   safety net) waiting for it gets its turn; the MariaDB numbering lock serialises the batches themselves.
3. If not, wait: on PostgreSQL with the trigger, blocked on the LISTEN socket until a notification, the
   earliest retry time of a deferred row, or SAFETY_SECONDS; elsewhere FOLLOW_POLL_SECONDS.

Idle, nothing is created: no task run, no artifact, no Prefect API call; a wake-up that finds nothing due
costs one indexed query (and the LISTEN connection's `SELECT 1` every few seconds, website/notify.py).

Khanza offline: the batch's rows are deferred as in the scheduled sync (KHANZA_UNREACHABLE, the usual
backoff) and every other due row with them (`defer_others`). Then, every PROBE_SECONDS, the loop asks Khanza
whether it answers (`khanza.db.answers`: connect + SELECT 1, no batch, no write slot); rows that become due
meanwhile are deferred without a batch. A burst also starts with that question (one round trip), so a
Khanza already away when registrations arrive fails no task: they are deferred at once. The first probe that answers starts a burst that first makes every
row waiting only for Khanza due (`store.resume_waiting`, under the write slot) and syncs them: a Khanza back
after a blip costs seconds, not the rows' backoff. In follow mode a batch retries Khanza once, after
FOLLOW_RETRY_DELAY (tasks.retry): the probe, not a long retry sleep, waits out a longer outage.
Website errors (restart, dropped connection) back off 1 s .. 5 s and the loop goes on; the LISTEN
connection notices a dead or silent socket in seconds and reconnects by itself (website/notify.py).

The Prefect flow (flows/follow_registrations.py) runs this for one clock hour and is renamed with its counts;
`khanza-sync follow` runs such hourly flow runs one after another until stopped (SIGINT/SIGTERM: `STOP`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from khanza import db as khanza_db
from khanza_sync import outcomes, reporting
from khanza_sync.error_codes import ErrorCode

log = logging.getLogger(__name__)

STOP = threading.Event()  # set by `khanza-sync follow` on SIGINT/SIGTERM: finish the batch, end the run, exit
SAFETY_SECONDS = 60.0  # with LISTEN: re-check this often anyway (and ping the LISTEN connection)
HOLD_MAX_SECONDS = 15.0  # a burst holds the Khanza write slot at most this long before giving it back
WEBSITE_BACKOFF_MAX = 5.0  # a website back after an outage is seen again within this long
PROBE_SECONDS = 2.0  # while Khanza is offline, ask it this often whether it answers (connect + SELECT 1)
FOLLOW_RETRIES, FOLLOW_RETRY_DELAY = 1, 0.5  # a batch's Khanza retries (at most the settings'): a blip, not an outage
MIN_RUN_SECONDS = 300  # an hourly run started within 5 minutes of the hour follows until the hour after


@dataclass
class FollowStats:
    summary: outcomes.RunSummary = field(default_factory=outcomes.RunSummary)
    checks: list = field(default_factory=list)  # data-check reports, one per batch (artifact sync-data-checks)
    mode: str = ""  # listen | poll
    wakeups: int = 0  # waits that ended with a notification
    checks_made: int = 0  # due_now queries
    bursts: int = 0
    offline_episodes: int = 0
    khanza_offline: bool = False  # at the end
    errors: list[str] = field(default_factory=list)  # pipeline faults (exception class names)
    website_errors: int = 0
    probes: int = 0  # Khanza asked whether it answers (before a burst; every PROBE_SECONDS while offline)
    resumed: int = 0  # rows made due at once when Khanza answered again
    reconnects: int = 0  # LISTEN connection re-established (website database restart, dropped link)

    def line(self) -> str:
        text = self.summary.line()
        if self.offline_episodes:
            text += f" | Khanza offline {self.offline_episodes}x" + (" (still)" if self.khanza_offline else "")
        if self.errors:
            text += f" | {len(self.errors)} pipeline errors ({', '.join(sorted(set(self.errors)))})"
        return text


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def follow(res, *, stop: threading.Event | None = None, until: float | None = None, batch_size: int | None = None,
           poll_seconds: float | None = None, logger: logging.Logger | logging.LoggerAdapter | None = None,
           on_burst: Callable[[FollowStats], None] | None = None, slot=None) -> FollowStats:
    """Follow the website until `stop` is set or `until` (time.monotonic()) passes. Returns the counts.
    `res`: tasks.resources.Resources. `slot(name)`: the Khanza write slot (default tasks.limits.khanza_write_slot)."""
    from flows.sync_registrations import defer_others
    from website import notify

    settings = res.settings
    stop = stop or threading.Event()
    logger = logger or log
    poll = poll_seconds or settings.follow_poll_seconds
    stats = FollowStats()
    waiter = notify.open_waiter(res.website, poll, stop)
    stats.mode = waiter.mode
    logger.info("following the website (%s)", "LISTEN/NOTIFY" if waiter.mode == "listen" else f"polling every {poll:g} s")
    backoff = 1.0
    website_down = False
    resume = False  # the last probe answered: the next burst first makes rows waiting for Khanza due
    next_probe = 0.0

    def remaining() -> float:
        return float("inf") if until is None else until - time.monotonic()

    def probe() -> bool:
        nonlocal next_probe
        next_probe = time.monotonic() + PROBE_SECONDS
        stats.probes += 1
        try:
            return khanza_db.answers(res.khanza)
        except Exception as error:  # noqa: BLE001 - it answers, but not as it should (e.g. a login refused)
            logger.warning("Khanza answers with an error (%s); still waiting", type(error).__name__)
            return False

    try:
        while not stop.is_set() and remaining() > 0:
            if stats.khanza_offline and not resume and time.monotonic() >= next_probe:
                resume = probe()
            try:
                stats.checks_made += 1
                due = notify.due_now(res.website, _utc_now())
                nxt = notify.next_due(res.website) if not due and waiter.mode == "listen" else None
                if due and not resume:
                    if probe():  # a burst starts only when Khanza answers (so an outage fails no task)
                        resume = stats.khanza_offline  # back: the rows that waited for it come along
                    else:  # away: these rows wait for it like the others, without a batch and its retries
                        _went_offline(stats, logger)
                        defer_others(res, _utc_now())
                        due = False
                if website_down:
                    logger.info("website database answers again")
                website_down, backoff = False, 1.0
            except Exception as error:  # noqa: BLE001 - website away: wait, retry, never exit
                stats.website_errors += 1
                (logger.debug if website_down else logger.warning)(
                    "website database unreachable (%s); retrying every %.0f s at most", type(error).__name__,
                    WEBSITE_BACKOFF_MAX)
                website_down = True
                stop.wait(min(backoff, max(0.0, remaining())))
                backoff = min(backoff * 2, WEBSITE_BACKOFF_MAX)
                continue
            if due or resume:
                try:
                    _burst(res, stats, batch_size or settings.batch_size, stop, logger, slot, resume)
                except Exception as error:  # noqa: BLE001 - our fault or the website's: the rows wait, we go on
                    if _website_blip(error):  # a connection lost mid-burst: the website's fault, not a pipeline one
                        stats.website_errors += 1
                        logger.warning("website database connection lost during a burst (%s); going on",
                                       type(error).__name__)
                    else:
                        stats.errors.append(type(error).__name__)
                        logger.error("batch failed (%s); its registrations wait with their backoff",
                                     type(error).__name__)
                    stop.wait(min(backoff, max(0.0, remaining())))
                    backoff = min(backoff * 2, WEBSITE_BACKOFF_MAX)
                resume = False
                stats.summary.khanza_unreachable = stats.khanza_offline  # sync_batches sets it; follow clears it too
                if on_burst:
                    on_burst(stats)
                continue
            limit = max(0.0, remaining())
            if stats.khanza_offline:  # wake up for the next probe
                limit = min(limit, max(0.05, next_probe - time.monotonic()))
            if waiter.mode == "listen":
                timeout = SAFETY_SECONDS
                if nxt is not None:
                    timeout = min(timeout, max(0.05, (nxt - _utc_now()).total_seconds()))
                timeout = min(timeout, limit)
                if waiter.wait(timeout):
                    stats.wakeups += 1
                elif timeout >= SAFETY_SECONDS:
                    waiter.ping()
            else:
                waiter.wait(min(poll, limit))
    finally:
        stats.reconnects = max(0, getattr(waiter, "connects", 1) - 1)
        waiter.close()
    stats.summary.khanza_unreachable = stats.khanza_offline
    return stats


def _burst(res, stats: FollowStats, batch_size: int, stop: threading.Event, logger, slot, resume: bool = False
           ) -> None:
    """Batches under the Khanza write slot until nothing is due (or HOLD_MAX_SECONDS): the scheduled sync's loop.
    `resume`: Khanza answered a probe after being offline: rows waiting only for it are made due first."""
    from flows.sync_registrations import defer_others, sync_batches
    from tasks.retry import capped
    from website import store

    if slot is None:
        from tasks.limits import khanza_write_slot as slot
    settings = res.settings
    summary = stats.summary
    stats.bursts += 1
    retry = capped(settings, retries=FOLLOW_RETRIES, delay=FOLLOW_RETRY_DELAY)

    def claim(now: datetime, size: int):  # the extract task's call, without a task run per claim
        return store.claim_pending(res.website, size, now, settings.claim_lease_seconds)

    def after_batch(result) -> None:
        logger.info("batch %d: %s", summary.batches, reporting.batch_line(result))

    held_until = time.monotonic() + HOLD_MAX_SECONDS
    with slot(settings.khanza_concurrency_limit):
        if resume:  # under the slot: no other run holds a lease on these rows
            waiting = store.resume_waiting(res.website, _utc_now(), ErrorCode.KHANZA_UNREACHABLE.value)
            stats.resumed += waiting
            logger.info("Khanza answers again: %d registrations that waited for it are synced now", waiting)
        while True:
            before = summary.batches
            offline_at = sync_batches(res, claim, summary, stats.checks, batch_size, summary.batches + 1,
                                      after_batch=after_batch, retry=retry)
            if offline_at:
                summary.by_outcome["deferred"] += defer_others(res, offline_at)
                _went_offline(stats, logger)
                return
            if stats.khanza_offline:  # a batch got through (or the probe answered and nothing was due)
                logger.info("Khanza is back")
                stats.khanza_offline = False
            if summary.batches == before:  # nothing was due any more
                return
            if stop.is_set() or time.monotonic() > held_until:
                return


def _website_blip(error: BaseException) -> bool:
    from khanza_sync.checkup import database_of

    return database_of(error) == "website" and khanza_db.is_transient(error)


def _went_offline(stats: FollowStats, logger) -> None:
    if not stats.khanza_offline:
        stats.offline_episodes += 1
        logger.warning("Khanza offline: registrations wait (KHANZA_UNREACHABLE); asking Khanza every %.0f s "
                       "whether it answers again", PROBE_SECONDS)
    stats.khanza_offline = True


# ---------------------------------------------------------------- the hourly flow run: window and names


@dataclass(frozen=True)
class Window:
    started: datetime  # hospital time
    ends: datetime
    until: float  # time.monotonic() deadline


def hour_window(tz, seconds: int | None = None, now: datetime | None = None) -> Window:
    """From now until the next full hour (hospital time; the hour after if that is under 5 minutes away),
    or `seconds` if shorter."""
    now = now or datetime.now(tz).replace(tzinfo=None)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if (end - now).total_seconds() < MIN_RUN_SECONDS:
        end += timedelta(hours=1)
    length = (end - now).total_seconds()
    if seconds is not None and seconds < length:
        length, end = seconds, now + timedelta(seconds=seconds)
    return Window(now, end, time.monotonic() + length)


def run_name(stats: FollowStats, window: Window, *, running: bool = False) -> str:
    """`follow 2026-11-27 08:00–09:00 · 12 created, 0 duplicate, 2 rejected` (as sync runs are named)."""
    span = f"{window.started:%Y-%m-%d %H:%M}–{window.ends:%H:%M}"
    summary = stats.summary
    if not summary.total:
        tail = "following" if running else "nothing arrived"
        if stats.khanza_offline:
            tail += " · Khanza offline"
    else:
        tail = reporting.sync_run_name(summary, "").split(" · ", 1)[1]
        if stats.offline_episodes and not stats.khanza_offline:
            tail += f" · Khanza was offline {stats.offline_episodes}x"
        if running:
            tail += " · following"
    if stats.errors:
        tail += f" · {len(stats.errors)} errors"
    return f"follow {span} · {tail}"


class ThrottledNamer:
    """Renames the running flow run with its counts so far, at most every `every` seconds (one API call)."""

    def __init__(self, window: Window, rename: Callable[[str], None], every: float = 30.0):
        self.window, self.rename, self.every = window, rename, every
        self._last = 0.0
        self._shown = ""

    def __call__(self, stats: FollowStats) -> None:
        if time.monotonic() - self._last < self.every:
            return
        name = run_name(stats, self.window, running=True)
        if name != self._shown:
            self.rename(name)
            self._shown = name
        self._last = time.monotonic()
