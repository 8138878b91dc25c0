#!/usr/bin/env bash
# Builds the io libFuzzer targets (clang 14, libclang-rt-14-dev) with ASan + UBSan, replays the
# seed corpora tests/fuzz/corpus/<target>/ and fuzzes each target for SECONDS.
#   tests/fuzz/build.sh [SECONDS]     default 20; 0 = build and replay the corpora only
# Environment: QUIRE_FUZZ_IO_OUT (default build-fuzz-io) holds the binaries, the working corpora
# (new inputs go there, not into the repository) and crash artifacts; CXX_FUZZ/CC_FUZZ override
# the compilers. The Yjs decoder has its own target: tests/core/yjs_fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${QUIRE_FUZZ_IO_OUT:-build-fuzz-io}
seconds=${1:-20}
cxx=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}
cc=${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}
[[ -n "$cxx" && -n "$cc" ]] || { echo "fuzz: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$out"
flags=(-O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
llhttp_dir=/usr/share/llhttp
llhttp_inc=/usr/share/include/llhttp
# llhttp sources once, with the sanitizers (not the fuzzer main).
if [[ ! -f "$out/llhttp.a" ]]; then
  for f in api http llhttp; do
    "$cc" -O1 -g -fsanitize=fuzzer-no-link,address,undefined -I"$llhttp_inc" -c "$llhttp_dir/$f.c" -o "$out/llhttp_$f.o"
  done
  ar rcs "$out/llhttp.a" "$out"/llhttp_*.o
fi
common=(core/status.cc core/base64.cc core/log.cc core/ids.cc core/types.cc core/config.cc)
build() {  # name sources... -- libs...
  local name=$1; shift
  "$cxx" -std=c++20 "${flags[@]}" -I. -I"$llhttp_inc" "$@" -o "$out/$name"
}
build http_request_fuzzer tests/fuzz/http_request_fuzzer.cc io/internal/http_target.cc \
  io/http_message.cc "${common[@]}" "$out/llhttp.a" &
build websocket_frame_fuzzer tests/fuzz/websocket_frame_fuzzer.cc io/websocket_session.cc \
  "${common[@]}" -lwslay &
wait
build json_protocol_fuzzer tests/fuzz/json_protocol_fuzzer.cc io/json_protocol.cc "${common[@]}"
status=0
for t in http_request websocket_frame json_protocol; do
  bin="$out/${t}_fuzzer"
  # Every seed once (a finding exits non-zero).
  "$bin" -runs=0 -artifact_prefix="$out/${t}-" tests/fuzz/corpus/$t 2>&1 | tail -1
  [[ "$seconds" -gt 0 ]] || continue
  mkdir -p "$out/corpus/$t"
  cp -n tests/fuzz/corpus/$t/* "$out/corpus/$t/" 2>/dev/null || true
  if ! "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$out/${t}-" "$out/corpus/$t" > "$out/$t.log" 2>&1; then
    echo "fuzz-io: $t FAILED (see $out/$t.log)"; tail -30 "$out/$t.log"; status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/$t.log" | awk '{print $2}' | tail -1)
  echo "fuzz-io: $t ${seconds}s executions=${runs:-?}"
done
exit $status
