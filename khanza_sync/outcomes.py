"""What happened to each registration in a run, and the run's summary (counts only, never patient data).

Outcome rows: id, status (synced | rejected | deferred), outcome (created | duplicate | rejected |
deferred), error_code, message, no_rkm_medis, no_rawat, no_reg, next_attempt_at; regions_added (region rows a
created registration added to Khanza) and findings (what disagreed with Khanza's record and was kept as Khanza
has it: field names only).
"""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

import pandas as pd

from khanza_sync.error_codes import ErrorCode
from khanza_sync.settings import Settings

COLUMNS = ["id", "status", "outcome", "error_code", "message", "no_rkm_medis", "no_rawat", "no_reg",
           "next_attempt_at", "regions_added", "findings"]


# Codes the data checks give a row that is not the registration's fault and must not reject it: it waits
# (stays pending, with the usual backoff: `with_backoff`) until what is wrong on the website side passes.
WAIT_CODES = frozenset({ErrorCode.CREATED_AT_IN_FUTURE.value})


def rejected(rejections: pd.DataFrame) -> pd.DataFrame:
    """Rejections from checks or mapping (id, error_code, message) as outcome rows; a row with one of the
    WAIT_CODES is deferred instead (pending, at the `next_attempt_at` the checks gave it, else the usual
    backoff: `with_backoff`), never rejected."""
    out = rejections.reindex(columns=COLUMNS).astype("object")
    waits = out["error_code"].isin(WAIT_CODES)
    out["status"] = "rejected"
    out["outcome"] = "rejected"
    out.loc[waits, ["status", "outcome"]] = "deferred"
    out.loc[~waits, "next_attempt_at"] = None
    return out


JITTER = (0.75, 1.0)  # a backoff delay is multiplied by a uniform draw from this range


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """The delay before jitter: base * 2^(attempts-1) (base at least 1 s), capped at DEFERRAL_MAX_SECONDS."""
    base = max(settings.khanza_retry_delay_seconds, 1.0)
    return min(base * 2 ** max(attempts - 1, 0), settings.deferral_max_seconds)


def next_attempt(attempts: int, now: datetime, settings: Settings, *, rng: random.Random | None = None) -> datetime:
    """Per-registration backoff: base * 2^(attempts-1), capped, with jitter so a backlog spreads out.

    `now` is the clock (nothing here reads it); `rng` the random source (default: the `random` module)."""
    draw = (rng or random).uniform(*JITTER)
    return now + timedelta(seconds=backoff_seconds(attempts, settings) * draw)


def too_many_attempts(attempts, settings: Settings) -> bool:
    """A registration that failed transiently this often goes to staff for review (TOO_MANY_ATTEMPTS).
    `attempts` as stored on the website row (missing counts as 0)."""
    return int(attempts or 0) >= settings.max_transient_attempts


def deferred(batch: pd.DataFrame, now: datetime, settings: Settings,
             code: ErrorCode = ErrorCode.KHANZA_UNREACHABLE, *, rng: random.Random | None = None) -> pd.DataFrame:
    """Khanza could not be reached for these rows: they stay pending and come back later.

    They are never rejected here, even after MAX_TRANSIENT_ATTEMPTS: with Khanza away nobody can tell
    whether an earlier attempt already committed them, so a row at the limit is flagged for review
    (TOO_MANY_ATTEMPTS, still pending, at the longest backoff) and the ledger decides when Khanza is back.
    Waiting is bounded anyway: once the visit date has passed the data checks reject it."""
    rows = []
    for reg_id, attempts in zip(batch["id"], batch["attempts"]):
        attempts = int(attempts or 0)
        if too_many_attempts(attempts, settings):
            rows.append({"id": reg_id, "status": "deferred", "outcome": "deferred",
                         "error_code": ErrorCode.TOO_MANY_ATTEMPTS.value,
                         "message": ErrorCode.TOO_MANY_ATTEMPTS.website_message,
                         "next_attempt_at": now + timedelta(seconds=settings.deferral_max_seconds)})
        else:
            rows.append({"id": reg_id, "status": "deferred", "outcome": "deferred", "error_code": code.value,
                         "message": code.website_message, "next_attempt_at": next_attempt(attempts, now, settings, rng=rng)})
    return pd.DataFrame(rows, columns=COLUMNS)


