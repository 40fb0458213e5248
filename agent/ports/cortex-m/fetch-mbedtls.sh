#!/usr/bin/env bash
# Fetch Debian's mbedTLS source package into DEST (a build folder git ignores) and print the
# path of the unpacked tree. The Cortex-M port cross-compiles it with its own configuration
# (mbedtls_config.h); nothing of mbedTLS is ever copied into the repository.
#
# Idempotent: a tree unpacked by an earlier run is reused. Needs a deb-src entry, which
# packaging/install-system-deps.sh adds (block "#17 Cortex-M port").
set -euo pipefail
dest=${1:?usage: fetch-mbedtls.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

find_tree() {
  find "$dest" -mindepth 1 -maxdepth 1 -type d -name 'mbedtls-2.*' -exec test -f '{}/include/psa/crypto.h' ';' -print \
    | sort | tail -n 1
}

tree=$(find_tree)
if [[ -z "$tree" ]]; then
  if ! apt-cache showsrc mbedtls >/dev/null 2>&1; then
    echo "fetch-mbedtls: no source index for mbedtls; run bash packaging/install-system-deps.sh" >&2
    exit 1
  fi
  # apt-get source unpacks with dpkg-source (dpkg-dev) and applies Debian's patches.
  (cd "$dest" && apt-get source -qq mbedtls >"$dest/apt-get-source.log" 2>&1) || {
    echo "fetch-mbedtls: apt-get source mbedtls failed; see $dest/apt-get-source.log" >&2
    exit 1
  }
  tree=$(find_tree)
  if [[ -z "$tree" ]]; then
    echo "fetch-mbedtls: Debian's mbedtls is not a 2.x tree; this port's configuration is for" \
      "mbedTLS 2.28 (Debian 12)" >&2
    exit 1
  fi
fi
echo "$tree"
