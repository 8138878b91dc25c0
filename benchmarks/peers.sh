#!/usr/bin/env bash
# The peer servers the benchmarks compare Quire with, installed from the npm registry under
# benchmarks/peers/ (git-ignored), and gnuplot (Debian) for the plots.
#   benchmarks/peers.sh install            npm install y-websocket 2.x, @hocuspocus/server,
#                                          @hocuspocus/extension-sqlite; apt-get gnuplot-nox
#   benchmarks/peers.sh start yws PORT     y-websocket's bin/server.cjs, in memory (foreground)
#   benchmarks/peers.sh start hocuspocus PORT [sqlite:FILE]
#                                          @hocuspocus/server in memory, or with the SQLite
#                                          extension writing FILE (foreground)
# Every server listens on 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers="$here/peers"

install() {
  mkdir -p "$peers"
  cat > "$peers/package.json" <<'JSON'
{
  "name": "quire-benchmark-peers",
  "private": true,
  "description": "Servers Quire is compared with (benchmarks/peers.sh installs them)",
  "dependencies": {
    "y-websocket": "^2.1.0",
    "yjs": "^13.6.0",
    "@hocuspocus/server": "^2.15.0",
    "@hocuspocus/extension-sqlite": "^2.15.0"
  }
}
JSON
  (cd "$peers" && npm install --no-audit --no-fund --loglevel=error)
  if ! command -v gnuplot >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get install -y -qq gnuplot-nox >/dev/null || echo "peers.sh: gnuplot not installed (plots skipped)" >&2
    else
      echo "peers.sh: install gnuplot-nox for the plots" >&2
    fi
  fi
}

start() {
  local which=$1 port=$2 store=${3:-}
  case "$which" in
    yws)
      cd "$peers"
      HOST=127.0.0.1 PORT=$port exec node node_modules/y-websocket/bin/server.cjs ;;
    hocuspocus)
      cd "$peers"
      HP_PORT=$port HP_STORE=$store exec node "$here/hocuspocus_server.cjs" ;;
    *) echo "unknown peer $which" >&2; exit 2 ;;
  esac
}

cmd=${1:-install}
shift || true
case "$cmd" in
  install) install ;;
  start) start "$@" ;;
  *) echo "usage: $0 install | start yws|hocuspocus PORT [sqlite:FILE]" >&2; exit 2 ;;
esac
