#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start the machine's own servers when they are down.
# Used by `make test`, `make run` and .ci/run. It never installs or configures a server of its own.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 -t 3 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 3 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

# `pg-optional` (make run): the portal itself runs on SQLite, but the sandbox's backup Jobs dump small databases of
# the local PostgreSQL; without it the demo runs and only its backups fail, saying why.
want_pg=1
[ "${1:-}" = "redis-only" ] && want_pg=0
[ "${1:-}" = "pg-optional" ] && want_pg=optional

if [ "$want_pg" != 0 ] && ! pg_up; then
  echo "PostgreSQL is down; starting it"
  if command -v pg_ctlcluster >/dev/null; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  if ! pg_up; then
    [ "$want_pg" = optional ] || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
    echo "PostgreSQL does not answer on 127.0.0.1:5432: the sandbox's backups will fail" >&2
  fi
fi

if ! redis_up; then
  echo "Redis is down; starting it"
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { echo "Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
fi
