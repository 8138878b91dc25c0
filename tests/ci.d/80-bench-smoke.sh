#!/usr/bin/env bash
# Smoke of the benchmark harness (issue 6): the load generator's Yjs encoder checked against
# npm yjs, then every scenario of benchmarks/run in --quick form (seconds each) against Quire
# (SQLite FULL and memory, and SQLite through its y-websocket and Hocuspocus endpoints), plus
# y-websocket and Hocuspocus when benchmarks/peers.sh installed them. Asserts that every update
# reaches every other editor, nothing is lost and no error occurs (--check), and S7 that every
# client ends with the trace's text; never asserts timings.
# Bounded: 4 minutes (about 75 s for Quire only, 110 s with the peers).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
build="${QUIRE_BUILD:-$PWD/build}"
loadgen="$build/benchmarks/loadgen_bench"
if [ ! -x "$loadgen" ]; then
  echo "80-bench-smoke: $loadgen not built (QUIRE_BUILD_BENCHMARKS=OFF?)" >&2
  exit 1
fi
# yjs from benchmarks/js or, in CI, from tests/js (installed by scripts/setup.sh --test).
NODE_PATH="$PWD/benchmarks/js/node_modules:$PWD/tests/js/node_modules" \
  "$loadgen" --emit-updates=200 | NODE_PATH="$PWD/benchmarks/js/node_modules:$PWD/tests/js/node_modules" \
  node benchmarks/js/check_generated_updates.js
servers=quire-sqlite,quire-memory,quire-sqlite-yws,quire-sqlite-hocuspocus
if [ -d benchmarks/peers/node_modules ]; then servers=$servers,yws,hocuspocus; fi
timeout 240 benchmarks/run all --quick --check --no-save --build "$build" --servers "$servers"
echo "80-bench-smoke: passed in $((SECONDS - start)) s"
