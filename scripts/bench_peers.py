#!/usr/bin/env python3
"""ChromaDB and sqlite-vec on the vectors of `cargo bench --bench vectors_vs_peers`.

    bench_peers.py WORK_DIR N [--only chroma,sqlitevec]

Reads WORK_DIR/vectors-N.f32 and queries-N.f32 (f32 little-endian, 384 per row,
written by the Rust bench), computes the exact top-10 with numpy (and checks it
against the Rust bench's truth-N.u32), then for each peer measures ingest
vectors/s (including its persistence), query latency p50/p95/p99 at k=10 over the
1,000 queries, recall@10, and, in a fresh Python process, open + first query time
and resident memory (VmRSS; the interpreter and imports are reported as baseline).
Writes WORK_DIR/peers-N.json and prints `RESULT {json}` per peer.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

DIMS = 384
K = 10


def rss_mb(field="VmRSS:"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return 0.0


def pct(sorted_ms, p):
    i = int(round(p / 100.0 * (len(sorted_ms) - 1)))
    return sorted_ms[min(i, len(sorted_ms) - 1)]


def load(work, n):
    v = np.fromfile(os.path.join(work, f"vectors-{n}.f32"), dtype="<f4").reshape(-1, DIMS)
    q = np.fromfile(os.path.join(work, f"queries-{n}.f32"), dtype="<f4").reshape(-1, DIMS)
    assert v.shape[0] == n, (v.shape, n)
    return v, q


def exact_top(v, q):
    out = np.empty((q.shape[0], K), dtype=np.int64)
    for s in range(0, q.shape[0], 100):
        sims = q[s : s + 100] @ v.T
        part = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        out[s : s + 100] = np.take_along_axis(part, order, axis=1)
    return out


def summarize(name, n, ingest_s, lat_ms, found, truth, extra):
    lat = sorted(lat_ms)
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth.tolist()))
    return {
        "system": name,
        "n": n,
        "ingest_s": ingest_s,
        "ingest_vps": n / ingest_s,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "recall10": hits / (len(truth) * K),
        **extra,
    }


# ---------------------------------------------------------------- ChromaDB


def chroma_ingest(path, v):
    import chromadb

    client = chromadb.PersistentClient(path=path)
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    batch = min(client.get_max_batch_size(), 5000)
    t = time.perf_counter()
    for s in range(0, len(v), batch):
        e = v[s : s + batch]
        col.add(ids=[str(i) for i in range(s, s + len(e))], embeddings=e)
    return time.perf_counter() - t, client, col


def chroma_query(col, q):
    res = col.query(query_embeddings=[q], n_results=K, include=[])
    return [int(x) for x in res["ids"][0]]


def chroma_open(path, q):
    import chromadb

    t = time.perf_counter()
    client = chromadb.PersistentClient(path=path)
    col = client.get_collection("bench")
    open_s = time.perf_counter() - t
    t2 = time.perf_counter()
    chroma_query(col, q)
    return open_s, time.perf_counter() - t2


# ---------------------------------------------------------------- sqlite-vec


def sqlite_module():
    """The stdlib sqlite3 if it can load extensions (pyenv builds often cannot),
    else pysqlite3 (pip install pysqlite3-binary)."""
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    import pysqlite3

    return pysqlite3


def sqlitevec_connect(path):
    import sqlite_vec

    sqlite3 = sqlite_module()
    db = sqlite3.connect(path)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.enable_load_extension(False)
    return db


def sqlitevec_ingest(path, v):
    db = sqlitevec_connect(path)
    db.execute(
        f"CREATE VIRTUAL TABLE vecs USING vec0(embedding float[{DIMS}] distance_metric=cosine)"
    )
    t = time.perf_counter()
    with db:
        db.executemany(
            "INSERT INTO vecs(rowid, embedding) VALUES (?, ?)",
            ((i, v[i].tobytes()) for i in range(len(v))),
        )
    return time.perf_counter() - t, db


SQLITEVEC_KNN = "SELECT rowid FROM vecs WHERE embedding MATCH ? AND k = ? ORDER BY distance"


def sqlitevec_query(db, q):
    return [r[0] for r in db.execute(SQLITEVEC_KNN, (q.tobytes(), K))]


def sqlitevec_open(path, q):
    t = time.perf_counter()
    db = sqlitevec_connect(path)
    open_s = time.perf_counter() - t
    t2 = time.perf_counter()
    sqlitevec_query(db, q)
    return open_s, time.perf_counter() - t2


# ---------------------------------------------------------------- driver


PEERS = {
    "chroma": (chroma_ingest, lambda h: h[2], chroma_query, chroma_open, "chroma"),
    "sqlitevec": (sqlitevec_ingest, lambda h: h[1], sqlitevec_query, sqlitevec_open, "db.sqlite"),
}


def probe(name, path, qfile):
    """Fresh process: imports (baseline), then open + first query, then RSS."""
    if name == "chroma":
        import chromadb  # noqa: F401
    else:
        import sqlite_vec  # noqa: F401

        sqlite_module()
    base = rss_mb()
    q = np.fromfile(qfile, dtype="<f4", count=DIMS)
    open_s, first_s = PEERS[name][3](path, q)
    print(
        "PROBE "
        + json.dumps(
            {
                "open_ms": open_s * 1e3,
                "first_query_ms": first_s * 1e3,
                "open_first_ms": (open_s + first_s) * 1e3,
                "rss_mb": rss_mb(),
                "hwm_mb": rss_mb("VmHWM:"),
                "rss_baseline_mb": base,
            }
        ),
        flush=True,
    )


def run_peer(name, work, n, v, q, truth, max_queries=None):
    ingest, handle_of, query, _, fname = PEERS[name]
    root = os.path.join(work, f"{name}-{n}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    path = os.path.join(root, fname)
    ingest_s, *handle = ingest(path, v)
    h = handle_of([None] + handle)
    for x in q[:20]:
        query(h, x)
    if max_queries:
        q, truth = q[:max_queries], truth[:max_queries]
    lat, found = [], []
    for x in q:
        t = time.perf_counter()
        ids = query(h, x)
        lat.append((time.perf_counter() - t) * 1e3)
        found.append(ids)
    del handle, h
    out = subprocess.run(
        [sys.executable, __file__, "--probe", name, path, os.path.join(work, f"queries-{n}.f32")],
        capture_output=True,
        text=True,
    )
    line = next((l for l in out.stdout.splitlines() if l.startswith("PROBE ")), None)
    if line is None:
        raise SystemExit(f"{name} probe failed: {out.stderr}")
    pr = json.loads(line[6:])
    size = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs
    )
    extra = {"probe": pr, "disk_mb": size / 1e6, "queries": len(q)}
    return summarize(name, n, ingest_s, lat, found, truth, extra)


def table(work, ns):
    """Markdown table of sift-N.json and peers-N.json, with Sift/peer ratios."""
    rows = []
    head = (
        "| N | system | ingest vec/s | p50 ms | p95 ms | p99 ms | recall@10 "
        "| open+1st query ms | RSS MB | Sift ingest speed x | Sift p50 / peer p50 |"
    )
    rows += [head, "|" + "---|" * (head.count("|") - 1)]
    for n in ns:
        with open(os.path.join(work, f"sift-{n}.json")) as f:
            s = json.load(f)
        peers = []
        path = os.path.join(work, f"peers-{n}.json")
        if os.path.exists(path):
            with open(path) as f:
                peers = json.load(f)
        for run in s["search"]:
            p = s["probe"]
            rows.append(
                f"| {n:,} | sift (ef {run['ef']}) | {s['ingest_vps']:,.0f} | {run['p50_ms']:.2f} "
                f"| {run['p95_ms']:.2f} | {run['p99_ms']:.2f} | {run['recall10']:.3f} "
                f"| {p['open_first_ms']:.0f} | {p['rss_mb']:.0f} | | |"
            )
        base = s["search"][0]
        for r in peers:
            p = r["probe"]
            nq = r.get("queries", 1000)
            note = "" if nq == 1000 else f" ({nq} queries)"
            rows.append(
                f"| {n:,} | {r['system']}{note} | {r['ingest_vps']:,.0f} | {r['p50_ms']:.2f} "
                f"| {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall10']:.3f} "
                f"| {p['open_first_ms']:.0f} | {p['rss_mb']:.0f} "
                f"| {s['ingest_vps'] / r['ingest_vps']:.2f}x "
                f"| {base['p50_ms'] / r['p50_ms']:.3f} |"
            )
    print("\n".join(rows))


def main():
    if sys.argv[1] == "--probe":
        probe(*sys.argv[2:5])
        return
    if sys.argv[1] == "--table":
        table(sys.argv[2], [int(x) for x in sys.argv[3:]])
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    work, n = args[0], int(args[1].replace("_", ""))
    only = ["chroma", "sqlitevec"]
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1].split(",")
    v, q = load(work, n)
    t = time.perf_counter()
    truth = exact_top(v, q)
    print(f"exact top-{K} with numpy in {time.perf_counter() - t:.1f} s")
    tpath = os.path.join(work, f"truth-{n}.u32")
    if os.path.exists(tpath):
        rust = np.fromfile(tpath, dtype="<u4").reshape(-1, K)
        same = np.mean([len(set(a) & set(b)) / K for a, b in zip(rust.tolist(), truth.tolist())])
        print(f"exact top-{K}: numpy and the Rust bench agree on {same:.4f} of ids")
    results = []
    for name in only:
        # sqlite-vec is exact brute force (~2.5 ms per 1k vectors per query here):
        # SIFT_PEERS_SQLITEVEC_QUERIES caps its query count to keep runs short.
        cap = None
        if name == "sqlitevec" and os.environ.get("SIFT_PEERS_SQLITEVEC_QUERIES"):
            cap = int(os.environ["SIFT_PEERS_SQLITEVEC_QUERIES"])
        r = run_peer(name, work, n, v, q, truth, cap)
        p = r["probe"]
        print(
            f"{name}: ingest {r['ingest_vps']:.0f} vectors/s ({r['ingest_s']:.1f} s); "
            f"p50 {r['p50_ms']:.3f} ms p95 {r['p95_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms; "
            f"recall@10 {r['recall10']:.4f}; open {p['open_ms']:.1f} ms + first query "
            f"{p['first_query_ms']:.1f} ms; RSS {p['rss_mb']:.1f} MB "
            f"(after imports {p['rss_baseline_mb']:.1f} MB); disk {r['disk_mb']:.1f} MB",
            flush=True,
        )
        print("RESULT " + json.dumps(r), flush=True)
        results.append(r)
    with open(os.path.join(work, f"peers-{n}.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
