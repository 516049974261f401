"""`khanza-sync`: one command, a subcommand per job. Each flow subcommand runs the flow once in this process
(on the Prefect server named by PREFECT_API_URL, or a temporary local one) and prints its one-line summary.

    khanza-sync sync | follow | reconcile | backfill | requeue | resolve-conflict | audit | publish-master-data |
                setup | check | deploy | alerts | worker | demo
                                                                                          (--help on each)

Flow options, their choices and help come from the flows' parameter types (khanza_sync/params.py).
Heavy imports (Prefect, pandas, Great Expectations) happen only inside the subcommand that needs them.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

# Before Prefect is imported (it reads its settings once): a temporary local server that is slow to start on a
# busy machine must not fail the run (Prefect waits 20 s by default; a first start took 18-75 s). Only a default.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# Hospital networks are offline: no telemetry from that temporary server (its first write could also collide
# with the server's own start-up and print a 'database is locked' traceback on a busy machine).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from khanza_sync import params  # noqa: E402


def _int_type(annotated):
    """argparse type for an Annotated int: the same bounds the flow's parameter validation applies."""
    lo, hi = params.bounds(annotated)

    def parse(text: str) -> int:
        value = int(text)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}" if hi is not None else f"must be >= {lo}")
        return value

    return parse


def _int_option(parser: argparse.ArgumentParser, flag: str, annotated, default=None) -> None:
    text = params.HELP[flag.lstrip("-").replace("-", "_")]
    parser.add_argument(flag, type=_int_type(annotated), default=default, metavar="N",
                        help=text + (f" Default: {default}." if default is not None else ""))


def _finish(state) -> int:
    from prefect.logging.handlers import APILogWorker

    # The run's last lines (its end state, "Khanza offline: ...") reach the server before this process exits:
    # under load Prefect's own exit-time flush was seen to lose them.
    APILogWorker.drain_all(timeout=30)
    print(state.message)
    return 0 if state.is_completed() else 1


def _sync(args) -> int:
    if args.follow:
        return _follow(args)
    from flows.sync_registrations import sync_registrations

    return _finish(sync_registrations(batch_size=args.batch_size, max_batches=args.max_batches, return_state=True))


def _follow(args) -> int:
    """Hourly follow-registrations flow runs, one after another, until SIGINT/SIGTERM (or --runs)."""
    import signal

    from flows.follow_registrations import follow_registrations
    from khanza_sync.follow import STOP

    for sig in (signal.SIGINT, signal.SIGTERM):  # finish the batch in hand, name the run, then exit
        signal.signal(sig, lambda *_: STOP.set())
    runs, code = 0, 0
    while not STOP.is_set() and (args.runs is None or runs < args.runs):
        runs += 1
        try:
            state = follow_registrations(batch_size=args.batch_size, seconds=args.seconds, return_state=True)
            print(state.message, flush=True)
            code = 0 if state.is_completed() else 1
        except Exception as error:  # noqa: BLE001 - e.g. the Prefect server restarting: try again shortly
            print(f"follow run could not start or crashed ({type(error).__name__}); retrying in 10 s", flush=True)
            code = 1
            STOP.wait(10)
    return code


def _reconcile(args) -> int:
    from flows.reconcile_queue_numbers import reconcile_queue_numbers

    return _finish(reconcile_queue_numbers(days_back=args.days_back, days_ahead=args.days_ahead, return_state=True))


def _backfill(args) -> int:
    from flows.backfill_registrations import backfill_registrations

    return _finish(backfill_registrations(start=args.start, end=args.end, by=args.by, status=args.status,
                                          error_codes=args.error_codes, dry_run=args.dry_run,
                                          batch_size=args.batch_size, return_state=True))


def _requeue(args) -> int:
    from flows.fix_registrations import requeue_registrations

    return _finish(requeue_registrations(registration_ids=args.ids, decided_by=args.decided_by, reason=args.reason,
                                         dry_run=args.dry_run, return_state=True))


