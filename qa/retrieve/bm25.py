"""BM25 over normalised text with the one BM25 tokenizer.

Tokens are Han character bigrams plus single Han characters, and whole runs of
ASCII letters/digits (so "604.5" and "pvdf" stay one token). Measured against
jieba words on the seed evaluation set (see README), bigrams retrieve as well
and need no dictionary.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from qa.text.normalize import HAN, normalize
from qa.types import PassageHit, Question

_TOKEN = re.compile(f"[{HAN}]+|[0-9a-z]+(?:[.%][0-9a-z]+)*")
# Question words and particles carry no content; dropping them sharpens BM25.
STOP_CHARS = set("的了是在和与及或也都而就被把对从到为以于之其这那哪些个么吗呢吧啊什怎多少几")


def bm25_tokens(text: str, normalized: bool = False) -> list[str]:
    """Tokens of ``text`` for BM25 (``normalized``: text is already normalised)."""
    norm = text if normalized else normalize(text)
    out: list[str] = []
    for m in _TOKEN.finditer(norm):
        run = m.group()
        if run[0] < "\u3400":          # ASCII word or number
            out.append(run)
            continue
        out.extend(c for c in run if c not in STOP_CHARS)
        out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


class BM25Retriever:
    """Okapi BM25 (k1=1.2, b=0.75) over chunks, with a small inverted index."""

    name = "bm25"

    def __init__(self, index, k1: float = 1.2, b: float = 0.75):
        """``index``: the loaded index (its chunks and their documents' normalised text)."""
        chunks = index.chunks
        self.chunks = chunks
        self.k1, self.b = k1, b
        postings: dict[str, list[tuple[int, int]]] = {}
        lengths = np.zeros(len(chunks), np.float32)
        for i, c in enumerate(chunks):
            counts = Counter(bm25_tokens(index.normalized_span(c.doc_id, c), normalized=True))
            lengths[i] = sum(counts.values())
            for tok, tf in counts.items():
                postings.setdefault(tok, []).append((i, tf))
        self.avgdl = float(lengths.mean()) if len(chunks) else 1.0
        self.norm = k1 * (1 - b + b * lengths / max(self.avgdl, 1e-9))
        n = len(chunks)
        self.postings = {t: (np.array([i for i, _ in p], np.int64), np.array([f for _, f in p], np.float32),
                             math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))) for t, p in postings.items()}

    def idf(self, token: str) -> float:
        """Inverse document frequency of a (normalised) token; unseen tokens get the maximum."""
        hit = self.postings.get(token)
        if hit is None:
            return math.log(1 + (len(self.chunks) + 0.5) / 0.5)
        return hit[2]

    def scores(self, question: Question) -> np.ndarray:
        scores = np.zeros(len(self.chunks), np.float32)
        for tok in set(bm25_tokens(question.normalized, normalized=True)):
            hit = self.postings.get(tok)
            if hit is None:
                continue
            ids, tf, idf = hit
            scores[ids] += idf * tf * (self.k1 + 1) / (tf + self.norm[ids])
        return scores

    def retrieve(self, question: Question, top_k: int = 5) -> list[PassageHit]:
        scores = self.scores(question)
        k = min(top_k, len(scores))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [PassageHit(self.chunks[i], float(scores[i]), r, sparse_score=float(scores[i]))
                for r, i in enumerate(top) if scores[i] > 0]
