#!/usr/bin/env bash
# io fuzzers (HTTP request handling, WebSocket frames, JSON protocol): build with clang-14 +
# ASan/UBSan, replay tests/fuzz/corpus/, fuzz each target 20 s (~100 s in all on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
QUIRE_FUZZ_IO_OUT=${QUIRE_BUILD:?}/../build-fuzz-io exec tests/fuzz/build.sh 20
