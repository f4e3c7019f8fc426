#!/usr/bin/env bash
# Ubuzima Sync — MIT licence.
# Long tier of the convergence simulator: many more seeds, devices and steps than CI runs.
#
# Usage: scripts/sim-long.sh [SEEDS] [DEVICES] [STEPS] [FIRST_SEED]
#   defaults: 20000 seeds x 8 devices x 500 steps from seed 1 (hours on a 2-core machine).
# Environment: BUILD_DIR (default build), JOBS (parallel shards, default 2).
# Each shard runs a disjoint seed range; a failing seed prints one "FAIL seed ... replay: ..." line.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-20000}
DEVICES=${2:-8}
STEPS=${3:-500}
FIRST=${4:-1}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}

if [ ! -x "$BUILD_DIR/tests/sim/ubuzima_sim" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ninja -C "$BUILD_DIR" -j2 ubuzima_sim
fi

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
PER=$(( (SEEDS + JOBS - 1) / JOBS ))
PIDS=()
for ((j = 0; j < JOBS; j++)); do
    START=$(( FIRST + j * PER ))
    COUNT=$(( SEEDS - j * PER ))
    (( COUNT > PER )) && COUNT=$PER
    (( COUNT <= 0 )) && break
    "$BUILD_DIR/tests/sim/ubuzima_sim" --first-seed "$START" --seeds "$COUNT" --devices "$DEVICES" --steps "$STEPS" \
        > "$LOGS/shard-$j.log" 2>&1 &
    PIDS+=($!)
done
STATUS=0
for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done
cat "$LOGS"/shard-*.log
exit $STATUS
