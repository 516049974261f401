"""Follow mode: registrations synced within seconds of their arrival, by the hourly flow and the plain loop, on
SQLite (poll), PostgreSQL with the trigger (LISTEN) and without it (poll), MariaDB (poll); Khanza going away and
coming back; the LISTEN connection killed, the website MariaDB's connections killed; a scheduled sync run beside
it without a double write."""
from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from khanza_sync.error_codes import ErrorCode
from tests.faults.helpers import registrations
from tests.faults.proxy import FaultProxy
from tests.follow.conftest import FollowEnv, LogRecords, configure, following, following_flow
from tests.support import MYSQL_WEB_TEST_DB, PG_ADMIN_URL, PG_TEST_DB, mysql_server_url


def _task_runs(flow_run_id) -> int:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def count():
        async with get_client() as client:
            return len(await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))))
    return asyncio.run(count())


def _settled_task_runs(flow_run_id, timeout: float = 60) -> int:
    """The flow run's task-run count once three reads a second apart agree (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    counts = [_task_runs(flow_run_id)]
    while len(counts) < 3 or len(set(counts[-3:])) > 1:
        assert time.monotonic() < deadline, f"task runs still changing: {counts}"
        time.sleep(1)
        counts.append(_task_runs(flow_run_id))
    return counts[-1]


def _flow_run_name(flow_run_id) -> str:
    from prefect import get_client

    async def read():
        async with get_client() as client:
            return (await client.read_flow_run(flow_run_id)).name
    return asyncio.run(read())


def _current_flow_run_id(name_prefix: str = "follow "):
    """The newest flow run named by the follow flow (it names itself at its start)."""
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async def read():
        async with get_client() as client:
            runs = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=5)
            return next((r.id for r in runs if r.name.startswith(name_prefix)), None)
    return asyncio.run(read())


def test_hourly_flow_syncs_registrations_as_they_arrive(follow_env: FollowEnv, request):
    variant = request.node.callspec.params["follow_store"]
    with following_flow(seconds=120) as out:
        first = follow_env.insert(registrations(1, prefix="first"))
        follow_env.wait_synced(first, timeout=30)  # the flow is up (the first batch also warms the checks)
        run_id = _current_flow_run_id()
        ids = list(first)
        for i in range(2):  # one at a time, each synced on its own (how fast: bench/latency.py)
            reg = registrations(1, start=i, prefix="arrive")
            ids += follow_env.insert(reg)
            follow_env.wait_synced([reg[0]["id"]], timeout=15)

        # Wake-ups that find nothing due (PostgreSQL: the trigger fires for any insert) create no task run: what one
        # arrival's burst adds is measured, then no-op rows and one more arrival must add exactly that again.
        # (Task runs reach the API a little after they ran: counts are read once they have settled.)
        before = _settled_task_runs(run_id)
        probe = registrations(1, start=2, prefix="arrive")
        ids += follow_env.insert(probe)
        follow_env.wait_synced([probe[0]["id"]], timeout=15)
        per_burst = _settled_task_runs(run_id) - before
        assert per_burst > 0
        follow_env.insert([dict(r, status="rejected", error_code="NIK_INVALID") for r in registrations(2, prefix="noop")])
        last = registrations(1, start=3, prefix="arrive")
        ids += follow_env.insert(last)
        follow_env.wait_synced([last[0]["id"]], timeout=15)
        assert _settled_task_runs(run_id) - before == 2 * per_burst
    state = out["state"]
    assert state.is_completed(), state.message
    assert state.message.startswith("5 registrations: created=5"), state.message
    data = state.result()
    assert data["mode"] == ("listen" if variant == "postgresql" else "poll")
    report = follow_env.audit(ids)
    assert report.synced == 5 and not report.problems, report.summary()
    name = _flow_run_name(run_id)
    assert name.startswith("follow ") and "· 5 created, 0 duplicate, 0 rejected" in name, name


@pytest.fixture
def proxy():
    upstream = (os.environ["KHANZA_DB_HOST"], int(os.environ["KHANZA_DB_PORT"]))  # tests.support's defaults
    with FaultProxy(upstream, max_lifetime=120) as running:
        yield running


@pytest.mark.parametrize("follow_store", ["sqlite", "postgresql"], indirect=True)
def test_khanza_away_and_back(follow_env: FollowEnv, proxy, monkeypatch):
    """Khanza refuses connections: the follow loop defers (KHANZA_UNREACHABLE, the usual backoff), keeps
    running, and syncs everything by itself once Khanza accepts again."""
    configure(monkeypatch, follow_env.website_url, khanza_port=proxy.port)
    proxy.refuse()
    with following(max_seconds=60) as out:
        ids = follow_env.insert(registrations(4, prefix="away"))

        def deferred():  # Khanza did not answer the loop's question: deferred without a batch (no attempt)
            rows = follow_env.rows(ids)
            return (rows["error_code"] == ErrorCode.KHANZA_UNREACHABLE.value).all()
        follow_env.wait_for(deferred, timeout=20, what="every registration deferred KHANZA_UNREACHABLE")
        assert (follow_env.rows(ids)["status"] == "pending").all()
        assert follow_env.rows(ids)["next_attempt_at"].notna().all()
        late = follow_env.insert(registrations(2, start=10, prefix="away"))  # arrivals while Khanza is down
        time.sleep(1.0)
        proxy.accept()
        follow_env.wait_synced(ids + late, timeout=30)
    stats = out["stats"]
    assert stats.offline_episodes >= 1 and not stats.khanza_offline, stats.line()
    assert stats.summary.by_outcome["created"] == 6 and not stats.errors, stats.line()
    report = follow_env.audit(ids + late)
    assert report.synced == 6 and not report.problems, report.summary()
    assert (follow_env.rows(ids + late)["error_code"].isna()).all()


@pytest.mark.parametrize("follow_store", ["postgresql"], indirect=True)
def test_listen_connection_killed_and_website_connections_dropped(follow_env: FollowEnv):
    """Every connection to the website database is terminated (as a restart does): the loop reconnects LISTEN
    with backoff and goes on syncing, without a restart of the process."""
    with LogRecords() as log, following(max_seconds=60) as out:
        ids = follow_env.insert(registrations(1, prefix="before"))
        follow_env.wait_synced(ids, timeout=30)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": PG_TEST_DB}).scalar()
        admin.dispose()
        assert killed >= 1
        time.sleep(0.5)
        after = follow_env.insert(registrations(2, start=5, prefix="after"))
        follow_env.wait_synced(after, timeout=30)
        follow_env.wait_for(lambda: log.has("website.notify", "LISTEN online_registrations re-established"),
                            timeout=30, what="LISTEN re-established")
        late = follow_env.insert(registrations(1, start=9, prefix="after"))  # woken by LISTEN again
        follow_env.wait_synced(late, timeout=30)
        after += late
    stats = out["stats"]
    assert stats.mode == "listen" and stats.reconnects >= 1, stats
    report = follow_env.audit(ids + after)
    assert report.synced == 4 and not report.problems, report.summary()


@pytest.mark.parametrize("follow_store", ["mariadb"], indirect=True)
def test_website_mariadb_connections_killed(follow_env: FollowEnv):
    """Every connection to the website's MariaDB database is killed (as a restart or a hosting provider's idle
    reaper does): the polling loop goes on syncing, without a restart of the process."""
    bursts: list[int] = []
    with following(max_seconds=60, on_burst=lambda st: bursts.append(st.bursts)) as out:
        ids = follow_env.insert(registrations(1, prefix="before"))
        follow_env.wait_synced(ids, timeout=30)
        follow_env.wait_for(lambda: bursts, timeout=30, what="the first burst over")  # its connections idle
        admin = create_engine(mysql_server_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            victims = conn.execute(text("SELECT id FROM information_schema.PROCESSLIST WHERE db = :db "
                                        "AND id <> CONNECTION_ID()"), {"db": MYSQL_WEB_TEST_DB}).scalars().all()
            for victim in victims:
                conn.execute(text(f"KILL CONNECTION {int(victim)}"))
        admin.dispose()
        assert victims
        after = follow_env.insert(registrations(2, start=5, prefix="after"))
        follow_env.wait_synced(after, timeout=30)
    stats = out["stats"]
    assert stats.mode == "poll" and not stats.errors, stats.line()
    report = follow_env.audit(ids + after)
    assert report.synced == 3 and not report.problems, report.summary()


@pytest.mark.parametrize("follow_store", ["postgresql", "sqlite", "mariadb"], indirect=True)
def test_follow_beside_scheduled_sync_runs_never_writes_twice(follow_env: FollowEnv):
    """The follow loop and scheduled sync runs at the same time, while registrations keep arriving: each
    registration is created exactly once (ledger unique, no duplicate visit, no shared no_reg)."""
    from flows.sync_registrations import sync_registrations

    backlog = follow_env.insert(registrations(30, prefix="backlog"))
    arriving: list[str] = []

    def arrive():
        for i in range(20):
            arriving.extend(follow_env.insert(registrations(1, start=100 + i, prefix="live")))
            time.sleep(0.1)

    with following(max_seconds=90, batch_size=5) as out:
        feeder = threading.Thread(target=arrive)
        feeder.start()
        states = [sync_registrations(batch_size=5, return_state=True) for _ in range(2)]
        feeder.join()
        follow_env.wait_synced(backlog + arriving, timeout=30)
        time.sleep(0.5)
    stats = out["stats"]
    assert all(s.is_completed() for s in states), [s.message for s in states]
    by_sync = sum(s.result()["by_outcome"].get("created", 0) for s in states)
    by_follow = stats.summary.by_outcome["created"]
    assert by_sync + by_follow == 50, (by_sync, by_follow)  # each created once, by one of them
    report = follow_env.audit(backlog + arriving)
    assert report.synced == 50 and not report.problems, report.summary()
    with follow_env.khanza.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT registration_id) FROM khanza_sync_ledger")).one() == (50, 50)
        assert conn.execute(text("SELECT COUNT(*) FROM reg_periksa")).scalar_one() == 50
