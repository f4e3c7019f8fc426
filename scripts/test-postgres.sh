#!/usr/bin/env bash
# Ubuzima Sync — the server tests on PostgreSQL. Starts a throw-away PostgreSQL 15 cluster
# (pg_virtualenv -t: temp directory, works as root, dropped afterwards), then runs the ctest
# entries labelled "postgres": ubuzima_server_tests_pg (the whole server suite with
# UBUZIMA_TEST_PG set, each fixture on a fresh database, plus the [postgres] feed tests),
# ubuzima_integration_tests_pg (the integration suite, each fixture's server process on a
# database of its own, plus devices through two real `ubuzima-server --db` processes),
# ubuzima_multi_server_tests (two processes on one database, one killed -9 under load) and
# ubuzima_sim_pg (the convergence simulator with its server on PostgreSQL).
# BUILD_DIR defaults to build/. Exits non-zero when a test fails (or the cluster cannot start).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$root/build}"
command -v pg_virtualenv >/dev/null || { echo "pg_virtualenv missing: apt-get install postgresql-15" >&2; exit 1; }
# A plain `ctest` without a cluster reports ubuzima_server_tests_pg as skipped (PGHOST unset);
# here it must really run, so a skip counts as a failure.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
pg_virtualenv -t -o fsync=off -o max_connections=200 \
    ctest --test-dir "$BUILD_DIR" -L postgres --output-on-failure 2>&1 | tee "$out" || status=$?
if [ "$status" -eq 0 ] && grep -q '\*\*\*Skipped' "$out"; then
    echo "test-postgres.sh: the postgres tests were skipped (no cluster reached)" >&2
    status=1
fi
exit "$status"
