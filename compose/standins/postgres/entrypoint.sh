#!/bin/bash
# The official image's start-up, reduced to what the workbook uses: on an empty data folder,
# create the cluster (UTF-8, as the official image does) with POSTGRES_USER / POSTGRES_PASSWORD
# and the database POSTGRES_DB, then run /docker-entrypoint-initdb.d/ in name order, as the
# official image does: *.sql and *.sql.gz through psql as POSTGRES_USER on POSTGRES_DB, *.sh
# run (executable) or sourced (not). compose/scale.yml creates the API's database that way.
set -euo pipefail
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

sql() {
  psql -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --no-password --no-psqlrc --quiet "$@"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  password_file="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
  initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth-local=trust \
    --encoding=UTF8 --locale=C.UTF-8 \
    --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # A server on the local socket only, for this script (the official image's temporary one).
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    sql --dbname=postgres --set=db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  shopt -s nullglob
  for file in /docker-entrypoint-initdb.d/*; do
    case "$file" in
      *.sh) echo "$0: running $file"; if [ -x "$file" ]; then "$file"; else . "$file"; fi ;;
      *.sql) echo "$0: running $file"; sql --dbname="$POSTGRES_DB" --file="$file" ;;
      *.sql.gz) echo "$0: running $file"; gunzip --stdout "$file" | sql --dbname="$POSTGRES_DB" ;;
      *) echo "$0: ignoring $file" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
