#!/usr/bin/env bash
# Configures and builds into build/ (or $1 with extra CMake arguments after it).
#   scripts/build.sh                          release build in build/
#   scripts/build.sh build-asan -DQUIRE_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$dir" -DQUIRE_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$jobs"
