#!/usr/bin/env bash
# Production install of Khanza Sync under systemd (deploy/README.md). Idempotent; as root.
#
#   deploy/install.sh server                 /etc/khanza-sync/prefect-server.env (0600, a generated auth string)
#   deploy/install.sh hospital CODE [ZONE]   /etc/khanza-sync/CODE.env (0600) for hospital CODE (time zone ZONE)
#   deploy/install.sh units                  the systemd units into /etc/systemd/system, pointed at this checkout
#   deploy/install.sh compose CODE:ZONE ...  Docker Compose instead: deploy/compose/env/{postgres,prefect-server,CODE}.env
#
# One Unix user per process that holds secrets: khanza-sync-server for the Prefect server, khanza-sync-CODE for
# hospital CODE's worker (and the flow runs it starts). Each environment file is owned by its user, mode 0600
# (umask 077), never overwritten; an existing one gets its mode and owner put back. The folder is 0711: a user
# opens its own file by name, lists nothing. So one hospital's process cannot read another hospital's file, nor
# its process environment (/proc/PID/environ is its owner's only).
# Overrides (tests use them): ETC_DIR (/etc/khanza-sync), UNIT_DIR (/etc/systemd/system), KHANZA_SYNC_HOME
# (this checkout), SYSTEMCTL (systemctl; empty = do not call it), USER_PREFIX (khanza-sync-),
# CREATE_USERS (1; 0 = make no Unix users, files stay root's).
set -euo pipefail
umask 077
HOME_DIR=${KHANZA_SYNC_HOME:-$(cd "$(dirname "$0")/.." && pwd)}
ETC_DIR=${ETC_DIR:-/etc/khanza-sync}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
SYSTEMCTL=${SYSTEMCTL-systemctl}
USER_PREFIX=${USER_PREFIX:-khanza-sync-}
CREATE_USERS=${CREATE_USERS:-1}
PY=$HOME_DIR/.venv/bin/python
log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] %s\n' "$*" >&2; exit 1; }

[ -x "$PY" ] || die "$PY missing: install the project first (./dev setup in $HOME_DIR)"

secure_dir() {
  install -d -m 0711 "$ETC_DIR"
}

