#!/usr/bin/env bash
# Drop-in tests: real y-websocket providers (npm) against the release `quire serve` (~5 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/interop/run.sh "${QUIRE_BUILD:-build}/quire"
