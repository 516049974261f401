#!/usr/bin/env bash
# Local trial of Khanza Sync as it runs for real: a Prefect server, the process work pool, the global
# concurrency limit, `prefect deploy --all`, a worker, one sync run triggered through the worker, the UI URL.
#
#   scripts/local_trial.sh            start everything (idempotent) and trigger a sync run   (= ./dev trial)
#   scripts/local_trial.sh --ui-check ...and screenshots in headless Chromium: the run into artifacts/, the tour
#                                     of what the data team reads into docs/ui/ (scripts/ui_check.py tour)
#   scripts/local_trial.sh stop       stop the server and worker this script started          (= ./dev stop)
#
# Defaults keep it away from anything real. The project's own database servers (khanza_sync/localdb.py,
# started here; never the machine's): the Prefect server's database `prefect_trial` on the private PostgreSQL,
# a demo Khanza database `khanza_trial` on the private MariaDB, and a SQLite website store
# data/trial_website.db; Prefect on port 4250 with PREFECT_HOME under /tmp.
# Seeding (TRIAL_SEED=1, the default when neither KHANZA_DB_NAME nor WEBSITE_DB_URL is set) uses the private
# MariaDB whatever .env says, and replaces only databases Khanza Sync created (khanza_sync/ownership.py): any
# other is refused and the trial stops. Your own data: set KHANZA_DB_NAME and/or WEBSITE_DB_URL (TRIAL_SEED
# then defaults to 0: nothing is seeded, and the worker uses your KHANZA_DB_* / .env as configured).
# Also PREFECT_TRIAL_PORT, PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL (another Prefect database).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${PREFECT_TRIAL_PORT:-4250}
TRIAL=${TRIAL_DIR:-/tmp/khanza-sync-trial}
mkdir -p "$TRIAL"
export PREFECT_HOME=${PREFECT_HOME:-$TRIAL/prefect-home}
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
export KHANZA_SYNC_HOME=$ROOT
PY=$ROOT/.venv/bin/python
PREFECT=$ROOT/.venv/bin/prefect
log() { printf '[trial] %s\n' "$*"; }
healthy() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$PREFECT_API_URL/health" >/dev/null 2>&1; }

stop() {
  for name in worker server; do
    if [ -f "$TRIAL/$name.pid" ]; then
      pid=$(cat "$TRIAL/$name.pid")
      kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -0 "$pid" 2>/dev/null && kill -9 -- "-$pid" 2>/dev/null || true
      rm -f "$TRIAL/$name.pid"; log "stopped $name ($pid)"
    fi
  done
}
if [ "${1:-}" = "stop" ]; then stop; exit 0; fi
UI_CHECK=""; [ "${1:-}" = "--ui-check" ] && UI_CHECK=1

# .venv with the project installed (editable): the server, the worker and its flow runs import it from there.
bash "$ROOT/dev" setup

# The project's private MariaDB and PostgreSQL (installed if missing, started if down; idempotent).
PYTHON=$PY bash "$ROOT/scripts/services.sh"
if [ -z "${TRIAL_SEED:-}" ]; then
  if [ -n "${KHANZA_DB_NAME:-}${WEBSITE_DB_URL:-}" ]; then TRIAL_SEED=0; else TRIAL_SEED=1; fi
