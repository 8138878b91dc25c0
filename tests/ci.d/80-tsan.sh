#!/usr/bin/env bash
# ThreadSanitizer over the storage-thread handoff: builds the eventlog and projection test
# executables (and `quire`, which the crash test starts) with -fsanitize=thread in their own
# build directory and runs them (the build dominates: every library is compiled again).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${QUIRE_TSAN_BUILD:-${QUIRE_BUILD:?}/../build-tsan}
# -O1 -g1 (line tables only): the cheapest build whose reports still name file and line.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE= -DQUIRE_WERROR=ON -DQUIRE_BUILD_BENCHMARKS=OFF \
  -DCMAKE_C_FLAGS="-O1 -g1 -fsanitize=thread" -DCMAKE_CXX_FLAGS="-O1 -g1 -fsanitize=thread" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
tests=()
for f in tests/eventlog/*_test.cc tests/projection/*_test.cc; do tests+=("$(basename "$f" .cc)"); done
cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)" --target quire "${tests[@]}"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
status=0
for t in "${tests[@]}"; do
  start=$(date +%s)
  if "$dir/tests/$t" >"$dir/$t.log" 2>&1; then
    echo "tsan: $t ok ($(( $(date +%s) - start )) s)"
  else
    echo "tsan: $t FAILED"; grep -v '^{' "$dir/$t.log" | tail -60; status=1
  fi
done
exit $status
