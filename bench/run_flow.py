"""Child process of the benchmark: runs the REAL `flows.sync_registrations` flow once over the pending
backlog, then once more with nothing pending, and writes timings and memory as JSON.

    (started by bench/run_bench.py with the bench databases in the environment)
    python bench/run_flow.py OUT.json [--profile PROF]

Stage times come from wrapping, in this process only, the plain functions the Prefect tasks run
(`Task.fn`) and `khanza.registration.load_batch`; nothing in the project is edited. Prefect's own start
(ephemeral server, imports) happens before the clock starts and is reported separately.
"""
from __future__ import annotations

import functools
import json
import sys
import time
import types
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

T_PROCESS = time.perf_counter()


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


STAGES: dict[str, list[float]] = defaultdict(list)
SQL: dict[str, int] = defaultdict(int)
SQL_TIME: dict[str, float] = defaultdict(float)
SQL_COUNT: dict[str, int] = defaultdict(int)


@contextmanager
def clocked(result: dict, key: str):
    """Wall time of the block, in seconds, as result[key]."""
    t = time.perf_counter()
    yield
    result[key] = time.perf_counter() - t


def timed(name: str, fn):
    """`fn`, its calls timed into STAGES[name]. The wrapper keeps `fn`'s module globals: Prefect resolves a
    flow's parameter annotations (e.g. BatchSize) in the globals of the function it was given."""
    clock, stages = time.perf_counter, STAGES

    def wrapper(*args, **kwargs):
        t = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            stages[name].append(clock() - t)
    in_place = types.FunctionType(wrapper.__code__, getattr(fn, "__globals__", globals()), wrapper.__name__,
                                  wrapper.__defaults__, wrapper.__closure__)
    return functools.wraps(fn)(in_place)


def install_sql_counters(detail: bool) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):
        db = conn.engine.dialect.name
        SQL[db] += 1
        if detail:
            conn.info["_bench_t"] = time.perf_counter()

    if detail:
        @event.listens_for(Engine, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):
            key = f"{conn.engine.dialect.name}: " + " ".join(statement.split())[:90]
            SQL_TIME[key] += time.perf_counter() - conn.info.pop("_bench_t", time.perf_counter())
            SQL_COUNT[key] += 1

    @event.listens_for(Engine, "commit")
    def _commit(conn):
        SQL[conn.engine.dialect.name + " commits"] += 1


def main() -> None:
    out_path = Path(sys.argv[1])
    profile_path = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
    result: dict = {}

    with clocked(result, "import_s"):
        import great_expectations  # noqa: F401  (the flow imports it on first use; done here, outside the clock)
        import pandas  # noqa: F401
        from prefect import flow

        import flows.sync_registrations as sync_module
        import tasks.check
        import tasks.extract
        import tasks.load
        import tasks.map
        import tasks.write_back
        from khanza import registration

    @flow(name="bench-warmup", persist_result=False)
    def warmup():
        return None

    with clocked(result, "prefect_start_s"):
        warmup()
    result["rss_before_flow_mb"] = rss_mb("VmRSS")

    # Timing wrappers around the plain functions the tasks run (this process only).
    for name, task in [("extract", tasks.extract.extract_pending), ("data_checks", tasks.check.check_registrations),
                       ("map", tasks.map.map_registrations), ("load_task", tasks.load.load_into_khanza),
                       ("write_back", tasks.write_back.write_back)]:
        task.fn = timed(name, task.fn)
    registration.load_batch = timed("load_batch", registration.load_batch)
    import logging

    import prefect.concurrency._sync as conc_sync
    conc_sync.acquire_concurrency_slots_with_lease = timed("gcl_acquire", conc_sync.acquire_concurrency_slots_with_lease)
    conc_sync.release_concurrency_slots_with_lease = timed("gcl_release", conc_sync.release_concurrency_slots_with_lease)
    logging.getLogger("prefect.concurrency").setLevel(logging.DEBUG)
    import tasks.limits
    tasks.limits.ensure_khanza_write_limit = timed("ensure_limit", tasks.limits.ensure_khanza_write_limit)
    sync_module.artifacts.publish_sync = timed("artifacts", sync_module.artifacts.publish_sync)
    body = sync_module.sync_registrations.fn
    sync_module.sync_registrations.fn = timed("flow_body", body)
    install_sql_counters(detail=profile_path is not None)

    profiler = None
    if profile_path:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    with clocked(result, "flow_wall_s"):
        state = sync_module.sync_registrations(return_state=True)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_path)
    result["flow_state"] = state.type.value
    result["flow_message"] = state.message
    result["stages"] = {k: {"total_s": sum(v), "calls": len(v), "max_s": max(v), "each": [round(x, 3) for x in v] if len(v) <= 40 else None} for k, v in STAGES.items()}
    result["sql"] = dict(SQL)
    result["sql_detail"] = sorted(([k, SQL_COUNT[k], v] for k, v in SQL_TIME.items()), key=lambda r: -r[2])[:40]
    result["peak_rss_mb"] = rss_mb("VmHWM")

    # A scheduled run with nothing pending.
    STAGES.clear()
    SQL.clear()
    with clocked(result, "empty_wall_s"):
        empty = sync_module.sync_registrations(return_state=True)
    result["empty_state"] = empty.type.value
    result["empty_stages"] = {k: {"total_s": sum(v), "calls": len(v)} for k, v in STAGES.items()}
    result["empty_sql"] = dict(SQL)
    result["empty_flow_run_s"] = _flow_run_seconds(empty)
    result["peak_rss_mb_end"] = rss_mb("VmHWM")
    out_path.write_text(json.dumps(result, default=str, indent=1))


def _flow_run_seconds(state) -> float | None:
    """Running -> Completed time of the flow run as Prefect recorded it."""
    try:
        from prefect import get_client
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(state.state_details.flow_run_id)
        return (run.end_time - run.start_time).total_seconds()
    except Exception:  # noqa: BLE001 - informational only
        return None


if __name__ == "__main__":
    main()
