"""Sync run names (khanza_sync/reporting.py `sync_run_name`): what the runs list in the Prefect UI says.
Pure: a RunSummary in, a name out; no Prefect server."""
import pandas as pd

from khanza_sync.outcomes import RunSummary
from khanza_sync.reporting import sync_run_name

STARTED = "2026-11-27 09:00"


def summary(*outcomes: str, offline: bool = False, batches: int = 1) -> RunSummary:
    run = RunSummary()
    per_batch = [list(outcomes[i::batches]) for i in range(batches)]
    for chunk in per_batch:
        run.add(pd.DataFrame({"outcome": chunk, "error_code": [None] * len(chunk)}))
    run.khanza_unreachable = offline
    return run


def test_counts_of_what_happened():
    name = sync_run_name(summary("created", "created", "duplicate", "rejected", "rejected", "rejected"), STARTED)
    assert name == "sync 2026-11-27 09:00 · 2 created, 1 duplicate, 3 rejected"


def test_zero_counts_are_said_but_deferred_only_when_there_are_some():
    assert sync_run_name(summary("rejected"), STARTED) == "sync 2026-11-27 09:00 · 0 created, 0 duplicate, 1 rejected"
    assert sync_run_name(summary("created", "deferred", "deferred"), STARTED).endswith(
        "1 created, 0 duplicate, 0 rejected, 2 deferred")


def test_counts_add_up_across_batches():
    name = sync_run_name(summary("created", "created", "created", "rejected", batches=3), STARTED)
    assert "3 created" in name and "1 rejected" in name


def test_nothing_pending():
    assert sync_run_name(RunSummary(), STARTED) == "sync 2026-11-27 09:00 · nothing pending"


def test_khanza_offline_says_how_many_wait():
    name = sync_run_name(summary("created", "deferred", "deferred", "deferred", offline=True), STARTED)
    assert name == "sync 2026-11-27 09:00 · Khanza offline · 3 deferred"
    assert sync_run_name(summary(offline=True), STARTED) == "sync 2026-11-27 09:00 · Khanza offline · 0 deferred"


def test_names_carry_counts_only():
    """Outcome rows hold ids and codes; the name must not pick up either."""
    run = RunSummary()
    run.add(pd.DataFrame({"id": ["web-3310012345678901"], "outcome": ["rejected"], "error_code": ["INVALID_NIK"]}))
    name = sync_run_name(run, STARTED)
    assert "3310012345678901" not in name and "INVALID_NIK" not in name
