"""The hospital's Prefect deployments, listed once: `khanza-sync deploy` applies them, prefect.yaml is generated
from them (`khanza-sync deploy --write-prefect-yaml`), and the tests compare the two.

Several hospitals share one Prefect server. Everything a hospital deploys carries its `HOSPITAL_CODE`:

    work pool            khanza-sync-<code>            (process pool: only this hospital's workers poll it)
    deployments          <flow>-<code>, e.g. sync-registrations/sync-registrations-<code>
    schedules            in HOSPITAL_TIMEZONE
    Khanza write limit   KHANZA_CONCURRENCY_LIMIT (default khanza-writes-<code>)
    tags                 khanza-sync, hospital:<code>, khanza-db:<host>:<port>/<database>

A hospital's worker is started with that hospital's environment file (`khanza-sync worker`), and its pool holds
only that hospital's deployments, so its runs read that hospital's settings and nobody else's. Deploying
hospital B touches only names with B's code. The `khanza-db:` tag guards against two hospitals given the same
code by mistake: redeploying over deployments that point at another Khanza database is refused unless forced.
"""
from __future__ import annotations

import importlib
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from khanza_sync.settings import Settings


@dataclass(frozen=True)
class Schedule:
    slug: str  # stable name: a redeploy updates the schedule in place
    cron_template: str  # "{every}" stands for SYNC_EVERY_MINUTES
    note_template: str

    def cron(self, every: int = 15) -> str:
        return self.cron_template.format(every=every)

    def note(self, every: int = 15) -> str:
        return self.note_template.format(every=every)


@dataclass(frozen=True)
class Job:
    flow: str  # the Prefect flow's name; the deployment is "<flow>-<code>"
    entrypoint: str  # file entrypoint, as in prefect.yaml
    description: str
    collision_strategy: str  # deployment concurrency limit 1: ENQUEUE (wait) or CANCEL_NEW (give way)
    schedules: tuple[Schedule, ...] = field(default=())

    def deployment_name(self, code: str) -> str:
        return f"{self.flow}-{code}"

    def describe(self, code: str) -> str:
        return self.description.replace("<code>", code)

    @property
    def module_entrypoint(self) -> str:
        """`flows.sync_registrations.sync_registrations`: imported from the installed project, from any folder."""
        path, name = self.entrypoint.split(":")
        return path.removesuffix(".py").replace("/", ".") + "." + name

    def load_flow(self):
        path, name = self.entrypoint.split(":")
        return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


JOBS: tuple[Job, ...] = (
    Job("sync-registrations", "flows/sync_registrations.py:sync_registrations",
        "Pending website registrations -> Khanza, real queue numbers back to the website.",
        "ENQUEUE",  # a slow run and the next scheduled one never overlap; the newer one waits
        # Follow mode syncs each registration within seconds; this is its backstop (SYNC_EVERY_MINUTES, default
        # 15: a new process or runner pass every 2 minutes cost ~120 CPU-s an hour for runs that found nothing).
        (Schedule("opening-hours", "*/{every} 5-20 * * *",
                  "every {every} minutes (SYNC_EVERY_MINUTES), 05:00-20:59 hospital time: the backstop of follow mode"),
         Schedule("overnight", "0 0-4,21-23 * * *",
                  "hourly outside opening hours, so overnight registrations land before the morning rush"))),
    Job("follow-registrations", "flows/follow_registrations.py:follow_registrations",
        "Follow mode: each registration synced within seconds of its arrival (LISTEN/NOTIFY on PostgreSQL, else a "
        "FOLLOW_POLL_SECONDS poll). One run per clock hour, renamed with its counts; sync-registrations stays as the "
        "safety net (the Khanza write limit and numbering lock serialise the two).",
        "ENQUEUE",  # the next hour's run starts when this one ends at the full hour
        (Schedule("hourly", "0 * * * *", "every full hour; each run follows until the next full hour"),)),
    Job("reconcile-queue-numbers", "flows/reconcile_queue_numbers.py:reconcile_queue_numbers",
        "Website vs Khanza: cancellations both ways, doctor/clinic/date/queue-number changes and check-ins written "
        "back to the website; suspicious numbering reported (Khanza is never changed except to cancel on request).",
        "CANCEL_NEW",  # a run still going when the next one is due makes the new one give way
        (Schedule("opening-hours", "*/15 5-20 * * *", "every 15 minutes, 05:00-20:59 hospital time"),)),
    Job("publish-master-data", "flows/publish_master_data.py:publish_master_data",
        "Khanza's active clinics, doctors, schedules and remaining quota -> website tables; stale mapping entries "
        "reported. Nightly, and on demand (\"Run\" in the UI) after a schedule or mapping change.",
        "CANCEL_NEW",
        (Schedule("nightly", "0 2 * * *", "02:00 hospital time"),)),
    Job("backfill-registrations", "flows/backfill_registrations.py:backfill_registrations",
        "Manual only. Re-runs the sync for a window of visit dates (by=visit) or submission days (by=submitted); "
        "status=rejected re-queues rejected rows first (after a mapping fix); dry_run=true only reports. "
        "Example: prefect deployment run 'backfill-registrations/backfill-registrations-<code>' "
        "--param start=2026-11-01 --param end=2026-11-07 --param status=rejected --param dry_run=true",
        "ENQUEUE"),
    Job("requeue-registrations", "flows/fix_registrations.py:requeue_registrations",
        "Manual only. Puts given registrations back to pending after staff corrected them (rejected rows of any code, "
        "deferred rows) and syncs them now; synced and cancelled ones are refused. Recorded (decided_by, reason) in "
        "khanza_sync_decisions. dry_run=true only shows what the sync would do. Example: prefect deployment run "
        "'requeue-registrations/requeue-registrations-<code>' --param 'registration_ids=[\"web-123\"]' "
        "--param decided_by=rina --param reason='NIK corrected' --param dry_run=true",
        "ENQUEUE"),  # waits for a running fix; the Khanza write slot orders it with the syncs
    Job("resolve-patient-conflict", "flows/fix_registrations.py:resolve_patient_conflict",
        "Manual only. Resolves a PATIENT_CONFLICT: decision=link_patient with the Khanza no_rkm_medis staff chose "
        "(checked: the patient exists; what disagrees is shown by field name), or decision=new_patient; recorded in "
        "khanza_sync_decisions, then synced now. dry_run=true only checks and reports.",
        "ENQUEUE"),
)


