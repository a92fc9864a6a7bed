#!/usr/bin/env bash
# Embedding throughput, Sift's local embedder vs sentence-transformers (PyTorch),
# on the same ~200-word-piece passages, batch 32. Figures, not pass/fail.
#
# Usage: scripts/bench_embed.sh [N] [R]  (N passages, default 256; R runs each, default 3)
# Needs: SIFT_MODEL_DIR (or a fetched model), the SciFact corpus (SIFT_BENCH_CORPUS,
# default ../shared/data/scifact/corpus.jsonl), and a Python with torch and
# sentence-transformers (SIFT_ST_PYTHON, default /tmp/sift-st-venv/bin/python;
# scripts/make_embedding_fixture.py creates that venv).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-256}"
repeat="${2:-3}"
py="${SIFT_ST_PYTHON:-/tmp/sift-st-venv/bin/python}"
passages="$(mktemp --suffix=.json)"
trap 'rm -f "$passages"' EXIT

model_dir="${SIFT_MODEL_DIR:-}"
if [[ -z "$model_dir" ]]; then
  model_dir="$(cargo run --quiet --release -- model path)"
fi

rust_out="$(cargo bench --quiet --bench embed_throughput -- --n "$n" --repeat "$repeat" --model "$model_dir" --dump "$passages")"
echo "$rust_out"
py_out="$(HF_HUB_OFFLINE=1 "$py" scripts/bench_embed_python.py "$passages" "$model_dir" --repeat "$repeat" 2>/dev/null)"
echo "$py_out"

rust_tps="$(grep -oP '^[0-9.]+(?= texts/s best)' <<<"$rust_out")"
py_tps="$(grep -oP '^[0-9.]+(?= texts/s best)' <<<"$py_out")"
python3 -c "print(f'sift / pytorch (best runs): {$rust_tps} / {$py_tps} = {$rust_tps / $py_tps:.2f}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) cores; other work skews figures)"
