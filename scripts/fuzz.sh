#!/usr/bin/env bash
# Ubuzima Sync — MIT licence.
# Builds the libFuzzer targets (clang, ASan+UBSan), replays the committed corpus, then fuzzes each.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60; 0 = replay the corpus only)
# Exits non-zero on any crash, leak, UB, timeout or failed oracle. The committed corpus is never
# modified: the fuzzers grow a scratch copy. A finding is left in build-fuzz/artifacts/; once its
# root cause is fixed, copy it into fuzz/corpus/<target>/ so every later run replays it.
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UBUZIMA_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${UBUZIMA_JOBS:-2}
targets=(fuzz_sync_request fuzz_server_request fuzz_client_response)

bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DUBUZIMA_FUZZ=ON -DUBUZIMA_SANITIZE=address,undefined \
    -DUBUZIMA_BUILD_TESTS=OFF -DUBUZIMA_BUILD_EXAMPLES=OFF -DUBUZIMA_INSTALL=OFF >/dev/null
ninja -C "$build" -j"$jobs" "${targets[@]}"

export UBSAN_OPTIONS=print_stacktrace=1
artifacts="$build/artifacts"
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ubuzima-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
    bin="$build/fuzz/$t"
    corpus="$root/fuzz/corpus/$t"
    log="$build/$t.log"
    # 1. Every committed input, one by one (each one was a valid message or a past crash).
    mapfile -t files < <(find "$corpus" -type f | sort)
    echo "== $t: replaying ${#files[@]} corpus files"
    if ! "$bin" -rss_limit_mb=2048 -timeout=60 "${files[@]}" >"$log.replay" 2>&1; then
        echo "FAIL: $t crashed on a committed corpus file; see $log.replay"
        grep -a -E "ERROR|SUMMARY|Running:|fuzz_[a-z_]+:" "$log.replay" | tail -n 20 || true
        failed+=("$t(replay)")
        continue
    fi
    [ "$seconds" -gt 0 ] || continue
    # 2. Coverage-guided fuzzing from a scratch copy of the corpus.
    mkdir -p "$scratch/$t"
    cp -r "$corpus/." "$scratch/$t/"
    echo "== $t: fuzzing for ${seconds}s"
    if "$bin" "$scratch/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=60 \
        -artifact_prefix="$artifacts/$t-" -print_final_stats=1 >"$log" 2>&1; then
        grep -a -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr '\n' ' ' || true
        echo "$(grep -a -oE 'cov: [0-9]+' "$log" | tail -n 1)"
    else
        echo "FAIL: $t found a crash/leak/timeout; log $log"
        grep -a -E "ERROR|SUMMARY|fuzz_[a-z_]+:|Test unit written" "$log" | tail -n 20 || true
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, corpus replayed, ${seconds}s each: no crash, leak or UB"
