#!/usr/bin/env bash
# Make sure PostgreSQL is up on 127.0.0.1:5432 and murmur's database exists. Idempotent.
#   MURMUR_PG_HOST / MURMUR_PG_PORT / MURMUR_PG_USER  server and superuser (127.0.0.1, 5432, postgres)
#   MURMUR_PG_DATABASE                                database to create (murmur)
# The schema itself is applied by `murmur migrate` (and by every role at start).
set -euo pipefail
HOST=${MURMUR_PG_HOST:-127.0.0.1}; PORT=${MURMUR_PG_PORT:-5432}; USER_=${MURMUR_PG_USER:-postgres}
DB=${MURMUR_PG_DATABASE:-murmur}
say() { printf '[postgres] %s\n' "$*"; }
die() { printf '[postgres] error: %s\n' "$*" >&2; exit 1; }

if ! command -v pg_isready >/dev/null; then
  say "PostgreSQL client tools missing: installing postgresql from Debian"
  apt-get install -y -qq postgresql >/dev/null || die "apt-get install postgresql failed (run apt-get update first?)"
fi
if ! pg_isready -q -h "$HOST" -p "$PORT"; then
  say "not answering on $HOST:$PORT, starting the local cluster"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$HOST" -p "$PORT" && break; sleep 1; done
  pg_isready -q -h "$HOST" -p "$PORT" || die "PostgreSQL is not reachable on $HOST:$PORT"
fi
say "up on $HOST:$PORT"
if [ "$(psql -h "$HOST" -p "$PORT" -U "$USER_" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  psql -h "$HOST" -p "$PORT" -U "$USER_" -d postgres -qc "CREATE DATABASE \"$DB\"" || die "could not create database $DB"
  say "created database $DB"
fi
say "database $DB ready: postgres://$USER_@$HOST:$PORT/$DB"
