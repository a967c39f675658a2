#!/usr/bin/env bash
# Make sure a Redis and a PostgreSQL answer on their standard local ports for the test suite.
# Uses the ones already running; otherwise starts the installed servers; otherwise installs
# them from Debian's packages (apt) first. Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

answers() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

wait_for() {  # name host port
  for _ in $(seq 1 60); do answers "$2" "$3" && { echo "$1 is up on $2:$3"; return 0; }; sleep 0.5; done
  echo "$1 did not come up on $2:$3" >&2; return 1
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! answers 127.0.0.1 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/inkwell-test-redis.log
  wait_for Redis 127.0.0.1 6379
fi

if ! answers 127.0.0.1 5432; then
  fresh=0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fresh=1; fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
  wait_for PostgreSQL 127.0.0.1 5432
  if [ "$fresh" = 1 ]; then
    # A fresh cluster asks for passwords over TCP: give the test user the one the tests use.
    $SUDO su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
fi
