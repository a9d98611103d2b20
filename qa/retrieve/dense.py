"""Dense retrieval: the question's vector against the FAISS chunk index."""
from __future__ import annotations

import numpy as np

from qa.types import Chunk, PassageHit, Question


class DenseRetriever:
    """Inner product on L2-normalised vectors (= cosine)."""

    name = "dense"

    def __init__(self, chunks: list[Chunk], index):
        """``index``: the FAISS index over the chunks' vectors (row i = ``chunks[i]``)."""
        self.chunks, self.index = chunks, index

    def search(self, question_vector: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(top_k, self.index.ntotal)
        if k == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, ids = self.index.search(np.asarray(question_vector, np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def retrieve(self, question: Question, top_k: int = 5) -> list[PassageHit]:
        scores, ids = self.search(question.vector, top_k)
        return [PassageHit(self.chunks[i], float(s), r, dense_score=float(s))
                for r, (s, i) in enumerate(zip(scores, ids))]
