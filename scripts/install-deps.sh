#!/usr/bin/env bash
# Installs what building, running and testing Sift needs (Debian/Ubuntu).
# Safe to run again: only missing pieces are installed.
set -euo pipefail

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

if command -v apt-get >/dev/null 2>&1; then
    pkgs=(build-essential pkg-config file curl libwebkit2gtk-4.1-dev fonts-dejavu-core
          xvfb xauth webkit2gtk-driver imagemagick keyutils dbus gnome-keyring libdbus-1-dev
          python3 python3-venv python3-pip libssl-dev)
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
else
    echo "note: not a Debian/Ubuntu system; install the WebKitGTK 4.1 dev files, pkg-config and a C/C++ compiler yourself (see README)" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "Rust is missing: install it from https://rustup.rs and run this again" >&2
    exit 1
fi
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "Node.js 20 or newer is needed to build the user interface (https://nodejs.org)" >&2
    exit 1
fi
