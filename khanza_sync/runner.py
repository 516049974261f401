"""`khanza-sync runner`: one long-lived process per hospital that runs its deployments' flow runs in-process.

Why not a process worker or `prefect serve`: both start a new Python interpreter for every flow run (Prefect 3.9's
Runner too), so each 2-minute sync pays ~4 CPU-s of imports and data-check set-up. Here the imports, the data-check
suite (data_checks/suite.py caches it per process, behind a lock) and the database engines are paid once.

How a run is taken, so that a runner and a worker (or two runners) never both run one:
- poll the server for flow runs of this hospital's work pool (khanza-sync-CODE) that are Scheduled (incl. Late and
  AwaitingConcurrencySlot) and due;
- propose Pending, as Prefect's workers do (workers/base.py `_propose_pending_state`); the server accepts it once
  (PreventPendingTransitions aborts Pending from Pending/Running/Cancelling), and it is on this transition that
  the server enforces the deployment concurrency limit (SecureFlowConcurrencySlots: ENQUEUE answers with a new
  Scheduled "AwaitingConcurrencySlot" state, CANCEL_NEW with Cancelled). Only an accepted Pending is run;
- run it with `prefect.flow_engine.run_flow` in a thread of this process. The engine sets Running and the final
  state, keeps the deployment concurrency lease alive and sends the run's logs to the server as a worker's
  subprocess would.

Failures: a flow that raises ends Failed (the engine reports it); anything escaping the engine is reported as
Crashed by the runner, which carries on. Cancel in the UI (Cancelling): the run's thread gets a `RunCancelled`
exception at its next Python instruction (a call blocked in a database driver finishes first; a Khanza write is one
transaction, so it commits or rolls back whole, as when a worker's process is killed), then the run is Cancelled.
SIGTERM/SIGINT: no new runs; running ones get `--stop-seconds` to finish, then are interrupted and marked Crashed
(what a worker's killed subprocess shows), and the process exits 0.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID

from khanza_sync.deployments import JOBS, Job
from khanza_sync.settings import Settings

log = logging.getLogger("khanza_sync.runner")
HEARTBEAT = 30.0  # seconds, as Prefect's workers (PREFECT_WORKER_HEARTBEAT_SECONDS)


def _termination_signal():
    from prefect.exceptions import TerminationSignal

    return TerminationSignal


class RunCancelled(_termination_signal()):
    """Raised inside a run's thread when the run was cancelled. A BaseException (flow code that catches Exception
    to keep going, like the follow loop, does not swallow it), and Prefect's TerminationSignal: with the "cancel"
    intent set (`_mark_cancel_intent`) the engine ends the run Cancelled as for a runner's cancel signal, rather
    than Crashed (which alerts watch)."""

    def __init__(self):
        super().__init__(signal.SIGTERM)


def _mark_cancel_intent(on: bool) -> None:
    """The engine reads the reason for a TerminationSignal from prefect._internal.control_listener (flow_engine.py
    `_termination_intent`); Prefect's own runner sets it there before signalling a run's process. Private in 3.9:
    tests/deploy/test_runner.py checks a cancelled run still ends Cancelled."""
    from prefect._internal import control_listener

    control_listener._set_intent("cancel") if on else control_listener.clear_intent()


class RunnerStopping(BaseException):
    """Raised inside a run's thread when the runner stops and the run did not finish within --stop-seconds."""


