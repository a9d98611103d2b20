"""Vectors: the FAISS index over chunk vectors and the embedding cache.

``build_faiss(vectors)`` makes an exact inner-product index, or an HNSW graph for
large collections; ``EmbeddingCache`` keeps vectors by (encoder family, mode, text
hash) so unchanged text is never encoded twice. Nothing here knows documents or
chunks: the index stage (``qa.index``) stores these next to its own files.
"""
from __future__ import annotations

import hashlib
import io
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


_HEX40 = frozenset("0123456789abcdef")
NORM_TOLERANCE = 2e-3     # float16 rounding keeps a unit vector within 5e-4 of norm 1 (seeds: 5e-5)


class EmbeddingCache:
    """Vectors keyed by (encoder family, mode, text hash); unchanged text is never encoded twice.
    ``encoder_id`` here is the family: backends of one vector space share the cache.

    On disk: ``keys.json`` (encoder id, keys), ``vectors.npy`` (float16, one row per key) and
    ``checksums.json`` (SHA-256 of the other two). Nothing is taken on trust: ``load``
    checks the checksums (a cache written before they existed has none: then the content
    checks alone), the structure, the shape, that every key is a distinct SHA-1 and every
    vector finite and of unit length; a cache failing any check is not used at all."""

    CHECKSUMS = "checksums.json"

    def __init__(self, encoder_id: str, dim: int):
        self.encoder_id, self.dim = encoder_id, dim
        self._vectors: dict[str, np.ndarray] = {}
        self.hits = self.misses = 0

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def key(self, text: str, mode: str) -> str:
        return hashlib.sha1(f"{self.encoder_id}\0{mode}\0".encode() + text.encode("utf-8", "surrogatepass")).hexdigest()

    def load(self, directory: Path) -> str | None:
        """Add the vectors of the cache in ``directory``. Returns None when they were added
        (or there is no cache there, or it belongs to another encoder), else why the cache
        is damaged — then nothing of it is used, and its texts are simply encoded again."""
        directory = Path(directory)
        if not (directory / "keys.json").exists() and not (directory / "vectors.npy").exists():
            return None
        try:
            problem, entries = self._read(directory)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            problem, entries = f"unreadable: {e.__class__.__name__}", None
        if problem:
            return problem
        if entries:
            self._vectors.update(entries)
        return None

    def _read(self, directory: Path) -> tuple[str | None, dict | None]:
        keys_bytes = (directory / "keys.json").read_bytes()
        vec_bytes = (directory / "vectors.npy").read_bytes()
        sums_path = directory / self.CHECKSUMS
        if sums_path.exists():
            sums = json.loads(sums_path.read_text(encoding="utf-8"))
            if not isinstance(sums, dict):
                return "checksums.json is not a table of checksums", None
            for name, data in (("keys.json", keys_bytes), ("vectors.npy", vec_bytes)):
                if sums.get(name) != hashlib.sha256(data).hexdigest():
                    return f"{name} does not match its checksum", None
        meta = json.loads(keys_bytes.decode("utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("keys"), list) \
                or not isinstance(meta.get("encoder_id"), str):
            return "keys.json is not a list of keys", None
        if meta["encoder_id"] != self.encoder_id:
            return None, None                      # another encoder's cache: not ours to use
        keys = meta["keys"]
        if not all(isinstance(k, str) and len(k) == 40 and _HEX40.issuperset(k) for k in keys):
            return "keys.json holds something that is not a key", None
        if len(set(keys)) != len(keys):
            return "keys.json lists a key twice", None
        vecs = np.load(io.BytesIO(vec_bytes), allow_pickle=False)
        if vecs.dtype.kind != "f" or vecs.shape != (len(keys), self.dim):
            return f"vectors.npy has shape {vecs.shape}, expected {(len(keys), self.dim)}", None
        vecs = vecs.astype(np.float32)
        if not np.isfinite(vecs).all():
            return "vectors.npy holds values that are not finite", None
        if len(vecs):
            bad = int((np.abs(np.linalg.norm(vecs, axis=1) - 1.0) > NORM_TOLERANCE).sum())
            if bad:
                return f"{bad} vector{'s are' if bad > 1 else ' is'} not of unit length", None
        return None, dict(zip(keys, vecs))

    def save(self, directory: Path, keep: set[str] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        keys = [k for k in self._vectors if keep is None or k in keep]
        vecs = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        np.save(directory / "vectors.npy", vecs.astype(np.float16), allow_pickle=False)
        (directory / "keys.json").write_text(json.dumps({"encoder_id": self.encoder_id, "keys": keys}),
                                             encoding="utf-8")
        write_checksums(directory)

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


def write_checksums(directory: Path) -> None:
    """``checksums.json`` for the cache in ``directory`` (SHA-256 of keys.json and vectors.npy)."""
    directory = Path(directory)
    sums = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in ("keys.json", "vectors.npy")}
    (directory / EmbeddingCache.CHECKSUMS).write_text(json.dumps(sums, indent=1), encoding="utf-8")
