#!/usr/bin/env bash
# Differential tests of the Yjs engine against the real npm `yjs` package.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/js/run.sh "${QUIRE_BUILD:-build}/quire"
