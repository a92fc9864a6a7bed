#!/usr/bin/env bash
# Runs a command with a private, unlocked Secret Service (GNOME Keyring) on a
# private D-Bus session, so keychain tests use a real OS keychain without
# touching the user's own:
#
#   scripts/with-keyring.sh cargo test --test engine keychain::
#   SIFT_REQUIRE_KEYCHAIN=1 scripts/with-keyring.sh cargo test   # CI
#
# Needs: dbus (dbus-run-session), gnome-keyring, keyutils (keyctl).
# HOME is left alone (rustup and cargo live there); XDG_DATA_HOME and
# XDG_RUNTIME_DIR point at fresh temporary folders, removed afterwards.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon keyctl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool is missing (apt-get install dbus gnome-keyring keyutils)" >&2
        exit 2
    fi
done

XDG_DATA_HOME=$(mktemp -d)
XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"
export XDG_DATA_HOME XDG_RUNTIME_DIR
trap 'rm -rf "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"' EXIT

# The password only unlocks this throwaway keyring.
export SIFT_KEYRING_PASSWORD=${SIFT_KEYRING_PASSWORD:-sift-test-keyring}

# Inner script: $0 is the name, "$@" the command. Unlock the login keyring (it
# is created on first unlock), then run the command; the daemon and the bus
# end with the session.
keyctl session - dbus-run-session -- bash -c '
    printf %s "$SIFT_KEYRING_PASSWORD" \
        | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    unset SIFT_KEYRING_PASSWORD
    exec "$@"
' with-keyring "$@"
