"""What the data team reads instead of logs, as plain values: artifact tables, summary lines and run names.
Counts, rule names and registration ids only. Publishing them to Prefect is khanza_sync/artifacts.py."""
from __future__ import annotations

from collections import defaultdict
from datetime import timezone

from khanza_sync.error_codes import ErrorCode
from khanza_sync.outcomes import RunSummary

MAX_IDS_SHOWN = 50


def outcome_table(summary: RunSummary) -> list[dict]:
    rows = [{"outcome": k, "count": v} for k, v in sorted(summary.by_outcome.items())]
    rows += [{"outcome": f"error_code {k}", "count": v, "meaning": ErrorCode(k).message}
             for k, v in sorted(summary.by_error.items())]
    if summary.regions_added:
        rows.append({"outcome": "region names added to Khanza", "count": summary.regions_added,
                     "meaning": "kelurahan/kecamatan/kabupaten/propinsi rows new patients' regions added (each once)"})
    if summary.findings:
        rows.append({"outcome": "findings (kept as Khanza has them)", "count": len(summary.findings),
                     "meaning": "an existing patient's record disagrees with the registration; never overwritten"})
    return rows


def findings_table(summary: RunSummary) -> list[dict]:
    """Registration id and what disagreed with Khanza's record (field names only), kept as Khanza has it."""
    return [{"registration_id": reg_id, "finding": detail} for reg_id, detail in summary.findings]


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


def sync_run_name(summary: RunSummary, started: str) -> str:
    counts = summary.by_outcome
    if summary.khanza_unreachable:
        return f"sync {started} · Khanza offline · {counts.get('deferred', 0)} deferred"
    if not summary.total:
        return f"sync {started} · nothing pending"
    return (f"sync {started} · {counts.get('created', 0)} created, {counts.get('duplicate', 0)} duplicate, "
            f"{counts.get('rejected', 0)} rejected" + (f", {counts['deferred']} deferred" if counts.get("deferred") else ""))


# ---------------------------------------------------------------- reconcile, backfill, master data
MAX_ROWS_SHOWN = 500


def capped(rows: list[dict], empty: dict) -> list[dict]:
    """A table artifact's rows: `empty` as one row when there are none, at most MAX_ROWS_SHOWN then `...`."""
    if not rows:
        return [empty]
    if len(rows) > MAX_ROWS_SHOWN:
        return rows[:MAX_ROWS_SHOWN] + [{k: ("..." if i == 0 else "") for i, k in enumerate(rows[0])}]
    return rows


# ---------------------------------------------------------------- the queue at a glance (queue-status)
NO_CODE = "(none)"


def queue_status_key(hospital_code: str) -> str:
    """One artifact key per hospital (HOSPITAL_CODE is lowercase letters, digits and dashes, as keys must be)."""
    return f"queue-status-{hospital_code}"


def age_text(age) -> str:
    """A timedelta as `3 d 2 h`, `2 h 5 min`, `5 min` or `< 1 min`; `-` for none."""
    if age is None:
        return "-"
    minutes = int(age.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min" if mins else "< 1 min"


def queue_figures(status) -> list[tuple[str, str]]:
    """The headline figures of a website.store.QueueStatus, as (figure, value) rows."""
    tma = f"{status.too_many_attempts_rejected_today} today, {status.too_many_attempts_rejected} all time"
    return [("pending", str(status.pending)), ("due now", str(status.due_now)),
            ("deferred (pending, not due yet)", str(status.deferred)),
            ("oldest pending", age_text(status.oldest_pending_age)),
            ("rejected today", str(status.rejected_today)),
            ("TOO_MANY_ATTEMPTS rejected", tma),
            ("TOO_MANY_ATTEMPTS pending (flagged for review)", str(status.too_many_attempts_pending)),
            ("cancellations requested", str(status.cancel_requested))]


def _by_code(title: str, counts: dict) -> str:
    if not counts:
        return f"**{title}**: none"
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0] or ""))
    lines = [f"| {code or NO_CODE} | {n} | {_meaning(code)} |" for code, n in rows]
    return f"**{title}**\n\n| error_code | count | meaning |\n|---|---|---|\n" + "\n".join(lines)


def _meaning(code: str | None) -> str:
    if code is None:
        return "no error yet: first attempt, or being synced now"
    try:
        return ErrorCode(code).message.replace("|", "/")
    except ValueError:
        return ""


def queue_status_markdown(status, hospital_code: str, tz) -> str:
    """The queue-status artifact: a line saying when and which hospital, the headline figures, then deferred
    and rejected-today rows by error code. Counts and codes only (no ids, no patient data)."""
    def local(moment):
        return moment.replace(tzinfo=timezone.utc).astimezone(tz).strftime("%Y-%m-%d %H:%M")

    head = (f"**Queue of hospital `{hospital_code}` at {local(status.now)} ({tz.key})**; today is since "
            f"{local(status.day_start)}")
    figures = "| figure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in queue_figures(status))
    return "\n\n".join([head, figures, _by_code("Deferred by code", status.deferred_by_code),
                        _by_code("Rejected today by code", status.rejected_today_by_code)])