# put_env OWNER FILE TEMPLATE [sed expressions...]: FILE from TEMPLATE (if absent), always 0600, owned by the
# Unix user OWNER when it exists (as root), else root.
put_env() {
  local owner=$1 file=$2 template=$3; shift 3
  secure_dir
  if [ -e "$file" ]; then
    log "$file exists: kept (mode set to 0600)"
  else
    if [ $# -eq 0 ]; then cat "$template" >"$file.tmp"; else sed "$@" "$template" >"$file.tmp"; fi
    mv "$file.tmp" "$file"
    log "$file created: fill in the passwords and URLs"
  fi
  chmod 0600 "$file"
  if [ "$(id -u)" = 0 ]; then
    if id "$owner" >/dev/null 2>&1; then chown "$owner:$owner" "$file"; else chown root:root "$file"; fi
  fi
}

# service_user NAME: a system user of its own (no login, no home of its own to fill), made once.
service_user() {
  [ "$(id -u)" = 0 ] && [ "$CREATE_USERS" = 1 ] || return 0
  id "$1" >/dev/null 2>&1 || useradd --system --user-group --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin "$1"
  log "Unix user $1"
}

env_value() {  # env_value FILE NAME: the value of NAME= in FILE (empty if absent)
  [ -f "$1" ] || return 0
  sed -n "s/^$2=//p" "$1" | tail -1
}

case "${1:-}" in
  server)
    service_user "${USER_PREFIX}server"
    auth="khanza-admin:$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')"
    put_env "${USER_PREFIX}server" "$ETC_DIR/prefect-server.env" "$HOME_DIR/deploy/env/prefect-server.env.example" \
      -e "s|^PREFECT_SERVER_API_AUTH_STRING=.*|PREFECT_SERVER_API_AUTH_STRING=$auth|"
    ;;
  hospital)
    code=${2:?usage: deploy/install.sh hospital CODE [ZONE]}
    zone=${3:-Asia/Jakarta}
    # The same validation as the pipeline's own settings (lowercase letters, digits, dashes; 1-16).
    "$PY" -c 'import sys; from khanza_sync.settings import Settings; Settings(_env_file=None, hospital_code=sys.argv[1], hospital_timezone=sys.argv[2])' \
      "$code" "$zone" 2>/dev/null || die "bad HOSPITAL_CODE '$code' or time zone '$zone' (code: 1-16 of a-z 0-9 -)"
    service_user "${USER_PREFIX}$code"
    auth=$(env_value "$ETC_DIR/prefect-server.env" PREFECT_SERVER_API_AUTH_STRING)
    # A health-check port of its own: 8081 for the first hospital, then the next free one.
    port=8081
    while grep -qs "^PREFECT_WORKER_WEBSERVER_PORT=$port\$" "$ETC_DIR"/*.env; do port=$((port + 1)); done
    put_env "${USER_PREFIX}$code" "$ETC_DIR/$code.env" "$HOME_DIR/deploy/env/hospital.env.example" \
      -e "s|^HOSPITAL_CODE=.*|HOSPITAL_CODE=$code|" -e "s|^HOSPITAL_TIMEZONE=.*|HOSPITAL_TIMEZONE=$zone|" \
      -e "s|^PREFECT_API_AUTH_STRING=.*|PREFECT_API_AUTH_STRING=$auth|" \
      -e "s|^PREFECT_WORKER_WEBSERVER_PORT=.*|PREFECT_WORKER_WEBSERVER_PORT=$port|"
    log "then: set -a; . $ETC_DIR/$code.env; set +a; $HOME_DIR/.venv/bin/khanza-sync deploy"
    log "      systemctl enable --now khanza-sync-runner@$code   (recommended; or the process worker:"
    log "      systemctl enable --now khanza-sync-worker@$code khanza-sync-worker-health@$code.timer)"
    ;;
  units)
    install -d -m 0755 "$UNIT_DIR"
    for unit in "$HOME_DIR"/deploy/systemd/*.service "$HOME_DIR"/deploy/systemd/*.timer; do
      name=$(basename "$unit")
      sed -e "s|/opt/khanza-sync|$HOME_DIR|g" -e "s|/etc/khanza-sync|$ETC_DIR|g" "$unit" >"$UNIT_DIR/$name.tmp"
      chmod 0644 "$UNIT_DIR/$name.tmp"
      mv "$UNIT_DIR/$name.tmp" "$UNIT_DIR/$name"
      log "$UNIT_DIR/$name"
    done
    if [ -n "$SYSTEMCTL" ]; then "$SYSTEMCTL" daemon-reload; fi
    ;;
  compose)
    shift
    [ $# -gt 0 ] || die "usage: deploy/install.sh compose CODE:ZONE [CODE:ZONE ...]"
    ETC_DIR=${ETC_DIR_OVERRIDE:-$HOME_DIR/deploy/compose/env}
    secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
    pg_password=$(env_value "$ETC_DIR/postgres.env" POSTGRES_PASSWORD)
    [ -n "$pg_password" ] || pg_password=$(secret)
    put_env root "$ETC_DIR/postgres.env" /dev/stdin <<<"POSTGRES_USER=prefect
POSTGRES_PASSWORD=$pg_password
POSTGRES_DB=prefect"
    auth="khanza-admin:$(secret)"
    put_env root "$ETC_DIR/prefect-server.env" "$HOME_DIR/deploy/env/prefect-server.env.example" \
      -e "s|^PREFECT_SERVER_API_AUTH_STRING=.*|PREFECT_SERVER_API_AUTH_STRING=$auth|" \
      -e "s|^PREFECT_SERVER_DATABASE_CONNECTION_URL=.*|PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://prefect:$pg_password@postgres:5432/prefect|" \
      -e "s|^PREFECT_HOME=.*|PREFECT_HOME=/var/lib/khanza-sync/prefect|"
    auth=$(env_value "$ETC_DIR/prefect-server.env" PREFECT_SERVER_API_AUTH_STRING)
    for spec in "$@"; do
      code=${spec%%:*}; zone=${spec#*:}; [ "$zone" != "$spec" ] || zone=Asia/Jakarta
      "$PY" -c 'import sys; from khanza_sync.settings import Settings; Settings(_env_file=None, hospital_code=sys.argv[1], hospital_timezone=sys.argv[2])' \
        "$code" "$zone" 2>/dev/null || die "bad HOSPITAL_CODE '$code' or time zone '$zone' (code: 1-16 of a-z 0-9 -)"
      put_env root "$ETC_DIR/$code.env" "$HOME_DIR/deploy/env/hospital.env.example" \
        -e "s|^HOSPITAL_CODE=.*|HOSPITAL_CODE=$code|" -e "s|^HOSPITAL_TIMEZONE=.*|HOSPITAL_TIMEZONE=$zone|" \
        -e "s|^PREFECT_API_URL=.*|PREFECT_API_URL=http://prefect-server:4200/api|" \
        -e "s|^PREFECT_API_AUTH_STRING=.*|PREFECT_API_AUTH_STRING=$auth|" \
        -e "s|^PREFECT_WORKER_WEBSERVER_PORT=.*|PREFECT_WORKER_WEBSERVER_PORT=8080|" \
        -e "s|^KHANZA_DB_HOST=127.0.0.1|KHANZA_DB_HOST=CHANGE_ME_khanza_host_as_seen_from_the_container|"
    done
    log "then: fill in KHANZA_DB_* and WEBSITE_DB_URL in $ETC_DIR/CODE.env; docker compose -f deploy/compose/compose.yaml up -d --build"
    ;;
  *)
    sed -n '2,19p' "$0"; exit 2 ;;
esac
