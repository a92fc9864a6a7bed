#!/usr/bin/env bash
# Prints the Python of a venv holding ChromaDB and qdrant-client (creating it
# when missing), for tests/engine/archive_peers.rs, which loads Sift's exports
# into both. About 530 MB; a first install took 1 min 40 s here.
#
#   SIFT_TEST_PYTHON=$(scripts/ensure-peers-venv.sh)
#
# Env: SIFT_PEERS_VENV (default ~/.cache/sift-test/peers-venv), PYTHON.
set -euo pipefail
VENV="${SIFT_PEERS_VENV:-$HOME/.cache/sift-test/peers-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c 'import chromadb, qdrant_client' 2>/dev/null; then
    "$VENV/bin/pip" install -q 'chromadb==1.5.9' 'qdrant-client==1.20.0' >&2
fi
echo "$VENV/bin/python"
