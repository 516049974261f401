"""Prefect artifacts and run names: what the data team reads in the UI instead of logs (tables built by
khanza_sync/reporting.py: counts, rule names and registration ids only).

Every key ends in the hospital's code (`sync-summary-<code>`, `queue-status-<code>`, ...): a key's page shows the
latest artifact and its history, and on a Prefect server shared by hospitals an unsuffixed key would mix them."""
from __future__ import annotations

from prefect import get_client
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from khanza_sync.outcomes import RunSummary
from khanza_sync.reporting import (
    capped, check_table, findings_table, outcome_table, queue_status_key, queue_status_markdown,
)


def name_run(name: str) -> None:
    """Give the finished run a name that says what happened, for the runs list in the UI."""
    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name[:120])


def key(base: str, hospital_code: str) -> str:
    """An artifact key of one hospital (HOSPITAL_CODE is lowercase letters, digits and dashes, as keys must be)."""
    return f"{base}-{hospital_code}"


def _summary(artifact_key: str, description: str, line: str, heading: tuple[str, str], counts: dict[str, int]) -> None:
    """A markdown artifact: the run's line in bold, then a two-column table of counts."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items())
    create_markdown_artifact(key=artifact_key, description=description,
                             markdown=f"**{line}**\n\n| {heading[0]} | {heading[1]} |\n|---|---|\n{rows}")


def publish_sync(summary: RunSummary, reports: list[list[dict]], code: str) -> None:
    create_markdown_artifact(key=key("sync-summary", code), markdown=f"**{summary.line()}**", description="Run summary")
    create_table_artifact(key=key("sync-outcomes", code), table=outcome_table(summary) or [{"outcome": "none", "count": 0}],
                          description="Registrations by outcome and error code")
    if summary.findings:
        create_table_artifact(key=key("sync-findings", code), table=capped(findings_table(summary), {}),
                              description="Existing patients whose Khanza record disagrees (field names; kept as Khanza has it)")
    if reports:
        create_table_artifact(key=key("sync-data-checks", code), table=check_table(reports),
                              description="Great Expectations results: failing rows per expectation (ids only)")


def publish_reconcile(line: str, counts: dict[str, int], finding_rows: list[dict], change_rows: list[dict],
                      code: str) -> None:
    """Summary, counts, the findings (ids, dates, codes, masked record numbers only) and what was changed."""
    _summary(key("reconcile-summary", code), "Reconciliation summary", line, ("what", "count"), counts)
    create_table_artifact(key=key("reconcile-findings", code), description="Reported, Khanza not changed (ids only)",
                          table=capped(finding_rows, {"finding": "none", "registration_id": "", "visit_date": "",
                                                      "detail": "", "meaning": ""}))
    create_table_artifact(key=key("reconcile-changes", code), description="Website rows changed by this run (ids only)",
                          table=capped(change_rows, {"registration_id": "none", "change": ""}))


def publish_backfill(line: str, summary: RunSummary, reports: list[list[dict]], preview: list[dict] | None,
                     code: str) -> None:
    create_markdown_artifact(key=key("backfill-summary", code), markdown=f"**{line}**", description="Backfill summary")
    if preview is not None:
        create_table_artifact(key=key("backfill-dry-run", code), description="Dry run: what would happen (nothing written)",
                              table=capped(preview, {"would": "nothing", "count": 0}))
    else:
        create_table_artifact(key=key("backfill-outcomes", code), description="Registrations by outcome and error code",
                              table=outcome_table(summary) or [{"outcome": "none", "count": 0}])
    if reports and check_table(reports):
        create_table_artifact(key=key("backfill-data-checks", code), table=check_table(reports),
                              description="Great Expectations results: failing rows per expectation (ids only)")


def publish_master_data(line: str, written: dict[str, int], problems: list[dict], quota_rows: list[dict],
                        code: str) -> None:
    _summary(key("master-data-summary", code), "Master data published to the website", line, ("website table", "rows"),
             written)
    create_table_artifact(key=key("master-data-mapping-problems", code), description="Mapping entries that no longer match Khanza",
                          table=capped(problems, {"mapping": "none", "slug": "", "code": "", "problem": ""}))
    create_table_artifact(key=key("master-data-quota", code), description="Remaining quota per day, doctor and clinic (codes)",
                          table=capped(quota_rows, {"visit_date": "none"}))


def publish_queue_status(status, hospital_code: str, tz) -> None:
    """The queue at a glance (a website.store.QueueStatus), under the hospital's one key `queue-status-<code>`:
    its page under Artifacts shows the latest figures and their history."""
    create_markdown_artifact(key=queue_status_key(hospital_code),
                             markdown=queue_status_markdown(status, hospital_code, tz),
                             description=f"Website queue of hospital {hospital_code}: pending, due, deferred, rejected "
                                         "today, TOO_MANY_ATTEMPTS, cancellations requested")
