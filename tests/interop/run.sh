#!/usr/bin/env bash
# Drop-in tests: real y-websocket and Hocuspocus providers (npm) against `quire serve`, with
# node --test (yws.test.js, hocuspocus.test.js, auth.test.js: access control with the real
# clients).
#   tests/interop/run.sh build/quire
# Needs `npm install` in tests/interop (scripts/setup.sh --test does it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: tests/interop/run.sh QUIRE_BINARY}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ -x "$bin" ]] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
if [[ ! -d "$here/node_modules" ]]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
cd "$here"
QUIRE_BIN="$bin" exec timeout 120 node --test --test-force-exit --test-timeout=60000 *.test.js
