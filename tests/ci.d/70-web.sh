#!/usr/bin/env bash
# The web client and page against the real server: Node tests of web/src/quire-client.js,
# the esbuild bundle, and the browser test (Debian chromium + playwright-core). Screenshots
# go to $QUIRE_BUILD/web-artifacts. Bounded: 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
build="${QUIRE_BUILD:-$PWD/build}"
QUIRE_WEB_ARTIFACTS="$build/web-artifacts" timeout 180 web/test.sh "$build/quire" --browser
echo "70-web: passed in $((SECONDS - start)) s"
