#!/usr/bin/env bash
# io fuzzers: the whole HTTP front in process (http_server), HTTP parsing (http_request),
# WebSocket frames, the JSON protocol, y-websocket frames and Hocuspocus frames (when present).
# Builds them with clang-14 + ASan/UBSan (tests/fuzz/CMakeLists.txt), replays every seed corpus
# in tests/fuzz/corpus/, then fuzzes each target 10 s, two at a time (a smoke: the CI run has a
# 30-minute budget; tests/fuzz/build.sh SECONDS runs longer by hand). About 2.5 minutes on 2
# cores from a clean build directory (~115 s of it compiling).
set -euo pipefail
cd "$(dirname "$0")/../.."
QUIRE_FUZZ_IO_OUT=${QUIRE_BUILD:?}/../build-fuzz-io exec tests/fuzz/build.sh 10
