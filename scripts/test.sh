#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
#  1. the Catch2 suites on a release build,
#  2. the same suites under ASan + UBSan,
#  3. every step in tests/ci.d/ (in name order): interoperability tests against real npm
#     packages, fuzz smoke runs, ... Each step gets QUIRE_BUILD and QUIRE_ASAN_BUILD.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/setup.sh --test
jobs=$(nproc 2>/dev/null || echo 2)

echo "== release build and tests"
scripts/build.sh build
(cd build && ctest --output-on-failure -j"$jobs" --timeout 600)
echo "== release build and tests done at $((SECONDS - start)) s"

echo "== sanitizer build (ASan + UBSan) and tests"
# -O0 with line tables only (-g1): reports keep file and line, the build is ~10% faster.
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG=-g1 \
  -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DQUIRE_SANITIZE=ON -DQUIRE_BUILD_BENCHMARKS=OFF
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j"$jobs" --timeout 900)
echo "== sanitizer build and tests done at $((SECONDS - start)) s"

export QUIRE_BUILD="$PWD/build" QUIRE_ASAN_BUILD="$PWD/build-asan"
for step in tests/ci.d/*.sh; do
  [[ -e "$step" ]] || continue
  echo "== $(basename "$step")"
  bash "$step"
  echo "== $(basename "$step") done at $((SECONDS - start)) s"
done
echo "== all tests passed in $((SECONDS - start)) s"
