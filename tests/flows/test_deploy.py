"""`prefect deploy --all` against a real local `prefect server` (its own PREFECT_HOME and port): every
deployment in prefect.yaml (generated from khanza_sync/deployments.py for the default hospital code) is
accepted, with its schedules, time zone, work pool and concurrency limit. Several hospitals through
`khanza-sync deploy`: tests/deploy/test_multi_hospital.py.

Slow (~30-60 s: a server start), but part of `make test`: a prefect.yaml the server refuses must not land.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from khanza_sync.deployments import JOBS
from khanza_sync.settings import PROJECT_ROOT
from tests.support import local_prefect_server

PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    with local_prefect_server(tmp_path_factory.mktemp("prefect_home"), KHANZA_SYNC_HOME=str(PROJECT_ROOT)) as env:
        yield env


def run(env, *args) -> subprocess.CompletedProcess:
    result = subprocess.run([PREFECT, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"prefect {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_prefect_deploy_all_succeeds(local_server):
    env = local_server
    run(env, "work-pool", "create", "khanza-sync-default", "--type", "process")
    run(env, "gcl", "create", "khanza-writes-default", "--limit", "1")
    run(env, "--no-prompt", "deploy", "--all")

    api = env["PREFECT_API_URL"]
    deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()
    by_name = {d["name"]: d for d in deployments}
    expected = [d["name"] for d in yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]]
    assert sorted(by_name) == sorted(expected)
    assert set(by_name) == {f"{job.flow}-default" for job in JOBS}
    for job in JOBS:
        dep = by_name[f"{job.flow}-default"]
        assert dep["work_pool_name"] == "khanza-sync-default", job.flow
        assert dep["concurrency_limit"] == 1 or (dep.get("global_concurrency_limit") or {}).get("limit") == 1
        assert dep["concurrency_options"]["collision_strategy"] == job.collision_strategy, job.flow
        assert "hospital:default" in dep["tags"], job.flow
        assert sorted((s["slug"], s["schedule"]["cron"], s["schedule"]["timezone"]) for s in dep["schedules"]) == \
            sorted((s.slug, s.cron(), "Asia/Jakarta") for s in job.schedules), job.flow
    assert by_name["backfill-registrations-default"]["schedules"] == []
    assert [s["schedule"]["cron"] for s in by_name["publish-master-data-default"]["schedules"]] == ["0 2 * * *"]
    schema = by_name["backfill-registrations-default"]["parameter_openapi_schema"]
    assert set(schema["required"]) == {"start", "end"}


def legacy_prefect_yaml(pool_of: dict[str, str]) -> str:
    """prefect.yaml as releases before per-hospital names wrote it: deployments named like their flow, in one pool
    (`pool_of` moves a flow's deployment to another pool: what another tool, not khanza-sync, made)."""
    deployments = [{"name": job.flow, "entrypoint": job.entrypoint, "parameters": {},
                    "work_pool": {"name": pool_of.get(job.flow, "khanza-sync"), "job_variables": {}}}
                   for job in JOBS]
    return yaml.safe_dump({"name": "khanza-sync", "prefect-version": "3.9.1", "deployments": deployments})


def test_deploy_removes_an_earlier_release_s_names_and_only_those(local_server, tmp_path):
    env = dict(local_server)
    for pool in ("khanza-sync", "reports"):
        run(env, "work-pool", "create", pool, "--type", "process")
    old = tmp_path / "legacy.yaml"
    # publish-master-data's old name lives in another tool's pool: it is not ours, so it stays.
    old.write_text(legacy_prefect_yaml({"publish-master-data": "reports"}))
    run(env, "--no-prompt", "deploy", "--all", "--prefect-file", str(old))
    api = env["PREFECT_API_URL"]
    names = lambda: {d["name"]: d for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()}  # noqa: E731
    assert {job.flow for job in JOBS} <= set(names())

    env.update(HOSPITAL_CODE="legacy", KHANZA_DB_NAME="khanza_legacy", WEBSITE_DB_URL=f"sqlite:///{tmp_path}/w.db",
               ALERT_URLS="")
    khanza_sync = str(Path(sys.executable).with_name("khanza-sync"))
    result = subprocess.run([khanza_sync, "deploy"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    after = names()
    assert not {job.flow for job in JOBS if job.flow != "publish-master-data"} & set(after), sorted(after)
    assert after["publish-master-data"]["work_pool_name"] == "reports"
    assert {f"{job.flow}-legacy" for job in JOBS} <= set(after)
    pools = {p["name"] for p in httpx.post(f"{api}/work_pools/filter", json={}, timeout=30).json()}
    assert "khanza-sync" not in pools and {"reports", "khanza-sync-legacy"} <= pools
    assert "removed work pool khanza-sync" in result.stdout
    assert "left alone: deployment publish-master-data/publish-master-data" in result.stdout

    # A second deploy finds nothing of the old names to remove, and still leaves the other tool's deployment.
    again = subprocess.run([khanza_sync, "deploy"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "removed" not in again.stdout, again.stdout + again.stderr
    assert "publish-master-data" in names()