def _cron_field(text: str, lo: int, hi: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        part, _, step = part.partition("/")
        a, b = (lo, hi) if part == "*" else (map(int, part.split("-")) if "-" in part else (int(part), int(part)))
        values.update(range(a, b + 1, int(step or 1)))
    return values


def runs_per_day(every: int = 15) -> dict[str, int]:
    """Scheduled runs a day per flow (minute and hour fields; the crons run every day), for sizing the
    Prefect database's retention; `every` is SYNC_EVERY_MINUTES."""
    counts = {}
    for job in JOBS:
        counts[job.flow] = sum(len(_cron_field(s.cron(every).split()[0], 0, 59))
                               * len(_cron_field(s.cron(every).split()[1], 0, 23)) for s in job.schedules)
    return counts


def tags(settings: Settings) -> list[str]:
    return ["khanza-sync", f"hospital:{settings.hospital_code}", khanza_db_tag(settings)]


def khanza_db_tag(settings: Settings) -> str:
    return f"khanza-db:{settings.khanza_db_host}:{settings.khanza_db_port}/{settings.khanza_db_name}"


# ---------------------------------------------------------------- prefect.yaml (prefect deploy --all)


def prefect_yaml(code: str = "default", timezone: str = "Asia/Jakarta", every: int = 15) -> str:
    """prefect.yaml for `prefect deploy --all` by one hospital: the same deployments as `khanza-sync deploy`,
    but with file entrypoints run from KHANZA_SYNC_HOME (the pull step), as Prefect's own CLI deploys them.
    The committed prefect.yaml is `prefect_yaml()` (the default hospital code, time zone and SYNC_EVERY_MINUTES)."""
    pool = Settings.model_construct(hospital_code=code).work_pool_name
    deployments = []
    for job in JOBS:
        deployments.append({
            "name": job.deployment_name(code),
            "description": job.describe(code),
            "entrypoint": job.entrypoint,
            "tags": ["khanza-sync", f"hospital:{code}"],
            "work_pool": {"name": pool, "job_variables": {}},
            "concurrency_limit": {"limit": 1, "collision_strategy": job.collision_strategy},
            "schedules": [{"cron": s.cron(every), "timezone": timezone, "slug": s.slug, "active": True}
                          for s in job.schedules],
        })
    document = {
        "name": "khanza-sync",
        "prefect-version": "3.9.1",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $KHANZA_SYNC_HOME }}"}}],
        "deployments": deployments,
    }
    header = [
        "GENERATED by `khanza-sync deploy --write-prefect-yaml` from khanza_sync/deployments.py: edit that, not this.",
        f"Hospital code {code!r}, time zone {timezone}. Several hospitals on one server: `khanza-sync deploy`.",
        "`prefect deploy --all` from the project folder deploys these; create the pool first",
        f"(prefect work-pool create {pool} --type process). Workers run the code from KHANZA_SYNC_HOME",
        "(the pull step), so set it to the checkout.",
        "Schedules (hospital time):",
        *(f"  {job.flow} {s.slug}: {s.note(every)}" for job in JOBS for s in job.schedules),
    ]
    return "".join(f"# {line}\n" for line in header) + yaml.safe_dump(document, sort_keys=False, width=110)


# ---------------------------------------------------------------- khanza-sync deploy


class DeployRefused(RuntimeError):
    pass


