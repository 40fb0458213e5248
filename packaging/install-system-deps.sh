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

# #17 Cortex-M port: the board agent cross-compiled for an emulated Cortex-M3 (newlib), the
# emulator itself, and clang's libFuzzer/ASan/UBSan runtimes for the agent's fuzz targets.
# mbedTLS for the target is built from Debian's source package (see the deb-src block below).
PACKAGES+=(
  gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
  clang libclang-rt-14-dev dpkg-dev
)

# Issue #23, the fleet ledger: the tests start a throwaway PostgreSQL cluster with initdb and
# pg_ctl (tests/support/ledger.py). PostgreSQL refuses to run as root, so the tests run it as the
# unprivileged system user created at the end of this script.
PACKAGES+=(postgresql)

# A python without the venv module (Debian's split python3) needs python3-venv as well.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  PACKAGES+=(python3-venv python3-dev)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

# #17 Cortex-M port: `apt-get source mbedtls` (agent/ports/cortex-m) needs source indexes. When
# the machine has no deb-src entry, add one mirroring its binary entries, in a file of our own.
need_sources=0
compgen -G '/var/lib/apt/lists/*_Sources*' >/dev/null || need_sources=1

# #23: the user the tests' PostgreSQL cluster runs as (idempotent; needs root, as CI is).
ensure_ledger_user() {
  if [[ $(id -u) -eq 0 ]] && ! id -u station-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin station-pg
    echo "system packages: created the system user station-pg (test ledger clusters)"
  fi
}
trap ensure_ledger_user EXIT

if [[ ${#missing[@]} -eq 0 && $need_sources -eq 0 ]]; then
  echo "system packages: all ${#PACKAGES[@]} present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

if [[ $need_sources -eq 1 ]] && ! grep -rqsE '^(deb-src|Types:.*deb-src)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "system packages: adding deb-src entries (station-deb-src.*) for apt-get source"
  shopt -s nullglob
  # only the distribution's own archives: a third-party repository may publish no sources
  for f in /etc/apt/sources.list.d/*.sources; do
    grep -qE '^URIs:.*(debian|ubuntu)' "$f" || continue
    sed -E 's/^Types:.*/Types: deb-src/' "$f" \
      | "${SUDO[@]}" tee "/etc/apt/sources.list.d/station-deb-src-$(basename "$f")" >/dev/null
  done
  if [[ -s /etc/apt/sources.list ]]; then
    sed -nE 's/^deb (.*(debian|ubuntu).*)/deb-src \1/p' /etc/apt/sources.list \
      | "${SUDO[@]}" tee /etc/apt/sources.list.d/station-deb-src.list >/dev/null
  fi
  shopt -u nullglob
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: source indexes refreshed"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