def _resolve_conflict(args) -> int:
    from flows.fix_registrations import resolve_patient_conflict

    decision = "new_patient" if args.new_patient else "link_patient"
    return _finish(resolve_patient_conflict(registration_id=args.id, decision=decision, no_rkm_medis=args.link or "",
                                            decided_by=args.decided_by, reason=args.reason, dry_run=args.dry_run,
                                            return_state=True))


def _audit(args) -> int:
    from khanza import decisions
    from khanza.db import make_engine
    from khanza_sync.settings import load_settings

    engine = make_engine(load_settings())
    try:
        with engine.connect() as conn:
            try:
                decisions.require(conn)
            except decisions.DecisionsMissing:
                print(f"khanza-sync audit: the decisions table {decisions.TABLE} is missing: run `khanza-sync setup`",
                      file=sys.stderr)
                return 2
            found = decisions.read(conn, registration_id=args.id, limit=args.limit)
    finally:
        engine.dispose()
    print("id\tdecided_at (UTC)\tregistration_id\taction\tdecided_by\treason\tfindings\tflow_run_id")
    for d in found:  # no_rkm_medis stays in the table (it is not printed to terminals and their logs)
        print("\t".join(str(d[k] if d[k] is not None else "") for k in
                        ("id", "decided_at", "registration_id", "action", "decided_by", "reason", "findings",
                         "flow_run_id")))
    return 0


def _publish(args) -> int:
    from flows.publish_master_data import publish_master_data

    return _finish(publish_master_data(days_ahead=args.days_ahead, return_state=True))


def _setup(args) -> int:
    from khanza import migrations, setup
    from khanza_sync.settings import load_settings

    settings = load_settings()
    if args.demo:  # on the project's own MariaDB, never the configured server; refused unless Khanza Sync's
        demo = setup.private_server_settings(settings.khanza_db_name)
        setup.create_demo_database(demo, demo.khanza_db_name)
        print(f"demo Khanza database {demo.khanza_db_name} created on {demo.khanza_db_host}:{demo.khanza_db_port}")
    else:
        try:
            applied = setup.create_ledger(settings)
        except migrations.NewerSchema as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 2
        print(f"khanza_sync_ledger, khanza_sync_decisions and khanza_sync_schema at schema version "
              f"{migrations.CURRENT} in database {settings.khanza_db_name}"
              + "".join(f"\n  step {step.version}: {step.summary}" for step in applied))
    if args.website:
        from website import contract, store

        engine = store.make_engine(settings.website_db_url.get_secret_value(),
                                   connect_timeout=settings.website_connect_timeout,
                                   statement_timeout=settings.website_statement_timeout_seconds)
        try:
            done = contract.setup(engine)
            present = contract.columns_of(engine) or set()
            optional = contract.optional_missing(present)
            advice = contract.upgrade_sql(engine.dialect.name, present) if optional else []
        except contract.TableNotOurs as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 2
        finally:
            engine.dispose()
        if optional:  # the website's own table without an optional step: it works; its owner adds them when wanted
            print(f"online_registrations at contract version {contract.found_version(present)} of {contract.CURRENT} "
                  f"({engine.dialect.name}): nothing to change; the optional {', '.join(optional)} are absent (read as "
                  f"empty) and, as the table is the website's, left to its owner (docs/website.md 'Upgrading the "
                  f"contract'): " + "; ".join(advice))
            return 0
        print(f"online_registrations at contract version {contract.CURRENT} ({engine.dialect.name})"
              + (f": {'; '.join(done)}" if done else ": nothing to change"))
    return 0


