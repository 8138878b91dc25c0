#!/usr/bin/env bash
# Interoperability tests of Quire against the real npm packages, with node's built-in runner.
#   tests/js/run.sh build/quire
# Needs `npm install` in tests/js (scripts/setup.sh --test does it). Environment:
#   QUIRE_YJS_FRESH_SESSIONS=N  random Yjs sessions with new seeds on top of the fixed ones (2)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: tests/js/run.sh QUIRE_BINARY}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ -x "$bin" ]] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
if [[ ! -d "$here/node_modules" ]]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
cd "$here"
QUIRE_BIN="$bin" exec node --test *.test.js
