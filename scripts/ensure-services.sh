#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer before the tests run:
# start them when installed but stopped, install them (Debian, as root) when missing, else fail clearly.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

start_pg() {
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    for v in /etc/postgresql/*; do pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start 2>/dev/null; done
  fi
}
start_redis() {
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1
  fi
}
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 1; done; return 1; }

if ! pg_up; then
  start_pg
  if ! wait_for pg_up && can_install; then
    echo "installing PostgreSQL" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null && start_pg
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      grep -q "127.0.0.1/32 *trust" "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    done
    start_pg; pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main reload 2>/dev/null
  fi
fi
if ! redis_up; then
  start_redis
  if ! wait_for redis_up && can_install; then
    echo "installing Redis" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null && start_redis
  fi
fi

failed=0
wait_for pg_up || { echo "PostgreSQL is not reachable at 127.0.0.1:5432 (trust auth, user postgres): start it, or set HORDE_TEST_POSTGRES_URL" >&2; failed=1; }
wait_for redis_up || { echo "Redis is not reachable at 127.0.0.1:6379: start it, or set HORDE_TEST_REDIS_URL" >&2; failed=1; }
if [ "$failed" = 1 ] && [ "${CI:-}" = "true" ]; then exit 1; fi
exit 0
