#!/usr/bin/env bash
# Ubuzima Sync — installs the Debian 12 packages the build and tests need, only when missing.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
          libsqlite3-dev sqlite3 libpq-dev postgresql-15 postgresql-client-15 libcurl4-openssl-dev libcpprest-dev libssl-dev zlib1g-dev
          nlohmann-json3-dev catch2 curl python3 python3-prometheus-client)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "Installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
