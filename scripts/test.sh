#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the Catch2 suites (release
# build, then again under ASan+UBSan), `quire replay` on a log the tests wrote, and the
# JavaScript interoperability tests against the real `yjs` package.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
jobs=$(nproc 2>/dev/null || echo 2)

echo "== release build and tests"
scripts/build.sh build
(cd build && ctest --output-on-failure -j"$jobs" --timeout 600)

echo "== sanitizer build (ASan + UBSan) and tests"
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DQUIRE_SANITIZE=ON -DQUIRE_BUILD_BENCHMARKS=OFF
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j"$jobs" --timeout 900)

if [[ -x tests/js/run.sh ]]; then
  echo "== JavaScript interoperability tests"
  tests/js/run.sh build/quire
fi
echo "== all tests passed"
