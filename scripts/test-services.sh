#!/usr/bin/env bash
# Starts the services the test suite needs and writes their addresses to the file given
# as $1 (default .test-services.env) as shell assignments:
#   WARREN_TEST_DATABASE_URL  a PostgreSQL database the store suite may create schemas in
#   WARREN_TEST_REDIS_URL     a redis-server the rate limiter suite may use
# Idempotent: services already up are reused. Needs root and the packages that
# scripts/install-deps.sh installs with WARREN_TEST_DEPS=1.
set -euo pipefail
out="${1:-.test-services.env}"
: > "$out"

# PostgreSQL: Debian's cluster, with a superuser role and a database for the tests.
if command -v pg_lsclusters >/dev/null 2>&1; then
  read -r ver name port status _ < <(pg_lsclusters --no-header | head -1) || true
  if [ -z "${ver:-}" ]; then
    ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
    pg_createcluster "$ver" main >/dev/null
    read -r ver name port status _ < <(pg_lsclusters --no-header | head -1)
  fi
  if [ "$status" != "online" ]; then
    echo "test-services: starting PostgreSQL $ver/$name on port $port"
    pg_ctlcluster "$ver" "$name" start
  fi
  psql_su() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtAX "$@"; }
  for i in $(seq 1 50); do psql_su -c 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  if [ "$(psql_su -c "select 1 from pg_roles where rolname='warren_test'")" != "1" ]; then
    psql_su -c "create role warren_test login superuser password 'warren_test'"
  fi
  if [ "$(psql_su -c "select 1 from pg_database where datname='warren_test'")" != "1" ]; then
    psql_su -c "create database warren_test owner warren_test"
  fi
  echo "WARREN_TEST_DATABASE_URL=postgres://warren_test:warren_test@127.0.0.1:$port/warren_test?sslmode=disable" >> "$out"
  echo "test-services: PostgreSQL ready on 127.0.0.1:$port"
else
  echo "test-services: PostgreSQL not installed (scripts/install-deps.sh with WARREN_TEST_DEPS=1); its tests will skip" >&2
fi

# Redis: a private, non-persistent instance on its own port.
rport=56379
if command -v redis-server >/dev/null 2>&1; then
  if ! redis-cli -p "$rport" ping >/dev/null 2>&1; then
    echo "test-services: starting redis-server on 127.0.0.1:$rport"
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --daemonize yes \
      --logfile /tmp/warren-test-redis.log --pidfile /tmp/warren-test-redis.pid
    for i in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  echo "WARREN_TEST_REDIS_URL=redis://127.0.0.1:$rport/0" >> "$out"
  echo "test-services: redis ready on 127.0.0.1:$rport"
else
  echo "test-services: redis-server not installed (scripts/install-deps.sh with WARREN_TEST_DEPS=1); its tests will skip" >&2
fi
