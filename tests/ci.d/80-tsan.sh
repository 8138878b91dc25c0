#!/usr/bin/env bash
# ThreadSanitizer over the storage-thread handoff: the eventlog and projection tests where threads
# meet (AsyncLog and the fault injector, the crash test, DocumentService, the whole server under
# storage faults and under load, and `quire serve` itself, which the crash test starts and
# SIGKILLs), with core, eventlog, projection, the test support and the tests compiled with
# -fsanitize=thread; io and cli (loop thread only, by contract) are linked from the release
# build (tests/reliability/tsan/CMakeLists.txt says why). About 3 min on 2 shared cores (it was
# ~6 when every library and every test was compiled with TSan).
set -euo pipefail
cd "$(dirname "$0")/../.."
release=$(cd "${QUIRE_BUILD:?}" && pwd)
dir=${QUIRE_TSAN_BUILD:-$release/../build-tsan}
# A directory configured for another source tree (the whole project, as before) starts afresh.
if [[ -f "$dir/CMakeCache.txt" ]] && ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=.*tests/reliability/tsan$" "$dir/CMakeCache.txt"; then
  rm -rf "$dir"
fi
start=$(date +%s)
# -O1 -g1 (line tables only): the cheapest build whose reports still name file and line;
# -DNDEBUG as the release build the other libraries come from.
flags="-O1 -g1 -DNDEBUG -fsanitize=thread"
cmake -S tests/reliability/tsan -B "$dir" -DCMAKE_BUILD_TYPE=Tsan -DQUIRE_WERROR=ON \
  -DQUIRE_RELEASE_BUILD="$release" -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
# The eventlog and projection tests in which threads meet (the storage thread, a server's loop
# thread, client threads); the others are single-threaded, where TSan has nothing to find (they
# run in the release and ASan suites).
tests=()
for f in tests/eventlog/*_test.cc tests/projection/*_test.cc; do
  if grep -qE 'std::thread|AsyncLog|TestServer|WsHarness|service\(\)' "$f"; then
    tests+=("$(basename "$f" .cc)")
  fi
done
cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)" --target quire_tsan "${tests[@]}" >"$dir/build.log" 2>&1 ||
  { tail -40 "$dir/build.log"; exit 1; }
echo "tsan: built in $(( $(date +%s) - start )) s"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
status=0
for t in "${tests[@]}"; do
  t0=$(date +%s)
  if "$dir/tests/$t" >"$dir/$t.log" 2>&1; then
    echo "tsan: $t ok ($(( $(date +%s) - t0 )) s)"
  else
    echo "tsan: $t FAILED"; grep -v '^{' "$dir/$t.log" | tail -60; status=1
  fi
done
echo "tsan: $(( $(date +%s) - start )) s in all"
exit $status
