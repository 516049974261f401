"""Alerts: one notification block and six Prefect automations per hospital, installed idempotently.

`khanza-sync alerts` (also run by `khanza-sync deploy` when ALERT_URLS is set) creates or updates, on the
Prefect server at PREFECT_API_URL, for HOSPITAL_CODE:

- the block `khanza-sync-<code>-alerts`: Prefect's `Slack Webhook` block type, whose URL field takes any Apprise
  URL, several separated by spaces (Apprise splits them; the server can only load the block types Prefect
  ships, so no block class of our own). Holds ALERT_URLS, stored as a secret.
- the automations `khanza-sync <code>: <condition>` (specs below); found by name, updated in place only if they
  differ, so re-running changes nothing. `--remove` deletes only these names (and only automations carrying
  this installer's description) and the block.

What each condition counts (events: khanza_sync/signals.py; state events: Prefect's own):
- Khanza offline: proactive, after `khanza-sync.khanza.offline` expect `khanza-sync.khanza.reachable` within
  ALERT_OFFLINE_MINUTES, per hospital. The first offline event opens a window; later offline events do not
  move it; a reachable event inside it cancels the alert. While Khanza stays down the next offline run after
  an alert opens the next window: one reminder per ALERT_OFFLINE_MINUTES (+ up to one run interval).
- No successful sync: proactive, after `prefect.flow-run.Late` of the hospital's sync-registrations
  deployment expect its `prefect.flow-run.Completed` within ALERT_NO_SYNC_MINUTES. Runs only go Late when no
  worker picks them up, so this counts only while runs are scheduled and catches a dead worker.
- Run failed or crashed: reactive on `prefect.flow-run.Failed/Crashed/TimedOut` of runs tagged
  `hospital:<code>` (every deployment of the hospital); the offline ending is the state `KhanzaOffline`, whose
  event does not match. With memory, per deployment (runs without one: per flow): the first failure alerts at
  once; Prefect then opens the next window at the end of this one (a reactive trigger's bucket), so further
  failures inside ALERT_REPEAT_MINUTES are counted and dropped, and the first failure after it alerts again
  (it persists). A rotated Khanza password (MySQL 1045, every scheduled run Failed) is one alert per window.
- Runs succeed again: reactive, after a failure of the deployment (the same events) expect its
  `prefect.flow-run.Completed` within RECOVERY_WINDOW: one alert when the failure clears, none while it
  lasts, none for a success without a failure before it. Limit of Prefect's semantics: a failure inside the
  window of an earlier alert, after a recovery, waits for the window's end to alert.
- Rejections high / needs review: reactive on the hospital's own events, one alert each.
Messages name the hospital, the condition, since when, and link to the run; never patient data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from khanza_sync import signals
from khanza_sync.settings import Settings

MARKER = "Installed by `khanza-sync alerts`"
FAILED = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
# How long after a deployment's first failure a success still counts as "it cleared" (Prefect's bucket opens at
# the first failure of a series and later failures do not move it; an expired one is swept and the next failure
# opens a new one). A week covers a long weekend's outage.
RECOVERY_WINDOW = timedelta(days=7)
RUN_LINK = "{{ flow_run|ui_url }}"


def block_name(code: str) -> str:
    return f"khanza-sync-{code}-alerts"


def automation_prefix(code: str) -> str:
    return f"khanza-sync {code}: "


def _minutes(value: float) -> str:
    return f"{value:g} min"


def automation_specs(settings: Settings, block_id) -> list:
    """The hospital's automations as Prefect AutomationCore objects (no server needed)."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    code = settings.hospital_code
    hospital = signals.hospital_resource(code)["prefect.resource.id"]
    on_hospital = {"prefect.resource.id": hospital}
    flow_runs = {"prefect.resource.id": "prefect.flow-run.*"}

    def automation(condition: str, trigger: EventTrigger, subject: str, body: str) -> AutomationCore:
        return AutomationCore(
            name=automation_prefix(code) + condition, description=f"{MARKER} for hospital {code}: {condition}.",
            enabled=True, trigger=trigger,
            actions=[SendNotification(block_document_id=block_id, subject=f"[khanza-sync {code}] {subject}",
                                      body=f"Hospital {code}: {body}")])

    def on_each(event: str) -> EventTrigger:
        """One alert for each of the hospital's `event` (the flows emit it only when something crossed a line)."""
        return EventTrigger(posture=Posture.Reactive, expect={event}, match=on_hospital, threshold=1,
                            within=timedelta(0))

    offline = settings.alert_offline_minutes
    no_sync = settings.alert_no_sync_minutes
    repeat = settings.alert_repeat_minutes
    hospital_runs = {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.hospital:{code}"}
    # one memory per deployment; a run without one (started in a script) is keyed by its flow
    per_deployment = {"related:deployment:prefect.resource.id", "related:flow:prefect.resource.id"}
    return [
        automation("Khanza offline", EventTrigger(
            posture=Posture.Proactive, after={signals.OFFLINE}, expect={signals.REACHABLE}, match=on_hospital,
            for_each={"prefect.resource.id"}, threshold=1, within=timedelta(minutes=offline)),
            f"Khanza unreachable for {_minutes(offline)}",
            f"Khanza has been unreachable since {{{{ event.occurred }}}} (UTC); no run reached it for "
            f"{_minutes(offline)}. Registrations stay pending and sync when it answers again. "
            f"First offline run: {RUN_LINK}"),
        automation("no successful sync", EventTrigger(
            posture=Posture.Proactive, after={"prefect.flow-run.Late"}, expect={"prefect.flow-run.Completed"},
            match=flow_runs, match_related={"prefect.resource.role": "deployment",
                                            "prefect.resource.name": f"sync-registrations-{code}"},
            for_each={"related:deployment:prefect.resource.id"}, threshold=1, within=timedelta(minutes=no_sync)),
            f"no successful sync for {_minutes(no_sync)}",
            f"a scheduled sync run went Late at {{{{ event.occurred }}}} (UTC) and no sync run completed within "
            f"{_minutes(no_sync)}: is the worker of pool {settings.work_pool_name} running? Late run: {RUN_LINK}"),
        automation("run failed or crashed", EventTrigger(
            posture=Posture.Reactive, expect=FAILED, match=flow_runs, match_related=hospital_runs,
            for_each=per_deployment, threshold=1, within=timedelta(minutes=repeat)),
            "{{ flow.name }} run {{ flow_run.state.name }}",
            "the {{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state.name }} at {{ event.occurred }} "
            f"(UTC). Its message and logs: {RUN_LINK} . If runs keep failing you hear again after "
            f"{_minutes(repeat)}, and once when a run succeeds."),
        automation("runs succeed again", EventTrigger(
            posture=Posture.Reactive, after=FAILED, expect={"prefect.flow-run.Completed"}, match=flow_runs,
            match_related=hospital_runs, for_each=per_deployment, threshold=1, within=RECOVERY_WINDOW),
            "{{ flow.name }} runs succeed again",
            "the {{ flow.name }} run {{ flow_run.name }} completed at {{ event.occurred }} (UTC) after failed "
            f"runs: cleared. Run: {RUN_LINK}"),
        automation("rejections high", on_each(signals.REJECTIONS_HIGH),
            "rejections above {{ event.payload.threshold }} per hour",
            "{{ event.payload.rejected_last_hour }} registrations rejected in the hour to {{ event.occurred }} "
            "(UTC), above ALERT_REJECTIONS_PER_HOUR={{ event.payload.threshold }}; by code this run: "
            f"{{{{ event.payload.by_error_code }}}}. Run: {RUN_LINK}"),
        automation("registrations need review", on_each(signals.NEEDS_REVIEW),
            "registrations need review",
            "a sync run at {{ event.occurred }} (UTC) flagged registrations for the data team: "
            f"{{{{ event.payload.counts_by_code }}}}. Run: {RUN_LINK}"),
    ]


def _comparable(automation) -> dict:
    """What an automation says, without server-side ids and timestamps (for 'changes nothing')."""
    from prefect.events.schemas.automations import AutomationCore

    data = automation.model_dump(mode="json", include=set(AutomationCore.model_fields))

    def drop_ids(value):
        if isinstance(value, dict):
            return {k: drop_ids(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            items = [drop_ids(v) for v in value]
            # the triggers' sets (expect, after, for_each) come back as lists in whatever order a process's
            # string hashing gave them: compare them as sets, or a re-run would "update" an unchanged automation
            return sorted(items) if all(isinstance(v, str) for v in items) else items
        return value

    return drop_ids(data)


@dataclass
class Change:
    what: str  # "block" | "automation"
    name: str
    action: str  # created | updated | unchanged | removed

    def __str__(self) -> str:
        return f"  {self.action:<9} {self.what} {self.name}"


def _block(settings: Settings) -> tuple[object, Change]:
    from prefect.blocks.notifications import SlackWebhook

    name = block_name(settings.hospital_code)
    urls = " ".join(settings.alert_url_list)
    try:
        existing = SlackWebhook.load(name)
    except ValueError:  # no such block
        existing = None
    if existing is not None and existing.url.get_secret_value() == urls:
        return existing._block_document_id, Change("block", name, "unchanged")
    block_id = SlackWebhook(url=urls).save(name, overwrite=True)
    return block_id, Change("block", name, "updated" if existing is not None else "created")


def install(settings: Settings) -> list[Change]:
    """Create or update the hospital's block and automations; unchanged ones are left as they are."""
    from prefect.client.orchestration import get_client

    block_id, block_change = _block(settings)
    changes = [block_change]
    with get_client(sync_client=True) as client:
        for spec in automation_specs(settings, block_id):
            found = [a for a in client.read_automations_by_name(spec.name) if MARKER in (a.description or "")]
            if not found:
                client.create_automation(spec)
                changes.append(Change("automation", spec.name, "created"))
                continue
            current, *extra = found
            for duplicate in extra:  # a half-finished earlier install: keep one
                client.delete_automation(duplicate.id)
            if _comparable(current) == _comparable(spec):
                changes.append(Change("automation", spec.name, "unchanged"))
            else:
                client.update_automation(current.id, spec)
                changes.append(Change("automation", spec.name, "updated"))
    return changes


def remove(settings: Settings) -> list[Change]:
    """Delete the hospital's automations (only those this installer made) and its block."""
    from prefect.blocks.notifications import SlackWebhook
    from prefect.client.orchestration import get_client

    prefix = automation_prefix(settings.hospital_code)
    changes = []
    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            if automation.name.startswith(prefix) and MARKER in (automation.description or ""):
                client.delete_automation(automation.id)
                changes.append(Change("automation", automation.name, "removed"))
    name = block_name(settings.hospital_code)
    from prefect.exceptions import ObjectNotFound

    try:
        SlackWebhook.delete(name)
        changes.append(Change("block", name, "removed"))
    except (ValueError, ObjectNotFound):  # not there: nothing to remove
        pass
    return changes
