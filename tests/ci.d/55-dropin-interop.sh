#!/usr/bin/env bash
# Drop-in tests: real y-websocket and Hocuspocus providers (npm) against the release
# `quire serve` (~3 s; bounded by run.sh to 120 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/interop/run.sh "${QUIRE_BUILD:-build}/quire"
