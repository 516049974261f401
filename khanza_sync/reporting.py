"""Prefect artifacts the data team reads instead of logs. Counts, rule names and registration ids only."""
from __future__ import annotations

from collections import defaultdict

from prefect import get_client
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from khanza_sync.error_codes import ErrorCode
from khanza_sync.outcomes import RunSummary

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
    return [{"expectation": name, "error_code": codes[name], "failing_rows": len(ids), "registration_ids": id_list(ids)}
            for name, ids in failing.items()]


def id_list(ids: list[str]) -> str:
    """Registration ids for a table cell: the first MAX_IDS_SHOWN, then `...`."""
    return ", ".join(ids[:MAX_IDS_SHOWN]) + (" ..." if len(ids) > MAX_IDS_SHOWN else "")


def preview_table(predictions, requeue: list[str]) -> list[dict]:
    """A backfill dry run's table: re-queued rejected rows, then what loading would do, by outcome and code."""
    rows = [{"would": "re-queue rejected", "error_code": "", "count": len(requeue), "registration_ids": id_list(requeue)}]
    if not predictions.empty:
        grouped = predictions.fillna({"error_code": ""}).groupby(["would", "error_code"], sort=True)["id"]
        for (would, code), ids in grouped:
            ids = ids.astype(str).tolist()
            rows.append({"would": would, "error_code": code, "count": len(ids), "registration_ids": id_list(ids)})
    return rows


def batch_line(result) -> str:
    """One batch's outcomes for the log, e.g. `created=12, rejected=2`."""
    return ", ".join(f"{k}={v}" for k, v in result["outcome"].value_counts().items())


def name_run(name: str) -> None:
    """Give the finished run a name that says what happened, for the runs list in the UI."""
    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name[:120])


def sync_run_name(summary: RunSummary, started: str) -> str:
    counts = summary.by_outcome
    if summary.khanza_unreachable:
        return f"sync {started} · Khanza offline · {counts.get('deferred', 0)} deferred"
    if not summary.total:
        return f"sync {started} · nothing pending"
    return (f"sync {started} · {counts.get('created', 0)} created, {counts.get('duplicate', 0)} duplicate, "
            f"{counts.get('rejected', 0)} rejected" + (f", {counts['deferred']} deferred" if counts.get("deferred") else ""))


def publish_sync(summary: RunSummary, reports: list[list[dict]]) -> None:
    create_markdown_artifact(key="sync-summary", markdown=f"**{summary.line()}**", description="Run summary")
    create_table_artifact(key="sync-outcomes", table=outcome_table(summary) or [{"outcome": "none", "count": 0}],
                          description="Registrations by outcome and error code")
    if reports:
        create_table_artifact(key="sync-data-checks", table=check_table(reports),
                              description="Great Expectations results: failing rows per expectation (ids only)")


# ---------------------------------------------------------------- reconcile, backfill, master data
MAX_ROWS_SHOWN = 500


def _table(rows: list[dict], empty: dict) -> list[dict]:
    if not rows:
        return [empty]
    if len(rows) > MAX_ROWS_SHOWN:
        return rows[:MAX_ROWS_SHOWN] + [{k: ("..." if i == 0 else "") for i, k in enumerate(rows[0])}]
    return rows


def publish_reconcile(line: str, counts: dict[str, int], finding_rows: list[dict], change_rows: list[dict]) -> None:
    """Summary, counts, the findings (ids, dates, codes, masked record numbers only) and what was changed."""
    counts_md = "\n".join(f"| {k} | {v} |" for k, v in counts.items())
    create_markdown_artifact(key="reconcile-summary", description="Reconciliation summary",
                             markdown=f"**{line}**\n\n| what | count |\n|---|---|\n{counts_md}")
    create_table_artifact(key="reconcile-findings", description="Reported, Khanza not changed (ids only)",
                          table=_table(finding_rows, {"finding": "none", "registration_id": "", "visit_date": "",
                                                      "detail": "", "meaning": ""}))
    create_table_artifact(key="reconcile-changes", description="Website rows changed by this run (ids only)",
                          table=_table(change_rows, {"registration_id": "none", "change": ""}))


def publish_backfill(line: str, summary: RunSummary, reports: list[list[dict]], preview: list[dict] | None) -> None:
    create_markdown_artifact(key="backfill-summary", markdown=f"**{line}**", description="Backfill summary")
    if preview is not None:
        create_table_artifact(key="backfill-dry-run", description="Dry run: what would happen (nothing written)",
                              table=_table(preview, {"would": "nothing", "count": 0}))
    else:
        create_table_artifact(key="backfill-outcomes", description="Registrations by outcome and error code",
                              table=outcome_table(summary) or [{"outcome": "none", "count": 0}])
    if reports and check_table(reports):
        create_table_artifact(key="backfill-data-checks", table=check_table(reports),
                              description="Great Expectations results: failing rows per expectation (ids only)")


def publish_master_data(line: str, written: dict[str, int], problems: list[dict], quota_rows: list[dict]) -> None:
    counts_md = "\n".join(f"| {k} | {v} |" for k, v in written.items())
    create_markdown_artifact(key="master-data-summary", description="Master data published to the website",
                             markdown=f"**{line}**\n\n| website table | rows |\n|---|---|\n{counts_md}")
    create_table_artifact(key="master-data-mapping-problems", description="Mapping entries that no longer match Khanza",
                          table=_table(problems, {"mapping": "none", "slug": "", "code": "", "problem": ""}))
    create_table_artifact(key="master-data-quota", description="Remaining quota per day, doctor and clinic (codes)",
                          table=_table(quota_rows, {"visit_date": "none"}))
