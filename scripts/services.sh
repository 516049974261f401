#!/usr/bin/env bash
# Make sure the local MariaDB (Khanza) and PostgreSQL (website) the tests and the demo use are
# installed and running, on a machine that may have neither. Idempotent; needs root for installs.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }
apt_ready=""
apt_install() {
  if [ -z "$apt_ready" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---- MariaDB (Khanza) on 127.0.0.1:3306, root with an empty password
if [ ! -x /usr/sbin/mariadbd ]; then
  log "installing mariadb-server"; apt_install mariadb-server mariadb-client
fi
if ! mariadb-admin ping -h127.0.0.1 -uroot --silent >/dev/null 2>&1; then
  if ! mariadb-admin ping --silent >/dev/null 2>&1; then
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do mariadb-admin ping --silent >/dev/null 2>&1 && break; sleep 1; done
  fi
  # A fresh Debian install lets root in only through the socket: allow TCP with an empty password (local test server only).
  if ! mariadb -h127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1; then
    log "allowing root over TCP for the local test server"
    mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" || true
  fi
fi
mariadb-admin ping -h127.0.0.1 -uroot --silent >/dev/null 2>&1 || { log "MariaDB is not reachable on 127.0.0.1:3306"; exit 1; }

# ---- PostgreSQL (website) on 127.0.0.1:5432, user postgres, trust
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  log "installing postgresql"; apt_install postgresql
  conf=$(ls -d /etc/postgresql/*/main | head -1)
  # Local test server only: trust loopback connections, as this machine kind is set up.
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$conf/pg_hba.conf"
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
log "MariaDB and PostgreSQL are up"
