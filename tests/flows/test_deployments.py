"""Every deployment entrypoint must import and name a real flow, so a broken deployment cannot land; prefect.yaml
is what khanza_sync/deployments.py (the one list of deployments, schedules and limits) generates."""
from __future__ import annotations

import importlib

import pytest
import yaml
from prefect import Flow

from khanza_sync import deployments as deps
from khanza_sync.settings import PROJECT_ROOT, Settings


def prefect_yaml_deployments() -> list[dict]:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]


def test_every_entrypoint_is_a_flow():
    assert prefect_yaml_deployments(), "prefect.yaml has no deployments"
    entrypoints = {d["entrypoint"] for d in prefect_yaml_deployments()} | {job.entrypoint for job in deps.JOBS}
    for entrypoint in entrypoints:
        path, name = entrypoint.split(":")
        assert (PROJECT_ROOT / path).is_file(), entrypoint
        # Imported as the package module the installed project provides (what a worker loads).
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, name), Flow), entrypoint
    for job in deps.JOBS:  # `khanza-sync deploy` deploys module entrypoints: the same flow objects
        module, name = job.module_entrypoint.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is job.load_flow(), job.module_entrypoint
        assert job.load_flow().name == job.flow


def test_prefect_yaml_is_generated_from_the_deployments_table():
    assert (PROJECT_ROOT / "prefect.yaml").read_text() == deps.prefect_yaml(), (
        "prefect.yaml differs from khanza_sync/deployments.py: regenerate it with "
        "`HOSPITAL_CODE=default HOSPITAL_TIMEZONE=Asia/Jakarta khanza-sync deploy --write-prefect-yaml prefect.yaml`")


def test_generated_deployments_carry_code_pool_timezone_and_limit():
    text = deps.prefect_yaml("rsj-2", "Asia/Jayapura")
    generated = yaml.safe_load(text)["deployments"]
    assert [d["name"] for d in generated] == [f"{job.flow}-rsj-2" for job in deps.JOBS]
    for d in generated:
        assert d["work_pool"]["name"] == "khanza-sync-rsj-2"
        assert d["concurrency_limit"]["limit"] == 1
        assert "hospital:rsj-2" in d["tags"]
        assert all(s["timezone"] == "Asia/Jayapura" for s in d["schedules"])
    assert "default" not in text  # nothing of the default hospital's names
    sync = next(d for d in generated if d["name"].startswith("sync-registrations"))
    assert sync["concurrency_limit"]["collision_strategy"] == "ENQUEUE"


def test_runs_per_day_sizes_the_retention():
    # 161 scheduled runs a day per hospital with the 15-minute backstop sync (577 with SYNC_EVERY_MINUTES=2): what
    # deploy/README.md sizes the Prefect database's retention for.
    assert deps.runs_per_day() == {"sync-registrations": 72, "reconcile-queue-numbers": 64,
                                   "publish-master-data": 1, "backfill-registrations": 0, "follow-registrations": 24,
                                   "requeue-registrations": 0, "resolve-patient-conflict": 0}
    assert deps.runs_per_day(2)["sync-registrations"] == 488


def test_sync_every_minutes_sets_the_backstop_cadence():
    assert Settings(_env_file=None).sync_every_minutes == 15  # follow mode is deployed too: the sync is its backstop
    sync = next(d for d in yaml.safe_load(deps.prefect_yaml("rsj-2", "Asia/Jakarta", 2))["deployments"]
                if d["name"].startswith("sync-registrations"))
    assert {s["slug"]: s["cron"] for s in sync["schedules"]} == {"opening-hours": "*/2 5-20 * * *",
                                                                 "overnight": "0 0-4,21-23 * * *"}
    for bad in (0, 31):
        with pytest.raises(ValueError):
            Settings(_env_file=None, sync_every_minutes=bad)


@pytest.mark.parametrize("code", ["rsi", "rs-2", "a", "abcdefghijklmnop"])
def test_hospital_code_names_pool_and_limit(code):
    s = Settings(_env_file=None, hospital_code=code)
    assert (s.work_pool_name, s.khanza_concurrency_limit) == (f"khanza-sync-{code}", f"khanza-writes-{code}")


@pytest.mark.parametrize("code", ["RSI", "-rs", "rs-", "rs_2", "", "abcdefghijklmnopq", "rs 2"])
def test_bad_hospital_codes_are_refused(code):
    with pytest.raises(ValueError):
        Settings(_env_file=None, hospital_code=code)


def test_explicit_limit_name_wins():
    assert Settings(_env_file=None, hospital_code="rsi", khanza_concurrency_limit="shared").khanza_concurrency_limit == "shared"


def test_worker_needs_its_hospital_from_its_own_environment():
    assert deps.missing_worker_env({"HOSPITAL_CODE": "rsi"}) == ["KHANZA_DB_NAME", "WEBSITE_DB_URL"]
    command = deps.worker_command(Settings(_env_file=None, hospital_code="rsi"), name="w")
    assert command[1:] == ["worker", "start", "--pool", "khanza-sync-rsi", "--type", "process", "--name", "w",
                           "--with-healthcheck"]
