#!/usr/bin/env bash
# Builds the libFuzzer target of the Yjs engine (clang 14 with libclang-rt-14-dev) with ASan and
# UBSan, seeds it with tests/data/yjs/fuzz_corpus/ and runs it.
#   tests/core/yjs_fuzz.sh [SECONDS]        default 60; new inputs go to build-fuzz/yjs_corpus/
# Copy inputs worth keeping (crashes once fixed, new coverage) into tests/data/yjs/fuzz_corpus/:
# yjs_fuzz_test replays that folder in every ctest run.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out/yjs_corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
  core/yjs/lib0.cc core/yjs/update.cc core/yjs/merge.cc core/yjs/inspect.cc core/yjs/protocol.cc \
  core/base64.cc core/status.cc tests/core/yjs_fuzzer.cc -o "$out/yjs_fuzzer"
cp -n tests/data/yjs/fuzz_corpus/* "$out/yjs_corpus/"
exec "$out/yjs_fuzzer" -max_total_time="${1:-60}" -max_len=8192 -timeout=10 "$out/yjs_corpus"
