#!/usr/bin/env bash
# Crash under load: 10 SIGKILL cycles against the release build (~10 s on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec tests/reliability/crash_under_load.sh --cycles 10 --build "${QUIRE_BUILD:?}"
