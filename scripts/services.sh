#!/usr/bin/env bash
# The project's own MariaDB (Khanza side) and PostgreSQL (website side, the trial's Prefect server), used by
# the demo, the trial, the tests and the benchmarks: data under .services/ (git-ignored), their own ports, picked
# free at the first start and remembered per checkout (from 127.0.0.1:3307 and 127.0.0.1:5433 up, unless
# KHANZA_SYNC_MARIADB_PORT / KHANZA_SYNC_POSTGRES_PORT say otherwise). See khanza_sync/localdb.py.
#
#   scripts/services.sh [start] [mariadb|postgres]  install the binaries of the servers named (default both) if
#                                missing (apt, needs root or sudo), then start them
#   scripts/services.sh stop     stop both (only the processes this project started)
#   scripts/services.sh status
#
# The machine's own database servers (a hospital's, say on 3306/5432) are never started, stopped,
# reconfigured or logged into: the work is done by khanza_sync/localdb.py on the private folders only.
# Idempotent. PYTHON picks the interpreter (standard library only; default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
LOCALDB=khanza_sync/localdb.py

log() { printf '[services] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_ready=""
apt_install() {
  command -v apt-get >/dev/null || { log "apt-get not found: install $* (MariaDB and PostgreSQL server binaries), then run this again"; exit 1; }
  [ "$(id -u)" = 0 ] || command -v sudo >/dev/null || { log "installing $* needs root (or sudo)"; exit 1; }
  if [ -z "$apt_ready" ]; then as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; apt_ready=1; fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

case "${1:-start}" in
  stop)   exec "$PY" "$LOCALDB" stop ;;
  status) exec "$PY" "$LOCALDB" status ;;
  start)  shift || true ;;
  mariadb|postgres) ;;
  *)      log "usage: scripts/services.sh [start] [mariadb|postgres] | stop | status"; exit 2 ;;
esac
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(mariadb postgres)
wants() { case " ${servers[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

# Binaries only: mariadb-server-core has mariadbd and mariadb-install-db and no service of its own.
if wants mariadb && { ! { have mariadbd || have mysqld; } || ! { have mariadb-install-db || have mysql_install_db; }; }; then
  apt_install mariadb-server-core mariadb-client-core
fi
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/N/bin. (Debian's postgresql package sets up a
# cluster of its own when first installed; this project never uses or touches it.)
if wants postgres && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! have initdb; then
  apt_install postgresql
fi
# PostgreSQL refuses to run as root: as root, khanza_sync/localdb.py runs its commands as `postgres` (with its
# data outside the checkout when that user cannot reach it, e.g. in /root).
if wants postgres && [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  log "no postgres user (it comes with Debian's postgresql packages)"; exit 1
fi
exec "$PY" "$LOCALDB" start "${servers[@]}"
