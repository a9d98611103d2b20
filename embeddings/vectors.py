"""Vectors: the FAISS index over chunk vectors and the embedding cache.

``build_faiss(vectors)`` makes an exact inner-product index, or an HNSW graph for
large collections; ``EmbeddingCache`` keeps vectors by (encoder family, mode, text
hash) so unchanged text is never encoded twice. Nothing here knows documents or
chunks: the index stage (``qa.index``) stores these next to its own files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import faiss
import numpy as np

# From this many vectors an HNSW graph replaces exact search. Measured by `python -m tools.bench
# --only scaling` (README, "FAISS scaling"): exact search of one query costs more than 10 % of
# a query encode (~2 ms of ~21 ms) from ~40,000 vectors on, and 12.6 ms at 100,000, where
# HNSW (M 32) answers in 0.26 ms at recall@10 1.00. efSearch: the smallest setting measured
# with recall@10 >= 0.95 — 128 up to 300,000 vectors (0.97), 256 beyond (0.95 at 1,000,000).
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80


def hnsw_ef_search(n_vectors: int) -> int:
    return 128 if n_vectors < 500_000 else 256


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def build_faiss(vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product index, or HNSW when the collection is large."""
    dim = vectors.shape[1]
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = hnsw_ef_search(len(vectors))
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class EmbeddingCache:
    """Vectors keyed by (encoder family, mode, text hash); unchanged text is never encoded twice.
    ``encoder_id`` here is the family: backends of one vector space share the cache."""

    def __init__(self, encoder_id: str, dim: int):
        self.encoder_id, self.dim = encoder_id, dim
        self._vectors: dict[str, np.ndarray] = {}
        self.hits = self.misses = 0

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def key(self, text: str, mode: str) -> str:
        return hashlib.sha1(f"{self.encoder_id}\0{mode}\0".encode() + text.encode("utf-8", "surrogatepass")).hexdigest()

    def load(self, directory: Path) -> None:
        try:
            keys = json.loads((directory / "keys.json").read_text(encoding="utf-8"))
            vecs = np.load(directory / "vectors.npy", allow_pickle=False)
        except (OSError, ValueError):
            return  # a missing or damaged cache only costs re-encoding
        if keys.get("encoder_id") != self.encoder_id or vecs.shape != (len(keys["keys"]), self.dim):
            return
        self._vectors.update(zip(keys["keys"], vecs.astype(np.float32)))

    def save(self, directory: Path, keep: set[str] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        keys = [k for k in self._vectors if keep is None or k in keep]
        vecs = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        np.save(directory / "vectors.npy", vecs.astype(np.float16), allow_pickle=False)
        (directory / "keys.json").write_text(json.dumps({"encoder_id": self.encoder_id, "keys": keys}),
                                             encoding="utf-8")

    def encode(self, texts: list[str], mode: str, encode_fn, progress=None) -> tuple[np.ndarray, set[str]]:
        """Vectors for ``texts``, calling ``encode_fn`` only on texts not cached.
        Returns the matrix and the set of keys used."""
        keys = [self.key(t, mode) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self._vectors}.items())
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        batch = 64
        for i in range(0, len(todo), batch):
            part = todo[i:i + batch]
            vecs = encode_fn([t for _, t in part])
            for (k, _), v in zip(part, vecs):
                self._vectors[k] = np.asarray(v, np.float32)
            if progress:
                progress(len(part))
        if not texts:
            return np.zeros((0, self.dim), np.float32), set()
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32), set(keys)
