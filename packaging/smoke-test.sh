#!/usr/bin/env bash
# Smoke test of the one-folder build (dist/station/): run by `make package` after the build.
#
#   packaging/smoke-test.sh [APP]        APP defaults to dist/station/station
#
# Everything runs against a scratch config and data folder in a temporary directory that is
# removed at the end; nothing touches the user's real station. Checks:
#   1. `station --version` and `station --help` run from the bundle;
#   2. `station init` creates the config, the data folder and the database (SQLite);
#   3. `station label templates` reads the bundled templates/ and lays labels out
#      (reportlab + zxing-cpp);
#   4. `station ca init` + `ca lab-root` + `ca status` with a scratch SoftHSM2 token
#      (python-pkcs11, cryptography, templates/certs);
#   5. `station tpm read` on a virtual TPM board (tpm2-pytss through the board link). The frozen
#      app does not run the lab (its boards are `python -m` processes), so the board is started
#      from the source checkout: LAB_STATION (default .venv/bin/station);
#   6. `station gui` under QT_QPA_PLATFORM=offscreen: waits until the main window has been
#      painted and flushed (Qt's own paint log), checks that Qt came from the bundle and that
#      the process is still running, then stops it with SIGTERM.
# Prints one "ok" line per check; exits non-zero at the first failure, with the log.
set -euo pipefail

APP=${1:-dist/station/station}
LAB_STATION=${LAB_STATION:-.venv/bin/station}
APP=$(cd "$(dirname "$APP")" && pwd)/$(basename "$APP")
BUNDLE=$(dirname "$APP")
GUI_WAIT_S=${GUI_WAIT_S:-90}  # generous: the first start on a busy machine is slow
[[ -x "$APP" ]] || { echo "smoke: no executable at $APP (run make package)" >&2; exit 1; }

