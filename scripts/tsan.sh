#!/usr/bin/env bash
# Ubuzima Sync — MIT licence.
# Builds the client, the server and their tests with ThreadSanitizer and runs them; any report fails.
#
# usage: scripts/tsan.sh
# Runs the client unit tests (among them tests/unit/client/threads_test.cpp: one Database used
# from four threads at once), the server's in-process concurrency tests, the Beast listener's
# tests (its I/O thread, handler pool and streamed bodies) and the integration tests
# (real TSan-built ubuzima-server processes on 127.0.0.1). Every process, the spawned servers
# included, writes its reports to build-tsan/tsan-report.<pid>; one such file fails the run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UBUZIMA_TSAN_BUILD_DIR:-$root/build-tsan}
jobs=${UBUZIMA_JOBS:-2}

bash "$root/scripts/install-deps.sh"
# -O1: TSan's recommended level (fast enough, still precise stacks).
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DUBUZIMA_SANITIZE=thread -DUBUZIMA_BUILD_EXAMPLES=OFF -DUBUZIMA_INSTALL=OFF >/dev/null
ninja -C "$build" -j"$jobs" ubuzima_client_tests ubuzima_server_tests ubuzima_integration_tests ubuzima-server

rm -f "$build"/tsan-report.*
# cpprestsdk and Boost.Asio are not built with TSan; tests/tsan.supp names only their frames.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 \
suppressions=$root/tests/tsan.supp log_path=$build/tsan-report"

failed=()
run() {
    local name=$1
    shift
    echo "== $name"
    if ! (cd "$build" && "$@"); then failed+=("$name"); fi
}
run client "$build/tests/ubuzima_client_tests"
run server-concurrency "$build/tests/ubuzima_server_tests" "[concurrency]"
run beast-listener "$build/tests/ubuzima_server_tests" "[beast]"
run integration "$build/tests/ubuzima_integration_tests"

reports=("$build"/tsan-report.*)
if [ -e "${reports[0]}" ]; then
    echo "ThreadSanitizer reports:"
    for r in "${reports[@]}"; do
        echo "---- $r"
        head -n 80 "$r"
    done
    failed+=("tsan-reports")
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "tsan: FAILED: ${failed[*]}"
    exit 1
fi
echo "tsan: client, server concurrency and integration tests: no ThreadSanitizer report"