fi
if [ "$TRIAL_SEED" = 1 ]; then
  # The trial's own data on the private servers, whatever .env says (environment beats .env for the worker).
  eval "$("$PY" "$ROOT/khanza_sync/localdb.py" env)"
  export KHANZA_DB_NAME=${KHANZA_DB_NAME:-khanza_trial}
  export WEBSITE_DB_URL=${WEBSITE_DB_URL:-sqlite:///$ROOT/data/trial_website.db}
fi

# 1. Prefect server, its database `prefect_trial` on the private PostgreSQL (created and marked the first time;
#    an unmarked database of that name is refused)
if [ -z "${PREFECT_SERVER_DATABASE_CONNECTION_URL:-}" ]; then
  PREFECT_SERVER_DATABASE_CONNECTION_URL=$("$PY" -m khanza_sync.ownership ensure-postgres-db prefect_trial \
    | sed 's#^postgresql+psycopg://#postgresql+asyncpg://#')
  export PREFECT_SERVER_DATABASE_CONNECTION_URL
fi
if ! healthy; then
  log "starting prefect server on 127.0.0.1:$PORT (database $PREFECT_SERVER_DATABASE_CONNECTION_URL, log $TRIAL/server.log)"
  setsid "$PREFECT" server start --host 127.0.0.1 --port "$PORT" >"$TRIAL/server.log" 2>&1 &
  echo $! >"$TRIAL/server.pid"
  for _ in $(seq 1 180); do healthy && break; sleep 1; done
fi
healthy || { log "server did not come up, see $TRIAL/server.log"; exit 1; }

# 2. This hospital's work pool khanza-sync-CODE, Khanza write limit and deployments (khanza_sync/deployments.py;
#    HOSPITAL_CODE and HOSPITAL_TIMEZONE from the environment or .env, default code `default`)
"$ROOT/.venv/bin/khanza-sync" deploy
CODE=$("$PY" -c 'from khanza_sync.settings import load_settings; print(load_settings().hospital_code)')

# 3. Trial data (demo Khanza DB + website store with sample registrations), only into databases Khanza Sync made
if [ "$TRIAL_SEED" = 1 ]; then "$PY" scripts/ui_check.py seed; else log "TRIAL_SEED=0: not seeding (your own data)"; fi

# 4. (deployed in step 2; `prefect deploy --all` with prefect.yaml does the same for the default code)

# 5. A worker for the pool (its environment is what the flow runs see)
if [ ! -f "$TRIAL/worker.pid" ] || ! kill -0 "$(cat "$TRIAL/worker.pid")" 2>/dev/null; then
  log "starting worker (log $TRIAL/worker.log)"
  setsid "$PREFECT" worker start --pool "khanza-sync-$CODE" >"$TRIAL/worker.log" 2>&1 &
  echo $! >"$TRIAL/worker.pid"
fi

# 6. One sync run through the worker
out=$("$PREFECT" deployment run "sync-registrations/sync-registrations-$CODE")
echo "$out"
RUN_ID=$(echo "$out" | grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | head -1)
log "UI:       http://127.0.0.1:$PORT"
log "this run: http://127.0.0.1:$PORT/runs/flow-run/$RUN_ID"
log "other flows: $PREFECT deployment run 'reconcile-queue-numbers/reconcile-queue-numbers-$CODE'"
log "             $PREFECT deployment run 'backfill-registrations/backfill-registrations-$CODE' --param start=YYYY-MM-DD --param end=YYYY-MM-DD --param dry_run=true"
log "stop with:   scripts/local_trial.sh stop"

# 7. Optional: what the data team sees in the real UI, as screenshots (Playwright + Debian's chromium):
#    this run's artifacts into artifacts/, then a reconcile run (queue-status), the alert automations
#    (ALERT_URLS, default a local address nobody listens on) and the tour into docs/ui/ (README names the files)
if [ -n "$UI_CHECK" ]; then
  command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  "$PY" -c 'import playwright' 2>/dev/null || "$ROOT/.venv/bin/pip" install -q -e "$ROOT[ui]"
  "$PY" scripts/ui_check.py screenshot --flow-run-id "$RUN_ID"
  "$PREFECT" deployment run "reconcile-queue-numbers/reconcile-queue-numbers-$CODE" --watch >/dev/null || true
  ALERT_URLS=${ALERT_URLS:-json://127.0.0.1:9/trial-alerts} "$ROOT/.venv/bin/khanza-sync" alerts
  "$PY" scripts/ui_check.py tour --code "$CODE"
fi
