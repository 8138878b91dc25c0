#!/usr/bin/env bash
# Tests of the web client and page against the real server:
#   web/test.sh build/quire            Node tests of web/src/quire-client.js (node --test)
#   web/test.sh build/quire --browser  also the browser test (Debian chromium + playwright-core)
# Needs `npm ci` in web/ (scripts/setup.sh --test does it); the browser test builds the bundle.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: web/test.sh QUIRE_BINARY [--browser]}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ -x "$bin" ]] || { echo "test.sh: $bin is not an executable" >&2; exit 2; }
cd "$here"
export QUIRE_BIN="$bin"
node --test test/client.test.js
if [[ "${2:-}" == "--browser" ]]; then
  ./build.sh
  node test/browser.test.js
fi
