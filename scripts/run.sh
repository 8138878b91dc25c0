#!/usr/bin/env bash
# Installs what is missing, builds, and starts `quire serve` on 127.0.0.1:8080 with
# sqlite:///./dev.db (override with DATABASE_URL, QUIRE_HOST, QUIRE_PORT or flags).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build -DQUIRE_BUILD_TESTS=OFF -DQUIRE_BUILD_BENCHMARKS=OFF
web/build.sh || echo "run: the web page could not be built (web/build.sh); serving the API only" >&2
exec build/quire serve "$@"