def with_backoff(result: pd.DataFrame, attempts: pd.Series, now: datetime, settings: Settings, *,
                 rng: random.Random | None = None) -> pd.DataFrame:
    """Give deferred rows that have no retry time yet (e.g. KHANZA_BUSY from the loader) their backoff."""
    due = (result["status"] == "deferred") & result["next_attempt_at"].isna()
    if due.any():
        tries = result.loc[due, "id"].map(attempts).fillna(0).astype(int)
        result.loc[due, "next_attempt_at"] = [next_attempt(n, now, settings, rng=rng) for n in tries]
    return result


def combine(*frames: pd.DataFrame) -> pd.DataFrame:
    frames = [f.reindex(columns=COLUMNS).astype("object") for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


class RunSummary:
    """Counts by outcome and by error code across the batches of one run."""

    def __init__(self) -> None:
        self.by_outcome: Counter[str] = Counter()
        self.by_error: Counter[str] = Counter()
        self.batches = 0
        self.khanza_unreachable = False
        # The website's clock or time zone is off: registrations whose created_at lay in the future (they wait),
        # and by how much at most (seconds). Said once in the run's line.
        self._clock_ahead_ids: set[str] = set()
        self.clock_ahead_seconds: float | None = None
        self.regions_added = 0  # region names (kelurahan...propinsi rows) new patients added to Khanza
        self.findings: list[tuple[str, str]] = []  # (registration id, field names) kept as Khanza has them

    def add(self, outcomes: pd.DataFrame, report: list[dict] | None = None) -> None:
        """One batch's outcomes, and its data-check report (data_checks.check) for the website clock check."""
        self.batches += 1
        self.by_outcome.update(outcomes["outcome"].astype(str))
        self.by_error.update(outcomes["error_code"].dropna().astype(str))
        if "regions_added" in outcomes.columns:
            self.regions_added += int(pd.to_numeric(outcomes["regions_added"], errors="coerce").fillna(0).sum())
        if "findings" in outcomes.columns:
            self.findings += [(str(i), str(f)) for i, f in zip(outcomes["id"], outcomes["findings"])
                              if isinstance(f, str) and f]
        for entry in report or []:
            if entry.get("offset_seconds") is not None:
                self._clock_ahead_ids.update(entry["ids"])
                self.clock_ahead_seconds = max(self.clock_ahead_seconds or 0.0, float(entry["offset_seconds"]))

    @property
    def clock_ahead_rows(self) -> int:
        return len(self._clock_ahead_ids)

    @property
    def total(self) -> int:
        return sum(self.by_outcome.values())

    def line(self) -> str:
        parts = [f"{k}={self.by_outcome.get(k, 0)}" for k in ("created", "duplicate", "rejected", "deferred")]
        text = f"{self.total} registrations: " + " ".join(parts)
        if self.khanza_unreachable:
            text += f" | Khanza offline: {self.by_outcome.get('deferred', 0)} deferred"
        if self.regions_added:
            text += f" | {self.regions_added} region names added to Khanza"
        if self.clock_ahead_rows:
            text += (f" | website clock or time zone off: created_at up to {offset_text(self.clock_ahead_seconds)} "
                     f"ahead of UTC on {self.clock_ahead_rows} registrations, which wait (created_at must be UTC)")
        return text

    def as_dict(self) -> dict:
        return {"total": self.total, "by_outcome": dict(self.by_outcome), "by_error_code": dict(self.by_error),
                "batches": self.batches, "khanza_unreachable": self.khanza_unreachable,
                "website_clock_ahead_seconds": self.clock_ahead_seconds, "regions_added": self.regions_added,
                "findings": len(self.findings)}


def offset_text(seconds: float | None) -> str:
    """A clock offset for people: `7.0 h`, `12 min`, `40 s`."""
    seconds = float(seconds or 0)
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
