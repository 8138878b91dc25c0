#!/usr/bin/env bash
# Installs what Quire needs on Debian 12, skipping what is already present.
#   scripts/setup.sh          build dependencies
#   scripts/setup.sh --test   also the test tools (Node.js + npm packages of tests/js)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libsqlite3-dev libuv1-dev libwslay-dev node-llhttp
          catch2 nlohmann-json3-dev)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(sqlite3)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" == "--test" && -f tests/js/package.json ]]; then
  if [[ ! -d tests/js/node_modules ]] || [[ tests/js/package.json -nt tests/js/node_modules ]]; then
    echo "setup: installing npm packages of tests/js"
    (cd tests/js && npm install --no-audit --no-fund --loglevel=error)
    touch tests/js/node_modules
  fi
fi
