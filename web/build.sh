#!/usr/bin/env bash
# Bundles the page into web/dist/ with esbuild (from web/node_modules):
#   dist/index.html             no-cache (always revalidated)
#   dist/assets/app-HASH.js     content-hashed, cached for a year
# Skips the build when dist/ is newer than every source (set QUIRE_WEB_FORCE=1 to force).
# Installs nodejs/npm (apt) when missing, and the npm packages when node_modules is missing or
# older than the lock file.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "web: installing nodejs and npm (Debian packages)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [[ ! -x node_modules/.bin/esbuild || package-lock.json -nt node_modules/.quire-installed ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.quire-installed
fi
stamp=dist/index.html
if [[ -z "${QUIRE_WEB_FORCE:-}" && -f "$stamp" ]] &&
   [[ -z "$(find src index.html build.sh package-lock.json -newer "$stamp" -print -quit)" ]]; then
  exit 0
fi
rm -rf dist.tmp
mkdir -p dist.tmp/assets
node_modules/.bin/esbuild src/app.js --bundle --format=esm --minify --sourcemap \
  --target=es2020 --entry-names='[name]-[hash]' --outdir=dist.tmp/assets \
  --metafile=dist.tmp/meta.json --log-level=warning
js="$(cd dist.tmp/assets && ls app-*.js)"
sed "s#/assets/app.js#/assets/$js#" index.html > dist.tmp/index.html
rm dist.tmp/meta.json
rm -rf dist
mv dist.tmp dist
echo "web: built dist/assets/$js ($(wc -c < "dist/assets/$js") bytes)"
