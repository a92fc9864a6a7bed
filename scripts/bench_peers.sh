#!/usr/bin/env bash
# Sift's vector layer against ChromaDB and sqlite-vec on the same precomputed vectors.
#
#   scripts/bench_peers.sh [WORK_DIR] [N ...]        (default: /tmp/sift-vecbench 10000 100000)
#
# For each N: `cargo bench --bench vectors_vs_peers -- WORK_DIR N` generates the
# vectors (deterministic), the queries and the exact top-10 and measures Sift; then
# scripts/bench_peers.py measures the peers on the same files. Prints one markdown
# table with Sift/peer ratios at the end (also saved to WORK_DIR/table.md).
# Env: SIFT_BENCH_VENV (default /tmp/sift-bench-venv), PYTHON (for the venv),
# SIFT_PEERS_SQLITEVEC_QUERIES (cap sqlite-vec's query count; it is brute force).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${1:-/tmp/sift-vecbench}"
shift || true
NS=("$@")
[ ${#NS[@]} -gt 0 ] || NS=(10000 100000)
VENV="${SIFT_BENCH_VENV:-/tmp/sift-bench-venv}"
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import chromadb, sqlite_vec, numpy' 2>/dev/null; then
    "$VENV/bin/pip" install -q chromadb sqlite-vec numpy
fi
# sqlite-vec needs sqlite3 extension loading, which some Python builds (pyenv) lack.
if ! "$VENV/bin/python" -c 'import sqlite3; sqlite3.Connection.enable_load_extension' 2>/dev/null \
    && ! "$VENV/bin/python" -c 'import pysqlite3' 2>/dev/null; then
    "$VENV/bin/pip" install -q pysqlite3-binary
fi

for n in "${NS[@]}"; do
    echo "== N = $n: Sift"
    cargo bench --bench vectors_vs_peers -- "$WORK" "$n" | grep -v '^RESULT '
    echo "== N = $n: ChromaDB, sqlite-vec"
    "$VENV/bin/python" scripts/bench_peers.py "$WORK" "$n" | grep -v '^RESULT '
done

echo
echo "== Machine: $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$VENV/bin/python" scripts/bench_peers.py --table "$WORK" "${NS[@]}" | tee "$WORK/table.md"