def ensure_work_pool(client, name: str) -> bool:
    """The hospital's process pool; True if it was created now."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=name, type="process",
                                               base_job_template=ProcessWorker.get_default_base_job_template()))
        return True
    if pool.type != "process":
        raise DeployRefused(f"work pool {name!r} exists with type {pool.type!r}, expected 'process'")
    return False


def check_ownership(client, settings: Settings, force: bool) -> None:
    """Refuse to overwrite this code's deployments when they point at another Khanza database (two hospitals
    given the same HOSPITAL_CODE), unless forced (e.g. Khanza moved to a new server)."""
    from prefect.exceptions import ObjectNotFound

    mine = khanza_db_tag(settings)
    for job in JOBS:
        try:
            existing = client.read_deployment_by_name(f"{job.flow}/{job.deployment_name(settings.hospital_code)}")
        except ObjectNotFound:
            continue
        theirs = [t for t in existing.tags if t.startswith("khanza-db:")]
        if theirs and theirs != [mine] and not force:
            raise DeployRefused(
                f"deployment {existing.name!r} runs against {theirs[0].removeprefix('khanza-db:')}, this environment "
                f"against {mine.removeprefix('khanza-db:')}: is HOSPITAL_CODE={settings.hospital_code!r} another "
                "hospital's code? Use a different code, or --force if this hospital's Khanza really moved.")


# What releases before per-hospital names (0.3 and earlier) deployed with `prefect deploy --all`: deployments named
# like their flow ("sync-registrations/sync-registrations") in the one work pool "khanza-sync". `deploy` removes
# exactly those: a deployment counts as ours only if its name, entrypoint and pool are all what that prefect.yaml
# wrote; the pool goes only if it is a process pool left empty. Anything else of those names stays, and is reported.
LEGACY_WORK_POOL = "khanza-sync"


def remove_legacy(client) -> tuple[list[str], list[str]]:
    """Delete what earlier releases deployed under un-suffixed names (see LEGACY_WORK_POOL). Returns (removed,
    left alone) descriptions."""
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
    from prefect.exceptions import ObjectNotFound

    removed, kept = [], []
    for job in JOBS:
        name = f"{job.flow}/{job.flow}"
        try:
            old = client.read_deployment_by_name(name)
        except ObjectNotFound:
            continue
        if old.entrypoint == job.entrypoint and old.work_pool_name == LEGACY_WORK_POOL:
            client.delete_deployment(old.id)
            removed.append(f"deployment {name}")
        else:
            kept.append(f"deployment {name} (pool {old.work_pool_name!r}, entrypoint {old.entrypoint!r}: "
                        "not made by an earlier khanza-sync)")
    try:
        pool = client.read_work_pool(LEGACY_WORK_POOL)
    except ObjectNotFound:
        return removed, kept
    left = client.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[LEGACY_WORK_POOL])))
    if pool.type == "process" and not left:
        client.delete_work_pool(LEGACY_WORK_POOL)
        removed.append(f"work pool {LEGACY_WORK_POOL}")
    else:
        kept.append(f"work pool {LEGACY_WORK_POOL} ({len(left)} other deployment(s) use it)")
    return removed, kept


def deploy(settings: Settings, *, force: bool = False
           ) -> tuple[list[tuple[str, str]], tuple[list[str], list[str]]]:
    """Create or update this hospital's pool, Khanza write limit and deployments (idempotent), and remove what an
    earlier release deployed under its old names (`remove_legacy`). Returns (full deployment name, id) pairs and
    (removed, left alone) descriptions of the old names."""
    from prefect import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType, RunnerDeployment
    from prefect.schedules import Cron

    from tasks.limits import ensure_khanza_write_limit

    code, tz = settings.hospital_code, settings.hospital_timezone
    with get_client(sync_client=True) as client:
        check_ownership(client, settings, force)
        ensure_work_pool(client, settings.work_pool_name)
        legacy = remove_legacy(client)
    ensure_khanza_write_limit(settings.khanza_concurrency_limit)

    done = []
    for job in JOBS:
        deployment = RunnerDeployment.from_flow(
            job.load_flow(), job.deployment_name(code),
            schedules=[Cron(s.cron(settings.sync_every_minutes), timezone=tz, slug=s.slug) for s in job.schedules],
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=job.collision_strategy),
            description=job.describe(code),
            tags=tags(settings),
            work_pool_name=settings.work_pool_name,
            entrypoint_type=EntrypointType.MODULE_PATH)
        deployment_id = deployment.apply()
        done.append((f"{job.flow}/{deployment.name}", str(deployment_id)))
    return done, legacy


# ---------------------------------------------------------------- khanza-sync worker

# What a hospital's worker must get from its own environment file, not from a .env it happens to find: these
# say which hospital's databases its flow runs touch.
WORKER_REQUIRED_ENV = ("HOSPITAL_CODE", "KHANZA_DB_NAME", "WEBSITE_DB_URL")


def worker_command(settings: Settings, *, healthcheck: bool = True, name: str | None = None) -> list[str]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    command = [prefect, "worker", "start", "--pool", settings.work_pool_name, "--type", "process",
               "--name", name or f"khanza-sync-{settings.hospital_code}-{socket.gethostname()}"]
    return command + (["--with-healthcheck"] if healthcheck else [])


def missing_worker_env(environ=os.environ) -> list[str]:
    return [key for key in WORKER_REQUIRED_ENV if not environ.get(key)]
