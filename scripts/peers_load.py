"""Loads a Sift export into a real vector database, in process, and prints the
nearest chunk to each query vector as JSON: [{"id": chunk id, "path": note}].

    python scripts/peers_load.py chroma|qdrant EXPORT.jsonl QUERIES.json

EXPORT is what `sift export --format chroma|qdrant` wrote (one upload batch per
line); QUERIES is a JSON list of query vectors. Used by
tests/engine/archive_peers.rs with the venv of scripts/ensure-peers-venv.sh.
"""

import json
import sys


def chroma(export, queries):
    import chromadb

    client = chromadb.EphemeralClient()
    # Cosine, as Sift; vectors come from the export, so no embedding function.
    collection = client.create_collection(
        "sift", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    with open(export) as f:
        for line in f:
            collection.add(**json.loads(line))
    found = collection.query(
        query_embeddings=queries, n_results=1, include=["metadatas", "distances"]
    )
    return [
        {"id": int(ids[0]), "path": metas[0]["path"]}
        for ids, metas in zip(found["ids"], found["metadatas"])
    ]


def qdrant(export, queries):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    created = False
    with open(export) as f:
        for line in f:
            points = json.loads(line)["points"]
            if not created:
                client.create_collection(
                    "sift",
                    vectors_config=models.VectorParams(
                        size=len(points[0]["vector"]), distance=models.Distance.COSINE
                    ),
                )
                created = True
            client.upsert("sift", points=[models.PointStruct(**p) for p in points])
    out = []
    for q in queries:
        hit = client.query_points("sift", query=q, limit=1).points[0]
        out.append({"id": int(hit.id), "path": hit.payload["path"]})
    return out


def main():
    kind, export, queries = sys.argv[1:4]
    with open(queries) as f:
        vectors = json.load(f)
    result = {"chroma": chroma, "qdrant": qdrant}[kind](export, vectors)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
