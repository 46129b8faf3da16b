#!/usr/bin/env bash
# Sets up a checkout on Debian 12 with Node 20: the Debian packages the tests use, the npm
# dependencies, the native TUN addon and the TypeScript build. Run as root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(openconnect ocserv iperf3 iproute2 iputils-ping openssl ca-certificates libssl-dev libcrypt-dev)
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo 'setup: npm dependencies'
npm ci --no-audit --no-fund

echo 'setup: native addon and TypeScript build'
npm run build

echo 'setup: done'
