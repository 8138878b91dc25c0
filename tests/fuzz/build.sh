#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang 14, libclang-rt-14-dev) with ASan + UBSan
# through the CMake project tests/fuzz/CMakeLists.txt (the whole tree compiled once with fuzzer
# instrumentation), replays each seed corpus tests/fuzz/corpus/<target>/ and fuzzes each target
# for SECONDS, two targets at a time.
#   tests/fuzz/build.sh [SECONDS] [TARGET...]   default 20 s, all targets; 0 = build and replay
#                                               the corpora only
# Targets: http_server (the whole HTTP front in process: connection, router, REST, history,
# operations endpoints, upgrade), http_request (llhttp + target decoding), websocket_frame,
# json_protocol, yws_frames, hocuspocus (when tests/fuzz/hocuspocus_fuzzer.cc exists).
# Environment: QUIRE_FUZZ_IO_OUT (default build-fuzz-io) holds the build, the binaries, the
# working corpora (new inputs go there, not into the repository), logs and crash artifacts;
# CXX_FUZZ/CC_FUZZ override the compilers. The Yjs engine has its own target:
# tests/core/yjs_fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${QUIRE_FUZZ_IO_OUT:-build-fuzz-io}
seconds=${1:-20}
shift || true
cxx=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}
cc=${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}
[[ -n "$cxx" && -n "$cc" ]] || { echo "fuzz: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(http_server http_request websocket_frame json_protocol yws_frames)
  if [[ -f tests/fuzz/hocuspocus_fuzzer.cc ]]; then targets+=(hocuspocus); fi
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# -gline-tables-only: reports name file and line; full debug info would double the build time.
flags="-O1 -gline-tables-only -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
gen=()
command -v ninja >/dev/null && [[ ! -f "$out/Makefile" ]] && gen=(-G Ninja)
cmake -S tests/fuzz -B "$out" "${gen[@]}" -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
start=$(date +%s)
cmake --build "$out" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/%/_fuzzer}"
echo "fuzz: built ${targets[*]} in $(( $(date +%s) - start )) s"

# Replays the seeds, then fuzzes from a working copy of them. Prints one summary line.
run() {
  local t=$1 bin="$out/${1}_fuzzer" log="$out/$1.log"
  # Every seed once (a finding exits non-zero).
  if ! "$bin" -runs=0 -artifact_prefix="$out/${t}-" "$root/tests/fuzz/corpus/$t" >"$log.replay" 2>&1; then
    echo "fuzz: $t FAILED on its seed corpus (see $log.replay)"; tail -30 "$log.replay"; return 1
  fi
  [[ "$seconds" -gt 0 ]] || { echo "fuzz: $t corpus replayed ($(ls "$root/tests/fuzz/corpus/$t" | wc -l) seeds)"; return 0; }
  mkdir -p "$out/corpus/$t"
  cp -n "$root/tests/fuzz/corpus/$t"/* "$out/corpus/$t/" 2>/dev/null || true
  if ! "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/${t}-" "$out/corpus/$t" >"$log" 2>&1; then
    echo "fuzz: $t FAILED (see $log)"; grep -v '^#' "$log" | tail -40; return 1
  fi
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  echo "fuzz: $t ${seconds}s executions=${runs:-?}"
}

status=0
# Two at a time (CI has two cores); the order pairs slow targets with fast ones.
i=0
while (( i < ${#targets[@]} )); do
  pids=()
  for t in "${targets[@]:i:2}"; do run "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  i=$(( i + 2 ))
done
exit $status
