#!/usr/bin/env bash
# io fuzzers: the whole HTTP front in process (http_server), HTTP parsing (http_request),
# WebSocket frames, the JSON protocol, y-websocket frames and Hocuspocus frames (when present).
# Builds them with clang-14 + ASan/UBSan (tests/fuzz/CMakeLists.txt), replays every seed corpus
# in tests/fuzz/corpus/, then fuzzes each target 20 s, two at a time. About 3 minutes on 2 cores
# from a clean build directory (~90 s of it compiling).
set -euo pipefail
cd "$(dirname "$0")/../.."
QUIRE_FUZZ_IO_OUT=${QUIRE_BUILD:?}/../build-fuzz-io exec tests/fuzz/build.sh 20