[[ -x "$LAB_STATION" ]] || { echo "smoke: no source station at $LAB_STATION (set LAB_STATION)" >&2; exit 1; }
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
[[ -e "$SOFTHSM_MODULE" ]] || { echo "smoke: SoftHSM2 missing: run packaging/install-system-deps.sh" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/station-smoke.XXXXXX")
GUI_PID=""
LAB_PID=""
cleanup() {
  if [[ -n "$LAB_PID" ]] && kill -0 "$LAB_PID" 2>/dev/null; then
    kill -TERM "$LAB_PID" 2>/dev/null || true  # the lab stops its boards and their swtpm
    wait "$LAB_PID" 2>/dev/null || true
  fi
  if [[ -n "$GUI_PID" ]] && kill -0 "$GUI_PID" 2>/dev/null; then
    kill -TERM "$GUI_PID" 2>/dev/null || true
    wait "$GUI_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "smoke: FAILED: $1" >&2
  [[ -n "${2:-}" && -f "$2" ]] && { echo "---- $2" >&2; tail -n 40 "$2" >&2; }
  exit 1
}

# A clean environment: scratch config and data, no inherited station settings.
unset STATION_DATA_DIR STATION_PKCS11_PIN_FILE STATION_DPS_CONNECTION_FILE STATION_OPERATOR
export STATION_CONFIG="$WORK/station.toml"
export QT_QPA_PLATFORM=offscreen

# 1. version and help
version=$("$APP" --version) || fail "--version exited with $?"
[[ "$version" =~ ^station,\ version\ [0-9]+\.[0-9]+ ]] || fail "--version printed '$version'"
echo "ok   --version: $version"
"$APP" --help >"$WORK/help.txt" || fail "--help exited with $?" "$WORK/help.txt"
for group in init gui ca db operator batch; do
  grep -qE "^  $group " "$WORK/help.txt" || fail "--help does not list '$group'" "$WORK/help.txt"
done
echo "ok   --help lists the command groups"

# 2. first start
"$APP" init --data-dir "$WORK/data" >"$WORK/init.txt" 2>&1 || fail "init exited with $?" "$WORK/init.txt"
[[ -f "$STATION_CONFIG" && -s "$WORK/data/station.db" ]] || fail "init made no config/db" "$WORK/init.txt"
"$APP" db verify >"$WORK/verify.txt" 2>&1 || fail "db verify exited with $?" "$WORK/verify.txt"
echo "ok   init + db verify on a scratch config"

# 3. bundled templates, labels
"$APP" label templates >"$WORK/labels.txt" 2>&1 || fail "label templates exited with $?" "$WORK/labels.txt"
grep -q "device-50x25" "$WORK/labels.txt" || fail "bundled label templates not found" "$WORK/labels.txt"
echo "ok   label templates from the bundle ($(grep -c . "$WORK/labels.txt") lines)"

# 4. CA key in a scratch SoftHSM2 token
mkdir -p "$WORK/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$WORK/tokens" >"$WORK/softhsm2.conf"
  export SOFTHSM2_CONF="$WORK/softhsm2.conf"
  (umask 077 && printf '%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/pin")
  softhsm2-util --init-token --free --label station-ca --so-pin "$(cat "$WORK/pin")" \
    --pin "$(cat "$WORK/pin")" >/dev/null
  export STATION_PKCS11_PIN_FILE="$WORK/pin"
  ca=("$APP" --operator admin ca)
  "${ca[@]}" init --key 'pkcs11:token=station-ca;object=smoke-ica' --common-name 'Smoke Test CA' \
    --out "$WORK/ica.csr" >"$WORK/ca.txt" 2>&1 || fail "ca init exited with $?" "$WORK/ca.txt"
  "${ca[@]}" lab-root >>"$WORK/ca.txt" 2>&1 || fail "ca lab-root exited with $?" "$WORK/ca.txt"
  "${ca[@]}" status >>"$WORK/ca.txt" 2>&1 || fail "ca status exited with $?" "$WORK/ca.txt"
  grep -q "Smoke Test CA" "$WORK/ca.txt" || fail "ca status does not show the CA" "$WORK/ca.txt"
echo "ok   CA key in SoftHSM2: init, lab-root, status"

# 5. TPM over the board link
"$LAB_STATION" lab boards --count 1 --kind tpm --baud 0 --json >"$WORK/lab.json" 2>"$WORK/lab.err" &
LAB_PID=$!
deadline=$((SECONDS + 60))
until grep -q '"port"' "$WORK/lab.json"; do
  kill -0 "$LAB_PID" 2>/dev/null || fail "lab boards exited early" "$WORK/lab.err"
  (( SECONDS < deadline )) || fail "no lab board within 60s" "$WORK/lab.err"
  sleep 0.2  # polling interval: the loop waits on the board list
done
port=$(sed -n 's/.*"port": "\(.*\)".*/\1/p' "$WORK/lab.json")
"$APP" tpm read "$port" --json >"$WORK/tpm.json" 2>&1 || fail "tpm read exited with $?" "$WORK/tpm.json"
grep -qE '"registration_id": "[a-z2-7]{52}"' "$WORK/tpm.json" || fail "no registration ID" "$WORK/tpm.json"
grep -q '"resident": true' "$WORK/tpm.json" || fail "the EK was not proved resident" "$WORK/tpm.json"
kill -TERM "$LAB_PID"
wait "$LAB_PID" || fail "lab boards did not stop cleanly" "$WORK/lab.err"
LAB_PID=""
echo "ok   tpm read on a virtual TPM board ($port): EK, registration ID, credential activation"

# 6. the GUI comes up
QT_LOGGING_RULES="qt.widgets.painting=true" "$APP" gui >"$WORK/gui.log" 2>&1 &
GUI_PID=$!
deadline=$((SECONDS + GUI_WAIT_S))
until grep -qE "of MainWindow\(0x[0-9a-f]+\) to QWidgetWindow" "$WORK/gui.log"; do
  kill -0 "$GUI_PID" 2>/dev/null || { wait "$GUI_PID" && rc=0 || rc=$?; GUI_PID=""; fail "gui exited ($rc) before its window was up" "$WORK/gui.log"; }
  (( SECONDS < deadline )) || fail "no window painted within ${GUI_WAIT_S}s" "$WORK/gui.log"
  sleep 0.2  # polling interval, not a wait for luck: the loop waits on the log line
done
maps=$(cat "/proc/$GUI_PID/maps")
grep -q "$BUNDLE/_internal/PySide6/Qt/plugins/platforms/libqoffscreen.so" <<<"$maps" \
  || fail "the offscreen platform plugin was not loaded from the bundle"
grep -q "$BUNDLE/_internal/.*libQt6Widgets.so" <<<"$maps" || fail "Qt widgets not loaded from the bundle"
kill -0 "$GUI_PID" 2>/dev/null || fail "gui exited right after showing its window" "$WORK/gui.log"
kill -TERM "$GUI_PID"
wait "$GUI_PID" && rc=0 || rc=$?
GUI_PID=""
[[ $rc -eq 143 ]] || fail "gui ended with status $rc after SIGTERM (expected 143)" "$WORK/gui.log"
! grep -q "Traceback" "$WORK/gui.log" || fail "gui printed a traceback" "$WORK/gui.log"
echo "ok   gui: main window painted (offscreen), Qt loaded from the bundle, stopped by SIGTERM"

echo "smoke: all checks passed ($APP)"
