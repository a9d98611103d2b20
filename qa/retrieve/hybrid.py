"""Hybrid retrieval: BM25 and dense candidates fused by reciprocal rank.

RRF (k=60) was measured against a weighted sum of min-max-normalised scores on
the seed evaluation set; see README for the figures.
"""
from __future__ import annotations

from qa.errors import UsageError
from qa.retrieve.bm25 import BM25Retriever
from qa.retrieve.dense import DenseRetriever
from qa.types import PassageHit

RETRIEVERS = ("hybrid", "bm25", "dense")


class HybridRetriever:
    name = "hybrid"

    def __init__(self, bm25: BM25Retriever, dense: DenseRetriever, rrf_k: int = 60, depth: int = 30):
        self.bm25, self.dense, self.rrf_k, self.depth = bm25, dense, rrf_k, depth

    def retrieve(self, question: str, top_k: int = 5, question_vector=None) -> list[PassageHit]:
        sparse = self.bm25.retrieve(question, self.depth)
        dense = self.dense.retrieve(question, self.depth, question_vector)
        fused: dict[int, PassageHit] = {}
        score: dict[int, float] = {}
        for hits, attr in ((sparse, "sparse_score"), (dense, "dense_score")):
            for h in hits:
                cid = h.chunk.chunk_id
                score[cid] = score.get(cid, 0.0) + 1.0 / (self.rrf_k + h.rank + 1)
                hit = fused.setdefault(cid, PassageHit(h.chunk, 0.0, 0))
                setattr(hit, attr, getattr(h, attr))
        order = sorted(score, key=lambda c: -score[c])[:top_k]
        out = []
        for r, cid in enumerate(order):
            h = fused[cid]
            h.score, h.rank = score[cid], r
            out.append(h)
        return out


def make_retriever(kind: str, bm25: BM25Retriever, dense: DenseRetriever):
    if kind == "hybrid":
        return HybridRetriever(bm25, dense)
    if kind == "bm25":
        return bm25
    if kind == "dense":
        return dense
    raise UsageError(f"unknown retriever {kind!r}; choose one of: {', '.join(RETRIEVERS)}")
