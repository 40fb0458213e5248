#!/usr/bin/env bash
# Install the Debian/Ubuntu packages the station needs (TPM stack, PKCS#11 token, PDF tools,
# fonts, a virtual X server and the libxcb pieces Qt's xcb platform loads).
#
# Idempotent: packages already installed are skipped, and when nothing is missing the script
# neither refreshes the package lists nor calls apt-get, so it returns in well under a second.
# Runs apt-get through sudo when not root.
set -euo pipefail

PACKAGES=(
  # TPM: software TPM for the lab boards, the TSS the Python bindings compile against, tpm2-tools
  swtpm swtpm-tools libtss2-dev tpm2-tools
  # PKCS#11 token for the CA key in tests and the lab
  softhsm2
  # certificate checks from the outside (openssl verify) and building tpm2-pytss
  openssl pkg-config build-essential
  # PDF rasterising for label round trips and docs, fonts for labels and the GUI
  poppler-utils fonts-dejavu-core fontconfig
  # Qt: offscreen and xcb platforms, a virtual X server for screenshots
  xvfb xauth libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libfontconfig1
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0
  libxcb-randr0 libxcb-xinerama0 libxcb-xkb1
  # packaging: validating the .desktop launcher (tests/packaging)
  desktop-file-utils
)

# Issue 16: the lab's TPM boards register with Microsoft's Node device SDK (lab/station_lab/node,
# installed by `make bootstrap` with `npm ci`). Debian's nodejs has npm in a package of its own;
# a nodejs that bundles npm (NodeSource) must not get Debian's npm on top.
PACKAGES+=(nodejs)
if ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(npm)
fi

# Issue #17, the C board agent (agent/, `make agent`): CMake and the C compiler for the core and
# its host port, mbedTLS for the device key through the PSA Crypto API.
PACKAGES+=(cmake gcc libmbedtls-dev)

# A python without the venv module (Debian's split python3) needs python3-venv as well.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  PACKAGES+=(python3-venv python3-dev)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all ${#PACKAGES[@]} present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
