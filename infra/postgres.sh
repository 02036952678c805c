#!/usr/bin/env bash
# Make sure PostgreSQL is up on 127.0.0.1:5432 with murmur's role and database. Idempotent. Works on a
# cluster with trust authentication and on a stock Debian one (peer on the local socket, scram-sha-256 over
# TCP): administration goes over TCP as the superuser when that is allowed, else over the socket as the
# `postgres` system user; murmur's role gets a generated password, kept in ~/.pgpass (where murmur, psql and
# sqlx find it), so the default MURMUR_DATABASE_URL (postgres://murmur@127.0.0.1:5432/murmur) works as is.
#   MURMUR_PG_HOST / MURMUR_PG_PORT       server (127.0.0.1, 5432)
#   MURMUR_PG_ADMIN                       superuser to administer with (postgres)
#   MURMUR_PG_ROLE / MURMUR_PG_DATABASE   role and database to make (murmur, murmur)
# The schema itself is applied by `murmur migrate` (and by every role at start).
set -euo pipefail
HOST=${MURMUR_PG_HOST:-127.0.0.1}; PORT=${MURMUR_PG_PORT:-5432}; ADMIN_USER=${MURMUR_PG_ADMIN:-postgres}
ROLE=${MURMUR_PG_ROLE:-murmur}; DB=${MURMUR_PG_DATABASE:-murmur}
PGPASS=${PGPASSFILE:-$HOME/.pgpass}
say() { printf '[postgres] %s\n' "$*"; }
die() { printf '[postgres] error: %s\n' "$*" >&2; exit 1; }
for name in "$ROLE" "$DB"; do
  [[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || die "role and database names are lower-case identifiers, got '$name'"
done

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

# How to administer: the superuser over TCP (trust, or a password it already has), else peer over the socket.
admin() { psql -w -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U "$ADMIN_USER" "$@"; }
if ! admin -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && id "$ADMIN_USER" >/dev/null 2>&1 \
      && runuser -u "$ADMIN_USER" -- psql -w -X -p "$PORT" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
    admin() { runuser -u "$ADMIN_USER" -- psql -w -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
    say "administering over the local socket as the $ADMIN_USER system user"
  else
    die "cannot administer $HOST:$PORT as $ADMIN_USER (no trust, no password, no local socket): set PGPASSWORD, or MURMUR_PG_ADMIN to a superuser that can log in"
  fi
fi
query() { admin -d "${2:-postgres}" -tAc "$1"; }

if [ "$(query "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  query "CREATE ROLE $ROLE LOGIN CREATEDB" >/dev/null
  say "created role $ROLE"
fi
# The role logs in over TCP as murmur will: with trust at once, else with the password in ~/.pgpass (made
# here when missing or stale).
if ! psql -w -X -h "$HOST" -p "$PORT" -U "$ROLE" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
  password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  query "ALTER ROLE $ROLE LOGIN PASSWORD '$password'" >/dev/null
  touch "$PGPASS" && chmod 600 "$PGPASS"
  grep -v "^$HOST:$PORT:\*:$ROLE:" "$PGPASS" > "$PGPASS.new" || true
  printf '%s:%s:*:%s:%s\n' "$HOST" "$PORT" "$ROLE" "$password" >> "$PGPASS.new"
  mv "$PGPASS.new" "$PGPASS" && chmod 600 "$PGPASS"
  psql -w -X -h "$HOST" -p "$PORT" -U "$ROLE" -d postgres -tAc 'SELECT 1' >/dev/null \
    || die "role $ROLE cannot log in over TCP even with its password (check pg_hba.conf for $HOST)"
  say "role $ROLE logs in with a generated password, kept in $PGPASS"
fi

owner=$(query "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$DB'")
if [ -z "$owner" ]; then
  query "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
  say "created database $DB"
elif [ "$owner" != "$ROLE" ]; then
  # Made by an earlier version as the superuser: hand it and murmur's objects in it to the role.
  query "ALTER DATABASE $DB OWNER TO $ROLE" >/dev/null
  admin -d "$DB" -c "DO \$\$ DECLARE r record; BEGIN
      FOR r IN SELECT format('ALTER TABLE public.%I OWNER TO $ROLE', tablename) AS q FROM pg_tables
               WHERE schemaname = 'public' AND tableowner <> '$ROLE' LOOP EXECUTE r.q; END LOOP;
      FOR r IN SELECT format('ALTER FUNCTION public.%I() OWNER TO $ROLE', proname) AS q FROM pg_proc
               WHERE pronamespace = 'public'::regnamespace AND pg_get_userbyid(proowner) <> '$ROLE' LOOP EXECUTE r.q; END LOOP;
    END \$\$" >/dev/null
  say "database $DB (owned by $owner) handed to $ROLE"
fi
say "database $DB ready: postgres://$ROLE@$HOST:$PORT/$DB"
