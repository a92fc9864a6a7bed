#!/usr/bin/env bash
# Prints the Python of a venv holding the official MCP client SDK (`mcp` 2.x
# from PyPI), making the venv first if needed. The MCP test
# (tests/engine/mcp_server.rs) drives `sift mcp` with it. Usage:
#   export SIFT_MCP_PYTHON=$(scripts/mcp-venv.sh [VENV_DIR])
# Default folder: $CARGO_TARGET_DIR/mcp-venv, else target/mcp-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${CARGO_TARGET_DIR:-$PWD/target}/mcp-venv}
if ! "$venv/bin/python" -c 'import mcp.client.stdio' >/dev/null 2>&1; then
    "${PYTHON:-python3}" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check 'mcp>=2,<3' >&2
fi
echo "$venv/bin/python"
