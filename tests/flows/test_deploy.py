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
from tests.support import free_port, stop_process_group, wait_for

PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("prefect_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api", DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               KHANZA_SYNC_HOME=str(PROJECT_ROOT))
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", proc, home / "server.log", "prefect server")
        yield env
    finally:
        stop_process_group(proc)
        log.close()


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
            sorted((s.slug, s.cron, "Asia/Jakarta") for s in job.schedules), job.flow
    assert by_name["backfill-registrations-default"]["schedules"] == []
    assert [s["schedule"]["cron"] for s in by_name["publish-master-data-default"]["schedules"]] == ["0 2 * * *"]
    schema = by_name["backfill-registrations-default"]["parameter_openapi_schema"]
    assert set(schema["required"]) == {"start", "end"}
