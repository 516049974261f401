#!/usr/bin/env bash
# Make sure the local MariaDB (Khanza) and PostgreSQL (website) the tests and the demo use are
# installed and running, on a machine that may have neither. Idempotent; needs root for installs.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }
# Installs and server starts need root: as root directly, otherwise through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_ready=""
apt_install() {
  command -v apt-get >/dev/null || { log "apt-get not found: install and start $* (see README), then run this again"; exit 1; }
  [ "$(id -u)" = 0 ] || command -v sudo >/dev/null || { log "installing $* needs root (or sudo)"; exit 1; }
  if [ -z "$apt_ready" ]; then as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_ready=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---- MariaDB (Khanza) on 127.0.0.1:3306, root with an empty password
if [ ! -x /usr/sbin/mariadbd ]; then
  log "installing mariadb-server"; apt_install mariadb-server mariadb-client
fi
if ! mariadb-admin ping -h127.0.0.1 -uroot --silent >/dev/null 2>&1; then
  if ! mariadb-admin ping --silent >/dev/null 2>&1; then
    log "starting MariaDB"
    as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    # --user=mysql: a fresh Debian my.cnf names no user, and mariadbd refuses to run as root.
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 1 60); do mariadb-admin ping --silent >/dev/null 2>&1 && break; sleep 1; done
  fi
fi
# A fresh Debian install (whose package scripts may have started it already) lets root in only through the
# socket, and `mariadb-admin ping` succeeds even when access is denied: allow root over TCP with an empty
# password (local test server only).
if ! mariadb -h127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1 && mariadb-admin ping --silent >/dev/null 2>&1; then
  log "allowing root over TCP for the local test server"
  as_root mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" || true
fi
mariadb-admin ping -h127.0.0.1 -uroot --silent >/dev/null 2>&1 || { log "MariaDB is not reachable on 127.0.0.1:3306"; exit 1; }

# ---- PostgreSQL (website) on 127.0.0.1:5432, user postgres, trust
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  log "installing postgresql"; apt_install postgresql
  conf=$(ls -d /etc/postgresql/*/main | head -1)
  # Local test server only: trust loopback connections, as this machine kind is set up.
  as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$conf/pg_hba.conf"
  # The package scripts may have started it already, with the old pg_hba.conf.
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main reload || true
  fi
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
log "MariaDB and PostgreSQL are up"
