#!/usr/bin/env bash
# Builds the libFuzzer target of the Yjs engine (clang 14 with libclang-rt-14-dev) with ASan and
# UBSan, replays the seed corpus tests/data/yjs/fuzz_corpus/ and fuzzes from it.
#   tests/core/yjs_fuzz.sh [SECONDS]   default 60; 0 = build and replay the seed corpus only
# Environment: QUIRE_FUZZ_OUT (default build-fuzz) holds the binary, the working corpus
# (yjs_corpus/, new inputs go there) and crash artifacts; CXX_FUZZ overrides the compiler.
# Copy inputs worth keeping (crashes once fixed, new coverage) into tests/data/yjs/fuzz_corpus/:
# yjs_fuzz_test replays that folder in every ctest run.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${QUIRE_FUZZ_OUT:-build-fuzz}
seconds=${1:-60}
cxx=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}
[[ -n "$cxx" ]] || { echo "yjs_fuzz.sh: clang++-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$out/yjs_corpus"
"$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
  core/yjs/lib0.cc core/yjs/update.cc core/yjs/merge.cc core/yjs/inspect.cc core/yjs/protocol.cc \
  core/yjs/same_document.cc core/base64.cc core/status.cc tests/core/yjs_fuzzer.cc \
  -o "$out/yjs_fuzzer"
# Every seed input once, under ASan and UBSan (a finding exits non-zero).
"$out/yjs_fuzzer" -runs=0 -artifact_prefix="$out/" tests/data/yjs/fuzz_corpus
[[ "$seconds" -gt 0 ]] || exit 0
cp -n tests/data/yjs/fuzz_corpus/* "$out/yjs_corpus/"
exec "$out/yjs_fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
  -artifact_prefix="$out/" "$out/yjs_corpus"