def _interrupt(thread: threading.Thread, exc: type[BaseException]) -> bool:
    """Raise `exc` in `thread` at its next Python bytecode (CPython's PyThreadState_SetAsyncExc)."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))
    return done == 1


@dataclass
class Active:
    flow_run_id: UUID
    name: str
    thread: threading.Thread
    interrupted: type[BaseException] | None = None
    started: float = field(default_factory=time.monotonic)


class Runner:
    def __init__(self, settings: Settings, *, name: str | None = None, poll_seconds: float = 10.0,
                 limit: int = 4, stop_seconds: float = 30.0, max_runs: int | None = None):
        self.settings = settings
        self.code = settings.hospital_code
        self.pool = settings.work_pool_name
        self.name = name or f"khanza-sync-runner-{self.code}-{socket.gethostname()}"
        self.poll_seconds = poll_seconds
        self.limit = limit  # runs at once (different deployments; one deployment runs one at a time anyway)
        self.stop_seconds = stop_seconds
        self.max_runs = max_runs  # stop after taking this many runs (benchmarks, tests); None: run until stopped
        self.taken = 0
        self.active: dict[UUID, Active] = {}
        self.stopping = threading.Event()
        self._jobs_by_deployment: dict[UUID, Job | None] = {}
        self._flows: dict[str, object] = {}

    # ------------------------------------------------------------ main loop

    def run(self) -> int:
        from prefect import get_client

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        log.info("runner %s (pid %d) for hospital %r: polling work pool %s every %g s, up to %d runs at once",
                 self.name, os.getpid(), self.code, self.pool, self.poll_seconds, self.limit)
        next_heartbeat = 0.0
        with get_client(sync_client=True) as client:
            while not self.stopping.is_set():
                try:
                    if time.monotonic() >= next_heartbeat:  # the pool shows it as a worker, and Ready
                        client.send_worker_heartbeat(self.pool, self.name, heartbeat_interval_seconds=HEARTBEAT)
                        next_heartbeat = time.monotonic() + HEARTBEAT
                    self._reap(client)
                    self._watch_cancellations(client)
                    if self.max_runs is None or self.taken < self.max_runs:
                        self._take_due_runs(client)
                    elif not self.active:
                        log.info("runner %s: %d runs taken (--max-runs), exiting", self.name, self.taken)
                        break
                except Exception as error:  # noqa: BLE001  (server unreachable: say so, keep polling)
                    log.warning("runner: poll failed (%s: %s); retrying in %g s", type(error).__name__, error,
                                self.poll_seconds)
                self.stopping.wait(self.poll_seconds)
            self._stop(client)
        from tasks.resources import dispose_all

        dispose_all()  # the database pools the runs shared (tasks/resources.py keeps them per process)
        log.info("runner %s stopped", self.name)
        return 0

    def _take_due_runs(self, client) -> None:
        from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterNextScheduledStartTime,
                                                    FlowRunFilterState, FlowRunFilterStateType, WorkPoolFilter,
                                                    WorkPoolFilterName)
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        free = self.limit - len(self.active)
        if free <= 0:
            return
        due = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=datetime.now(timezone.utc))),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.pool])),
            sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC, limit=free)
        for flow_run in due:
            if self.stopping.is_set() or (self.max_runs is not None and self.taken >= self.max_runs):
                return
            job = self._job_of(client, flow_run.deployment_id)
            if job is None:
                continue  # not one of ours (another deployment put in this pool): a worker may run it
            if self._claim(client, flow_run):
                self.taken += 1
                self._start(client, flow_run.id, job)

    def _job_of(self, client, deployment_id: UUID | None) -> Job | None:
        if deployment_id is None:
            return None
        if deployment_id not in self._jobs_by_deployment:
            deployment = client.read_deployment(deployment_id)
            job = next((j for j in JOBS if j.deployment_name(self.code) == deployment.name), None)
            if job is None:
                log.warning("runner: deployment %r in pool %s is not a khanza-sync deployment of hospital %r; "
                            "its runs are left to a worker", deployment.name, self.pool, self.code)
            self._jobs_by_deployment[deployment_id] = job
        return self._jobs_by_deployment[deployment_id]

    def _claim(self, client, flow_run) -> bool:
        """Propose Pending; True only if the server accepted it (see the module docstring)."""
        from prefect.exceptions import Abort
        from prefect.states import Pending
        from prefect.utilities.engine import propose_state_sync

        try:
            state = propose_state_sync(client, Pending(), flow_run_id=flow_run.id)
        except Abort as refused:  # another runner or worker took it first
            log.info("runner: flow run %s not taken: %s", flow_run.name, refused)
            return False
        if not state.is_pending():  # deployment limit: AwaitingConcurrencySlot (ENQUEUE) or Cancelled (CANCEL_NEW)
            log.info("runner: flow run %s not taken: server answered %s", flow_run.name, state.name)
            return False
        return True

    def _start(self, client, flow_run_id: UUID, job: Job) -> None:
        flow_run = client.read_flow_run(flow_run_id)  # with the Pending state's deployment-concurrency lease
        thread = threading.Thread(target=self._execute, args=(flow_run, job), name=f"run-{flow_run.name}",
                                  daemon=True)
        self.active[flow_run.id] = Active(flow_run.id, flow_run.name, thread)
        thread.start()

    # ------------------------------------------------------------ one run, in its thread

    def _execute(self, flow_run, job: Job) -> None:
        from prefect.flow_engine import run_flow
        from prefect.logging.loggers import flow_run_logger

        run_logger = flow_run_logger(flow_run=flow_run)
        run_logger.info("Run in-process by khanza-sync runner %s (pid %d)", self.name, os.getpid())
        try:
            if job.flow not in self._flows:
                self._flows[job.flow] = job.load_flow()
            run_flow(self._flows[job.flow], flow_run=flow_run, return_type="state", error_logger=run_logger)
        except RunCancelled:
            run_logger.info("Cancelled: stopped by khanza-sync runner %s", self.name)
        except RunnerStopping:
            run_logger.warning("Interrupted: khanza-sync runner %s stopped before the run ended", self.name)
        except BaseException as error:  # noqa: BLE001  (the runner outlives any run)
            run_logger.error("Crashed in khanza-sync runner %s: %s", self.name, type(error).__name__, exc_info=True)

    # ------------------------------------------------------------ bookkeeping between polls

    def _reap(self, client) -> None:
        """Finished threads: make sure their run reached a final state (the engine normally reports it)."""
        for run_id, active in list(self.active.items()):
            if active.thread.is_alive():
                continue
            del self.active[run_id]
            if active.interrupted is RunCancelled and not any(a.interrupted is RunCancelled
                                                              for a in self.active.values()):
                _mark_cancel_intent(False)
            self._finalise(client, active)

    def _finalise(self, client, active: Active) -> None:
        from prefect.states import Cancelled, Crashed

        state = client.read_flow_run(active.flow_run_id).state
        if active.interrupted is RunCancelled and state is not None and not state.is_cancelled():
            pass  # the engine may have reported the interruption as a crash: it was a cancellation
        elif state is not None and state.is_final():
            log.info("runner: flow run %s ended %s in %.1f s", active.name, state.name,
                     time.monotonic() - active.started)
            return
        if active.interrupted is RunCancelled or (state is not None and state.is_cancelling()):
            final = Cancelled(message=f"Cancelled; stopped by khanza-sync runner {self.name}")
        elif active.interrupted is RunnerStopping:
            final = Crashed(message=f"khanza-sync runner {self.name} stopped before the run ended")
        else:
            final = Crashed(message=f"the run ended in khanza-sync runner {self.name} without a final state")
        client.set_flow_run_state(active.flow_run_id, final, force=True)
        log.info("runner: flow run %s marked %s", active.name, final.name)

    def _watch_cancellations(self, client) -> None:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        running = [a for a in self.active.values() if a.interrupted is None]
        if not running:
            return
        found = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[a.flow_run_id for a in running])))
        for flow_run in found:
            if flow_run.state is not None and flow_run.state.is_cancelling():
                active = self.active[flow_run.id]
                active.interrupted = RunCancelled
                log.info("runner: flow run %s is Cancelling: interrupting it", active.name)
                _mark_cancel_intent(True)
                _interrupt(active.thread, RunCancelled)

    def _stop(self, client) -> None:
        if self.active:
            log.info("runner: stopping; waiting up to %g s for %d run(s)", self.stop_seconds, len(self.active))
        deadline = time.monotonic() + self.stop_seconds
        for active in self.active.values():
            active.thread.join(max(0.0, deadline - time.monotonic()))
        for active in self.active.values():
            if active.thread.is_alive() and active.interrupted is None:
                active.interrupted = RunnerStopping
                _interrupt(active.thread, RunnerStopping)
        for active in self.active.values():
            active.thread.join(5)  # a call blocked in a driver may not return: its run is marked below anyway
        for run_id, active in list(self.active.items()):
            if active.thread.is_alive() and active.interrupted is None:
                active.interrupted = RunnerStopping
            try:
                self._finalise(client, active)
            except Exception as error:  # noqa: BLE001
                log.warning("runner: could not mark flow run %s: %s", active.name, error)
            del self.active[run_id]