def _deploy(args) -> int:
    from khanza_sync import deployments
    from khanza_sync.settings import load_settings

    settings = load_settings()
    if args.write_prefect_yaml:
        Path(args.write_prefect_yaml).write_text(
            deployments.prefect_yaml(settings.hospital_code, settings.hospital_timezone, settings.sync_every_minutes))
        print(f"{args.write_prefect_yaml}: deployments of hospital {settings.hospital_code!r} for prefect deploy --all")
        return 0
    try:
        done, (removed, kept) = deployments.deploy(settings, force=args.force)
    except deployments.DeployRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    print(f"hospital {settings.hospital_code!r}: work pool {settings.work_pool_name}, "
          f"Khanza write limit {settings.khanza_concurrency_limit}, schedules in {settings.hospital_timezone}")
    for name, deployment_id in done:
        print(f"  {name}  {deployment_id}")
    for what in removed:
        print(f"removed {what}: an earlier release's name, replaced by the ones above")
    for what in kept:
        print(f"left alone: {what}")
    if settings.alert_url_list:  # alerts go with the deployments they watch
        args.remove = False
        return _alerts(args)
    return 0


def _alerts(args) -> int:
    from khanza_sync import alerts
    from khanza_sync.settings import load_settings

    settings = load_settings()
    if args.remove:
        changes = alerts.remove(settings)
        print(f"hospital {settings.hospital_code!r}: alerts removed" if changes else
              f"hospital {settings.hospital_code!r}: no alerts of khanza-sync to remove")
    elif not settings.alert_url_list:
        print(f"hospital {settings.hospital_code!r}: ALERT_URLS is empty, no alerts installed "
              "(set one or more Apprise URLs; existing alerts are left as they are, --remove deletes them)")
        return 0
    else:
        changes = alerts.install(settings)
        print(f"hospital {settings.hospital_code!r}: alerts to {len(settings.alert_url_list)} address(es) in "
              f"ALERT_URLS (offline > {settings.alert_offline_minutes:g} min, no sync > "
              f"{settings.alert_no_sync_minutes:g} min, > {settings.alert_rejections_per_hour} rejections/hour)")
    for change in changes:
        print(change)
    return 0


def _worker(args) -> int:
    import os

    from khanza_sync import deployments
    from khanza_sync.settings import load_settings

    missing = deployments.missing_worker_env()
    if missing:
        print("refused: a hospital's worker takes " + ", ".join(missing) + " from its own environment file "
              "(systemd EnvironmentFile= / compose env_file), not from a .env it may find: its flow runs "
              "inherit them", file=sys.stderr)
        return 2
    command = deployments.worker_command(load_settings(), healthcheck=not args.no_healthcheck, name=args.name)
    sys.stdout.flush()
    os.execv(command[0], command)  # the worker replaces this process (systemd and Docker see its exit code)


def _runner(args) -> int:
    import logging

    from khanza_sync import deployments
    from khanza_sync.runner import Runner
    from khanza_sync.settings import load_settings

    missing = deployments.missing_worker_env()
    if missing:
        print("refused: a hospital's runner takes " + ", ".join(missing) + " from its own environment file "
              "(systemd EnvironmentFile= / compose env_file), not from a .env it may find: its flow runs use them",
              file=sys.stderr)
        return 2
    logging.getLogger("khanza_sync.runner").setLevel(logging.INFO)  # Prefect's console handler prints it
    return Runner(load_settings(), name=args.name, poll_seconds=args.poll_seconds, limit=args.limit,
                  stop_seconds=args.stop_seconds, max_runs=args.max_runs).run()


def _check(args) -> int:
    from khanza_sync import checkup

    return checkup.main()


def _demo(args) -> int:
    from khanza_sync import demo

    demo.main()
    return 0


def _decision_options(parser: argparse.ArgumentParser) -> None:
    """--by, --reason and --dry-run of the fix-one-registration subcommands."""
    parser.add_argument("--by", dest="decided_by", required=True, metavar="NAME", help=params.HELP["decided_by"])
    parser.add_argument("--reason", required=True, metavar="TEXT", help=params.HELP["reason"])
    parser.add_argument("--dry-run", action="store_true", help=params.HELP["dry_run"])


