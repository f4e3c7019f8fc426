#!/usr/bin/env bash
# Ubuzima Sync — THE test command (what .ci/run calls). Installs what is missing, then:
#   1. builds everything with gcc (-Werror) into build/;
#   2. fuzzes: clang + ASan/UBSan + libFuzzer, committed corpus replayed, 60 s per target
#      (build-fuzz/; the same sources also build warning-free with clang this way);
#   3. ThreadSanitizer build of the client, server, integration and multi-thread tests (build-tsan/);
#   4. the benchmarks at a tiny size so they cannot rot (build-bench/; figures: bench/run.sh);
#   5. every test with ctest: unit, integration (real server on 127.0.0.1), C API, convergence
#      simulator (5 devices x 1000 seeds x 200 steps, 8 devices x 200 seeds x 300 steps), TLS,
#      fault proxy, crash and disk-full tests, on the embedded SQLite store;
#   6. the server, integration and simulator suites again with the store on PostgreSQL, and two
#      server processes on one database killed -9 under load, in a throw-away PostgreSQL 15
#      cluster (scripts/test-postgres.sh: pg_virtualenv, dropped afterwards).
# UBUZIMA_QUICK=1 skips steps 2-4 (for a fast local loop).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-deps.sh
python3 schema/check_schema.py

BUILD_DIR="$root/build" bash scripts/build.sh

if [ "${UBUZIMA_QUICK:-0}" != 1 ]; then
    bash scripts/fuzz.sh 60
    bash scripts/tsan.sh
    bash bench/run.sh --tiny
fi

cd "$root/build"
ctest --output-on-failure --timeout 1800 --label-exclude postgres
BUILD_DIR="$root/build" bash "$root/scripts/test-postgres.sh"
