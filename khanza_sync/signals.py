"""The Prefect events the flows emit for the alert automations (khanza_sync/alerts.py).

Every event's resource is the hospital, `khanza-sync.hospital.<code>`; inside a flow run Prefect adds the run,
its flow, deployment and tags as related resources (so an alert can link to the run). Payloads hold counts,
error codes and registration ids only, never patient data.

    khanza-sync.khanza.offline               a run found Khanza unreachable (flows.offline_state, preflight)
    khanza-sync.khanza.reachable             a run reached Khanza (preflight logged in)
    khanza-sync.rejections.high              this run made the last hour's rejections cross ALERT_REJECTIONS_PER_HOUR
    khanza-sync.registrations.needs-review   this run flagged TOO_MANY_ATTEMPTS or PIPELINE_ERROR rows
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

OFFLINE = "khanza-sync.khanza.offline"
REACHABLE = "khanza-sync.khanza.reachable"
REJECTIONS_HIGH = "khanza-sync.rejections.high"
NEEDS_REVIEW = "khanza-sync.registrations.needs-review"
REVIEW_CODES = ("TOO_MANY_ATTEMPTS", "PIPELINE_ERROR")


def hospital_resource(code: str) -> dict[str, str]:
    return {"prefect.resource.id": f"khanza-sync.hospital.{code}", "prefect.resource.name": f"hospital {code}",
            "khanza-sync.hospital": code}


def emit(event: str, code: str, payload: dict | None = None) -> None:
    """Send one event (never raises: an alert signal must not fail the run it describes)."""
    try:
        from prefect.events import emit_event

        emit_event(event=event, resource=hospital_resource(code), payload=payload or {})
    except Exception:  # noqa: BLE001
        import logging

        logging.getLogger(__name__).warning("could not emit %s", event)


def khanza_reached(code: str, reached: bool) -> None:
    emit(REACHABLE if reached else OFFLINE, code)


def rejections_crossed(before: int, after: int, threshold: int) -> bool:
    """Only the run that takes the hourly count over the threshold alerts; while it stays high, none repeat."""
    return before <= threshold < after


def after_sync(res, summary) -> None:
    """After a sync run's batches: the rejection and needs-review signals (counts and codes only). The hourly
    count before this run is the count now minus this run's own rejections."""
    code = res.settings.hospital_code
    review = {c: summary.by_error.get(c, 0) for c in REVIEW_CODES if summary.by_error.get(c, 0)}
    if review:
        emit(NEEDS_REVIEW, code, {"counts_by_code": review})
    rejected = summary.by_outcome.get("rejected", 0)
    if not rejected:
        return
    from website import store

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    threshold = res.settings.alert_rejections_per_hour
    after = store.rejected_since(res.website, now - timedelta(hours=1))
    if rejections_crossed(max(after - rejected, 0), after, threshold):
        emit(REJECTIONS_HIGH, code, {"rejected_last_hour": after, "threshold": threshold,
                                     "by_error_code": dict(summary.by_error)})
