#!/usr/bin/env bash
# A throw-away PostgreSQL server on loopback for the shared-study test.
#   .ci/postgres.sh start   -> prints the SQLAlchemy URL of a fresh database
#   .ci/postgres.sh stop    -> drops the database and stops the server
set -euo pipefail
DB=natmu_ci USER_=natmu_ci PASS=natmu_ci
version() { ls /etc/postgresql 2>/dev/null | sort -n | tail -1; }
psql_() { su postgres -c "psql -q -v ON_ERROR_STOP=1 -c \"$1\"" >/dev/null; }
case "${1:-}" in
  start)
    if [ -z "$(version)" ]; then
      (apt-get install -y -qq postgresql || { apt-get update -qq && apt-get install -y -qq postgresql; }) >/dev/null
    fi
    v=$(version)
    # only the URL goes to stdout: pg_ctlcluster prints notes such as "Removed stale pid file."
    pg_ctlcluster "$v" main start >&2 2>/dev/null || pg_ctlcluster "$v" main status >/dev/null
    for _ in $(seq 30); do su postgres -c "pg_isready -q -h 127.0.0.1" && break; sleep 1; done
    psql_ "DROP DATABASE IF EXISTS $DB"
    psql_ "DROP ROLE IF EXISTS $USER_"
    psql_ "CREATE ROLE $USER_ LOGIN PASSWORD '$PASS'"
    psql_ "CREATE DATABASE $DB OWNER $USER_"
    echo "postgresql+psycopg2://$USER_:$PASS@127.0.0.1:5432/$DB"
    ;;
  stop)
    v=$(version)
    psql_ "DROP DATABASE IF EXISTS $DB" || true
    psql_ "DROP ROLE IF EXISTS $USER_" || true
    pg_ctlcluster "$v" main stop || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
