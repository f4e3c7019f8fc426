#!/usr/bin/env bash
# Ubuzima Sync — THE test command: installs what is missing, builds (gcc, -Werror), checks the
# portable core also builds warning-free with clang, and runs every test with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-deps.sh
python3 schema/check_schema.py

BUILD_DIR="$root/build" bash scripts/build.sh
# The client side (sync/, schema/, client/) must also build warning-free with clang: it is the
# part that ships inside Android/iOS apps, whose toolchains are clang.
CC=clang CXX=clang++ BUILD_DIR="$root/build-clang" bash scripts/build.sh -DUBUZIMA_BUILD_SERVER=OFF \
    -DUBUZIMA_BUILD_TESTS=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++

cd "$root/build"
ctest --output-on-failure --timeout 1200