def release() -> str:
    """The installed release: the package metadata, which pyproject.toml's version sets at install time."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("khanza-sync")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed: ./dev setup)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="khanza-sync", description="Online registrations into SIMRS Khanza, and the real queue numbers back. "
        "Settings come from the environment and .env (see the README).")
    parser.add_argument("--version", action="version", version=f"khanza-sync {release()}",
                        help="the installed release (CHANGELOG.md says what it changed and its commit)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sync", help="one sync run: pending registrations -> Khanza, numbers back to the website")
    _int_option(p, "--batch-size", params.BatchSize)
    _int_option(p, "--max-batches", params.MaxBatches)
    p.add_argument("--follow", action="store_true", help="stay running and sync each registration within seconds "
                   "(the same as `khanza-sync follow`)")
    p.set_defaults(run=_sync, runs=None, seconds=None)

    p = sub.add_parser("follow", help="stay running: each registration synced within seconds of its arrival "
                       "(hourly flow runs, LISTEN/NOTIFY on PostgreSQL, else a FOLLOW_POLL_SECONDS poll)")
    _int_option(p, "--batch-size", params.BatchSize)
    p.add_argument("--runs", type=int, default=None, metavar="N", help="stop after N hourly runs (default: never)")
    p.add_argument("--seconds", type=int, default=None, metavar="N",
                   help="each run follows at most N seconds instead of until the next full hour")
    p.set_defaults(run=_follow, follow=True)

    p = sub.add_parser("reconcile", help="website vs Khanza: cancellations, moved visits, check-ins, findings")
    _int_option(p, "--days-back", params.DaysBack, default=7)
    _int_option(p, "--days-ahead", params.DaysAhead)
    p.set_defaults(run=_reconcile)

    p = sub.add_parser("backfill", help="re-run the sync for a window of dates (optionally re-queue rejected rows)")
    p.add_argument("--start", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD", help=params.HELP["start"])
    p.add_argument("--end", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD", help=params.HELP["end"])
    p.add_argument("--by", choices=params.choices(params.WindowBy), default="visit", help=params.HELP["by"])
    p.add_argument("--status", choices=params.choices(params.RequeueStatus), default=None, help=params.HELP["status"])
    p.add_argument("--error-code", action="append", dest="error_codes", default=None, metavar="CODE",
                   choices=params.ERROR_CODE_CHOICES, help=params.HELP["error_codes"] + " Repeatable.")
    p.add_argument("--dry-run", action="store_true", help=params.HELP["dry_run"])
    _int_option(p, "--batch-size", params.BatchSize)
    p.set_defaults(run=_backfill)

    p = sub.add_parser("requeue", help="put given registrations back to pending (after staff corrected them) and "
                       "sync them now; the decision is recorded in khanza_sync_decisions")
    p.add_argument("ids", nargs="+", metavar="ID", help=params.HELP["registration_ids"])
    _decision_options(p)
    p.set_defaults(run=_requeue)

    p = sub.add_parser("resolve-conflict", help="resolve a PATIENT_CONFLICT: link the registration to a Khanza "
                       "patient or confirm a new patient; recorded, then synced now")
    p.add_argument("id", metavar="ID", help=params.HELP["registration_id"])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--link", metavar="NO_RKM_MEDIS", help="link_patient: " + params.HELP["no_rkm_medis"])
    which.add_argument("--new-patient", action="store_true", help="new_patient: create a new patient although "
                       "the NIK or BPJS card matches others")
    _decision_options(p)
    p.set_defaults(run=_resolve_conflict)

    p = sub.add_parser("audit", help="staff decisions (re-queues, conflict resolutions) from khanza_sync_decisions, "
                       "newest first")
    p.add_argument("--id", default=None, help="only this registration id")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N decisions (default 50)")
    p.set_defaults(run=_audit)

    p = sub.add_parser("publish-master-data", help="Khanza's clinics, doctors, schedules and quota -> website tables")
    _int_option(p, "--days-ahead", params.DaysAhead)
    p.set_defaults(run=_publish)

    p = sub.add_parser("setup", help="create the ledger and decisions tables in Khanza (once per hospital, and again "
                       "after an upgrade that adds a table; a user allowed to CREATE)")
    p.add_argument("--demo", action="store_true",
                   help="instead (re)create KHANZA_DB_NAME as a throw-away demo Khanza database on the project's "
                   "own MariaDB (./dev services); an existing database Khanza Sync did not create is refused")
    p.add_argument("--website", action="store_true", help="also create online_registrations at WEBSITE_DB_URL")
    p.set_defaults(run=_setup)

    p = sub.add_parser("deploy", help="create or update this hospital's work pool, write limit and deployments "
                       "(HOSPITAL_CODE, HOSPITAL_TIMEZONE) on the Prefect server at PREFECT_API_URL, and its "
                       "alerts when ALERT_URLS is set (as `khanza-sync alerts`)")
    p.add_argument("--force", action="store_true",
                   help="update deployments of this HOSPITAL_CODE even if they point at another Khanza database")
    p.add_argument("--write-prefect-yaml", metavar="PATH",
                   help="instead write these deployments as a prefect.yaml for `prefect deploy --all`")
    p.set_defaults(run=_deploy)

    p = sub.add_parser("alerts", help="create or update this hospital's alert automations and notification block "
                       "(ALERT_URLS, ALERT_*) on the Prefect server at PREFECT_API_URL; re-running changes nothing")
    p.add_argument("--remove", action="store_true",
                   help="delete this hospital's alert automations and block (only those khanza-sync alerts made)")
    p.set_defaults(run=_alerts)

    p = sub.add_parser("worker", help="start this hospital's Prefect worker (pool khanza-sync-HOSPITAL_CODE) with "
                       "its health check on PREFECT_WORKER_WEBSERVER_PORT")
    p.add_argument("--no-healthcheck", action="store_true", help="without the health check server")
    p.add_argument("--name", help="worker name (default khanza-sync-CODE-HOSTNAME)")
    p.set_defaults(run=_worker)

    p = sub.add_parser("runner", help="recommended: run this hospital's flow runs (pool khanza-sync-HOSPITAL_CODE) "
                       "in ONE long-lived process, without a new Python process per run (`worker` starts one each)")
    p.add_argument("--name", help="runner name (default khanza-sync-runner-CODE-HOSTNAME)")
    p.add_argument("--poll-seconds", type=float, default=10.0, metavar="S",
                   help="how often to ask the server for due runs and cancellations (default 10)")
    p.add_argument("--limit", type=int, default=4, metavar="N",
                   help="flow runs at once, of different deployments (default 4; each deployment runs one at a time)")
    p.add_argument("--stop-seconds", type=float, default=30.0, metavar="S",
                   help="on SIGTERM, how long running runs get to finish before they are interrupted (default 30)")
    p.add_argument("--max-runs", type=int, default=None, metavar="N",
                   help="take N runs, let them end and exit 0 (the systemd unit recycles the process every 300 "
                   "runs: its memory grows slowly; default: run until stopped)")
    p.set_defaults(run=_runner)

    p = sub.add_parser("check", help="verify the configuration end to end, writing nothing: both databases, their "
                       "tables, the ledger, the mappings and the numbering settings; exit 0 only if all pass")
    p.set_defaults(run=_check)

    p = sub.add_parser("demo", help="demo Khanza + website databases with sample registrations, one sync, results")
    p.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:  # a set-up mistake is one line saying what to fix, not a traceback
        from khanza_sync.checkup import explain

        line = explain(error)
        if line is None:
            raise  # not a set-up or database problem: a bug, with its traceback
        print(f"khanza-sync {args.command}: {line}", file=sys.stderr)
        return 2


def run_module(command: str) -> int:
    """`python -m flows.<name> ARGS` is `khanza-sync <command> ARGS`."""
    return main([command, *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
