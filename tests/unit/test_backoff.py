"""Per-registration backoff (khanza_sync/outcomes.py) with a fixed clock and an injected random source:
exact delays, the cap, the jitter's bounds, and TOO_MANY_ATTEMPTS at MAX_TRANSIENT_ATTEMPTS."""
import random
from datetime import datetime, timedelta

import pandas as pd
import pytest

from khanza import registration
from khanza_sync import outcomes
from khanza_sync.settings import Settings
from tests.unit.loader_fakes import NoSQL, batch, registration_row

NOW = datetime(2001, 2, 3, 4, 5, 6)  # far from today: a result near the real clock would show it was read
SETTINGS = Settings(_env_file=None, khanza_retry_delay_seconds=10, deferral_max_seconds=3600, max_transient_attempts=5)


class Draw:
    """A random source that always draws the same point of the range: 0 = low end, 1 = high end."""

    def __init__(self, at: float):
        self.at = at

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.at


def delay(attempts: int, rng, settings: Settings = SETTINGS) -> float:
    return (outcomes.next_attempt(attempts, NOW, settings, rng=rng) - NOW).total_seconds()


@pytest.mark.parametrize("attempts, seconds", [(0, 10), (1, 10), (2, 20), (3, 40), (4, 80), (9, 2560)])
def test_doubles_from_the_base_without_jitter_at_the_high_end(attempts, seconds):
    assert delay(attempts, Draw(1.0)) == seconds


@pytest.mark.parametrize("attempts, seconds", [(1, 7.5), (3, 30), (9, 1920)])
def test_jitter_takes_off_at_most_a_quarter(attempts, seconds):
    assert delay(attempts, Draw(0.0)) == seconds


@pytest.mark.parametrize("attempts", [10, 11, 30, 200])
def test_capped_at_deferral_max_seconds(attempts):
    assert delay(attempts, Draw(1.0)) == 3600
    assert delay(attempts, Draw(0.0)) == 2700


def test_base_below_one_second_counts_as_one():
    settings = Settings(_env_file=None, khanza_retry_delay_seconds=0, deferral_max_seconds=3600)
    assert [delay(n, Draw(1.0), settings) for n in (1, 2, 3)] == [1, 2, 4]


def test_seeded_source_stays_within_the_jitter_and_spreads_a_backlog():
    rng = random.Random(20261127)
    delays = [delay(4, rng) for _ in range(500)]
    assert min(delays) >= 60 and max(delays) <= 80  # 80 s at most, 25 % less at least
    assert len({round(d, 6) for d in delays}) > 400  # not one instant for the whole backlog
    assert max(delays) - min(delays) > 15  # uses most of the range


def test_same_seed_same_times_other_seed_other_times():
    def times(seed):
        rng = random.Random(seed)
        return [outcomes.next_attempt(n, NOW, SETTINGS, rng=rng) for n in range(1, 6)]
    assert times(1) == times(1)
    assert times(1) != times(2)


def test_without_rng_the_module_random_is_used(monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    assert outcomes.next_attempt(2, NOW, SETTINGS) == NOW + timedelta(seconds=20)


def test_an_injected_rng_leaves_the_module_random_alone(monkeypatch):
    def forbidden(*args):
        raise AssertionError("module random used although an rng was given")
    monkeypatch.setattr(random, "uniform", forbidden)
    assert outcomes.next_attempt(2, NOW, SETTINGS, rng=Draw(1.0)) == NOW + timedelta(seconds=20)


# ---------------------------------------------------------------- deferred rows


def pending(*attempts) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(attempts))], "attempts": list(attempts)}, dtype=object)


def test_deferred_rows_stay_pending_with_their_backoff():
    out = outcomes.deferred(pending(1, 3, None), NOW, SETTINGS, rng=Draw(1.0))
    assert list(out.columns) == outcomes.COLUMNS
    assert set(out["status"]) == {"deferred"} and set(out["error_code"]) == {"KHANZA_UNREACHABLE"}
    assert list(out["next_attempt_at"]) == [NOW + timedelta(seconds=s) for s in (10, 40, 10)]  # None counts as 0


def test_deferred_code_and_message_follow_the_cause():
    out = outcomes.deferred(pending(1), NOW, SETTINGS, outcomes.ErrorCode.PIPELINE_ERROR, rng=Draw(1.0))
    assert out.loc[0, "error_code"] == "PIPELINE_ERROR"
    assert out.loc[0, "message"] == outcomes.ErrorCode.PIPELINE_ERROR.message


def test_at_max_transient_attempts_flagged_for_review_but_never_rejected():
    out = outcomes.deferred(pending(4, 5, 6), NOW, SETTINGS, rng=Draw(0.0))
    assert list(out["error_code"]) == ["KHANZA_UNREACHABLE", "TOO_MANY_ATTEMPTS", "TOO_MANY_ATTEMPTS"]
    assert set(out["status"]) == {"deferred"}
    # the flagged ones wait the longest backoff, without jitter
    assert list(out["next_attempt_at"]) == [NOW + timedelta(seconds=60), NOW + timedelta(hours=1),
                                            NOW + timedelta(hours=1)]


def test_with_backoff_fills_only_deferred_rows_without_a_time():
    earlier = NOW + timedelta(minutes=5)
    result = pd.DataFrame([
        {"id": "busy", "status": "deferred", "next_attempt_at": None},
        {"id": "timed", "status": "deferred", "next_attempt_at": earlier},
        {"id": "done", "status": "synced", "next_attempt_at": None},
        {"id": "unknown", "status": "deferred", "next_attempt_at": None},
    ]).reindex(columns=outcomes.COLUMNS).astype(object)
    attempts = pd.Series({"busy": 3, "timed": 3, "done": 3})
    out = outcomes.with_backoff(result, attempts, NOW, SETTINGS, rng=Draw(1.0)).set_index("id")["next_attempt_at"]
    assert out["busy"] == NOW + timedelta(seconds=40)
    assert out["timed"] == earlier
    assert pd.isna(out["done"])
    assert out["unknown"] == NOW + timedelta(seconds=10)  # no attempts known: the first step


@pytest.mark.parametrize("attempts, flagged", [(None, False), (0, False), (4, False), (5, True), ("7", True)])
def test_too_many_attempts_at_the_setting(attempts, flagged):
    assert outcomes.too_many_attempts(attempts, SETTINGS) is flagged


@pytest.mark.parametrize("attempts, code, status", [(4, "KHANZA_BUSY", "deferred"),
                                                   (5, "TOO_MANY_ATTEMPTS", "rejected")])
def test_loader_numbers_busy_uses_the_same_limit(monkeypatch, attempts, code, status):
    """The loader's own transient failure (the desk kept taking its numbers) hands the row to staff at the
    same count; there, Khanza answered and nothing was committed, so the row can be rejected."""
    def busy(*args):
        raise registration.NumbersBusy("taken")
    monkeypatch.setattr(registration, "register", busy)
    day = NOW.date()
    result = registration._load_one(NoSQL(), registration_row(day, attempts=attempts),
                                    batch(day, max_transient_attempts=5))
    assert (result["status"], result["error_code"]) == (status, code)
