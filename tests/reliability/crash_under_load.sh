#!/usr/bin/env bash
# Crash under load: SIGKILLs `quire serve` (SQLite, FULL) under many editors on many documents
# and checks after every restart that every acknowledged update is served, seqs are contiguous,
# `quire replay` is clean and sinceSeq reconnects converge
# (tests/eventlog/fault_crash_under_load_test.cc, hidden test "[.crash]").
#   tests/reliability/crash_under_load.sh [--cycles N] [--build DIR]   (default 10, build/)
set -euo pipefail
cd "$(dirname "$0")/../.."
cycles=10
build=${QUIRE_BUILD:-build}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cycles) cycles=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--cycles N] [--build DIR]" >&2; exit 2 ;;
  esac
done
bin="$build/tests/eventlog_tests"
[[ -x "$bin" && -x "$build/quire" ]] || { echo "build $bin and $build/quire first" >&2; exit 2; }
start=$(date +%s)
QUIRE_CRASH_CYCLES=$cycles "$bin" "[.crash]" 2>&1 | grep -v '^{' | tail -5
echo "crash_under_load: $cycles cycles in $(( $(date +%s) - start )) s"
