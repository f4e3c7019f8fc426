#!/usr/bin/env bash
# Ubuzima Sync — THE test command: installs what is missing, builds with gcc and with clang
# (-Werror both), and runs every test with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-deps.sh
python3 schema/check_schema.py

BUILD_DIR="$root/build" bash scripts/build.sh
# Everything must also build warning-free (-Werror) with clang: the client ships inside
# Android/iOS apps, whose toolchains are clang.
BUILD_DIR="$root/build-clang" bash scripts/build.sh -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++

cd "$root/build"
ctest --output-on-failure --timeout 1200
