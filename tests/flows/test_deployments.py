"""Every prefect.yaml entrypoint must import and name a real flow, so a broken deployment cannot land."""
from __future__ import annotations

import importlib

import yaml
from prefect import Flow

from khanza_sync.settings import PROJECT_ROOT


def deployments() -> list[dict]:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]


def test_every_entrypoint_is_a_flow():
    assert deployments(), "prefect.yaml has no deployments"
    for deployment in deployments():
        path, name = deployment["entrypoint"].split(":")
        assert (PROJECT_ROOT / path).is_file(), deployment["entrypoint"]
        # Imported as the package module the installed project provides (what a worker loads).
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, name), Flow), deployment["entrypoint"]


def test_schedules_use_hospital_timezone_and_limits():
    for deployment in deployments():
        for schedule in deployment.get("schedules") or []:
            assert schedule.get("timezone") == "Asia/Jakarta", deployment["name"]
    sync = next(d for d in deployments() if d["name"] == "sync-registrations")
    assert sync["concurrency_limit"]["limit"] == 1
    assert sync["work_pool"]["name"]
