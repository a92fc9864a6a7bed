#!/usr/bin/env bash
# Sets up and starts the Sift desktop app from a fresh clone: installs system
# packages, builds the user interface, fetches the local embedding model (once,
# sha256-checked) and launches the app (release build).
#   scripts/run.sh             # desktop app
#   scripts/run.sh --cli ARGS  # the `sift` command line instead, e.g. --cli search "query"
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

scripts/install-deps.sh
# The app embeds the built UI, so it is built first; one cargo build of both
# packages shares their dependencies.
(cd ui && npm ci --no-audit --no-fund && npm run build)
cargo build --release -p sift -p sift-desktop
SIFT_MODEL_DIR=$(scripts/ensure-model.sh "$CARGO_TARGET_DIR/release/sift")
export SIFT_MODEL_DIR

if [ "${1:-}" = "--cli" ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/sift" "$@"
fi
exec "$CARGO_TARGET_DIR/release/sift-desktop"
