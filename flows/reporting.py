"""Prefect artifacts the data team reads instead of logs. Counts, rule names and registration ids only."""
from __future__ import annotations

from collections import defaultdict

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from error_codes import ErrorCode
from outcomes import RunSummary

MAX_IDS_SHOWN = 50


def outcome_table(summary: RunSummary) -> list[dict]:
    rows = [{"outcome": k, "count": v} for k, v in sorted(summary.by_outcome.items())]
    rows += [{"outcome": f"error_code {k}", "count": v, "meaning": ErrorCode(k).message}
             for k, v in sorted(summary.by_error.items())]
    return rows


def check_table(reports: list[list[dict]]) -> list[dict]:
    """One row per expectation across the run's batches: rows failing and which registration ids."""
    failing: dict[str, list[str]] = defaultdict(list)
    codes: dict[str, str] = {}
    for report in reports:
        for entry in report:
            failing[entry["name"]].extend(entry["ids"])
            codes[entry["name"]] = entry["code"]
    return [
        {"expectation": name, "error_code": codes[name], "failing_rows": len(ids),
         "registration_ids": ", ".join(ids[:MAX_IDS_SHOWN]) + (" ..." if len(ids) > MAX_IDS_SHOWN else "")}
        for name, ids in failing.items()
    ]


def publish_sync(summary: RunSummary, reports: list[list[dict]]) -> None:
    create_markdown_artifact(key="sync-summary", markdown=f"**{summary.line()}**", description="Run summary")
    create_table_artifact(key="sync-outcomes", table=outcome_table(summary) or [{"outcome": "none", "count": 0}],
                          description="Registrations by outcome and error code")
    if reports:
        create_table_artifact(key="sync-data-checks", table=check_table(reports),
                              description="Great Expectations results: failing rows per expectation (ids only)")
