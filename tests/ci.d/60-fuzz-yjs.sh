#!/usr/bin/env bash
# libFuzzer run of the Yjs engine (tests/core/yjs_fuzz.sh): build with clang 14 (ASan + UBSan +
# libFuzzer), replay the seed corpus, then fuzz for QUIRE_YJS_FUZZ_SECONDS (default 20, at most
# 60: a smoke within CI's 30-minute budget). About 45 s in all on 2 cores. A finding fails the
# step; the input is left in $QUIRE_BUILD/yjs-fuzz/ (crash-*, leak-*, timeout-*).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${QUIRE_YJS_FUZZ_SECONDS:-20}
(( seconds <= 60 )) || seconds=60
out="${QUIRE_BUILD:-build}/yjs-fuzz"
rm -rf "$out/yjs_corpus"
QUIRE_FUZZ_OUT="$out" exec tests/core/yjs_fuzz.sh "$seconds"
