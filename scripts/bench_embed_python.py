#!/usr/bin/env python3
"""Texts per second of sentence-transformers (PyTorch, CPU) on the passages that
`cargo bench --bench embed_throughput -- --dump FILE` wrote, batch 32.

Usage: bench_embed_python.py PASSAGES_JSON MODEL_DIR [--batch 32] [--repeat 3]
Prints every run and the best and median texts/s.
Run it with a Python that has torch and sentence-transformers (see
scripts/make_embedding_fixture.py, which sets up /tmp/sift-st-venv).
"""

import argparse
import json
import time

import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("passages")
    ap.add_argument("model_dir")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    texts = json.load(open(args.passages))
    model = SentenceTransformer(args.model_dir, device="cpu")
    model.max_seq_length = 256
    mean_tokens = sum(
        len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts
    ) / len(texts)

    model.encode(texts[: args.batch], batch_size=args.batch)  # warm up
    rates = []
    cpu_started = time.process_time()
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        for i in range(0, len(texts), args.batch):
            model.encode(
                texts[i : i + args.batch], batch_size=args.batch, normalize_embeddings=True
            )
        rates.append(len(texts) / (time.perf_counter() - started))
    cpu = time.process_time() - cpu_started
    rates.sort()
    print(
        f"sentence-transformers (torch {torch.__version__}, {torch.get_num_threads()} threads): "
        f"{len(texts)} passages, {mean_tokens:.1f} word pieces on average, batch {args.batch}"
    )
    print("runs (texts/s): " + " ".join(f"{r:.1f}" for r in rates))
    print(f"{len(texts) * len(rates) / cpu:.1f} texts per CPU-second")
    print(f"{rates[-1]:.1f} texts/s best, {rates[len(rates) // 2]:.1f} median")

if __name__ == "__main__":
    main()
