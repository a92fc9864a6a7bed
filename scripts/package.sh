#!/usr/bin/env bash
# Builds the installable Linux package (.deb) of the desktop app, with the local
# embedding model inside it, so the installed app searches by meaning on first
# launch, offline, with nothing to download.
#
# The model comes from SIFT_MODEL_DIR, else the user cache (`sift model fetch`);
# its weights are checked against the known sha256 before they are staged in
# src-tauri/resources/model/ (git-ignored) and bundled as Tauri resources
# (src-tauri/tauri.bundle.conf.json). The app looks there last, after
# SIFT_MODEL_DIR and the cache.
#
# Usage: scripts/package.sh        (AppImage is not built: it downloads tools)
set -euo pipefail
cd "$(dirname "$0")/.."

model=${SIFT_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sift/models/all-MiniLM-L6-v2}
sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
for f in model.safetensors tokenizer.json config.json; do
    if [ ! -f "$model/$f" ]; then
        echo "package: $model/$f is missing: set SIFT_MODEL_DIR or run \`sift model fetch\`" >&2
        exit 2
    fi
done
if [ "$(sha256sum "$model/model.safetensors" | cut -d' ' -f1)" != "$sha" ]; then
    echo "package: $model/model.safetensors is not the expected all-MiniLM-L6-v2 weights" >&2
    exit 2
fi

stage=src-tauri/resources/model
rm -rf "$stage"
mkdir -p "$stage"
cp "$model/model.safetensors" "$model/tokenizer.json" "$model/config.json" "$stage/"

start=$(date +%s)
(cd src-tauri && npx --yes @tauri-apps/cli@^2 build --bundles deb --config tauri.bundle.conf.json)
target=${CARGO_TARGET_DIR:-target}
echo "built in $(( $(date +%s) - start ))s:"
ls -l "$target"/release/bundle/deb/*.deb
