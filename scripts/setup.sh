#!/usr/bin/env bash
# Installs what Quire needs on Debian 12, skipping what is already present.
#   scripts/setup.sh          build dependencies (scripts/packages/build.txt)
#   scripts/setup.sh --test   also the test tools (scripts/packages/test.txt) and the npm
#                             packages of every folder in scripts/packages/npm-dirs.txt
set -euo pipefail
cd "$(dirname "$0")/.."

read_list() { grep -v '^\s*#' "$1" | sed '/^\s*$/d'; }

mapfile -t packages < <(read_list scripts/packages/build.txt)
if [[ "${1:-}" == "--test" ]]; then
  mapfile -t -O "${#packages[@]}" packages < <(read_list scripts/packages/test.txt)
fi

missing=()
for p in "${packages[@]}"; do
  # nodejs/npm may come from elsewhere than Debian (e.g. a newer Node on the PATH): keep it.
  if [[ "$p" == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" == "--test" ]]; then
  while read -r dir; do
    [[ -f "$dir/package.json" ]] || continue
    stamp="$dir/node_modules/.quire-installed"
    if [[ ! -f "$stamp" || "$dir/package.json" -nt "$stamp" || \
          ( -f "$dir/package-lock.json" && "$dir/package-lock.json" -nt "$stamp" ) ]]; then
      echo "setup: installing npm packages of $dir"
      if [[ -f "$dir/package-lock.json" ]]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      else
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
      fi
      touch "$stamp"
    fi
  done < <(read_list scripts/packages/npm-dirs.txt)
fi
