"""The neural reader's tokenizer: question + context pairs cut into model windows.

``PairTokenizer(path)`` loads ``tokenizer.json`` with the ``tokenizers`` library (no
transformers) and makes exactly the windows transformers' fast tokenizer makes
(``truncation="only_second"``, ``stride``, overflowing windows), padded to the longest.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_QUERY_TOKENS = 64


@dataclass
class Windows:
    """Model inputs for (question, context) pairs: one row per window of a context.
    ``offsets[i][t]`` are the token's character offsets in its context (or question),
    ``sequence_ids[i][t]`` is 0 (question), 1 (context) or None (special/padding),
    ``sample[i]`` the pair the window came from."""
    input_ids: np.ndarray
    attention_mask: np.ndarray
    offsets: list
    sequence_ids: list
    sample: list

    def context_mask(self, i: int) -> np.ndarray:
        """Which of row ``i``'s (padded) token positions are context tokens."""
        mask = np.zeros(self.input_ids.shape[1], dtype=bool)
        seq = self.sequence_ids[i]
        mask[:len(seq)] = [x == 1 for x in seq]
        return mask


class PairTokenizer:
    """The reader's tokenizer (``tokenizer.json``) through the ``tokenizers`` library: question +
    context pairs cut into overlapping windows exactly as transformers' fast tokenizer does
    (``truncation="only_second"``, ``stride``, overflowing windows), padded to the longest."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(path))
        self.tok.no_padding()
        self.tok.no_truncation()
        self.pad_id = self.tok.token_to_id("<pad>")
        self.unk_id = self.tok.token_to_id("<unk>")
        if self.pad_id is None:
            self.pad_id = 0
        self._lock = threading.Lock()

    def encode(self, text: str):
        """Tokens of one text, no special tokens (``.ids``, ``.offsets``)."""
        with self._lock:
            self.tok.no_truncation()
            return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids))

    def truncate_question(self, q: str) -> str:
        enc = self.encode(q)
        if len(enc.ids) > MAX_QUERY_TOKENS:
            q = q[: enc.offsets[MAX_QUERY_TOKENS - 1][1]]
        return q

    def windows(self, questions: list[str], contexts: list[str], max_len: int = 256,
                stride: int = 128) -> Windows:
        with self._lock:
            self.tok.enable_truncation(max_len, stride=stride, strategy="only_second")
            try:
                encs = self.tok.encode_batch(list(zip(questions, contexts)))
            finally:
                self.tok.no_truncation()
        rows, sample = [], []
        for i, e in enumerate(encs):
            for w in [e] + list(e.overflowing):
                rows.append(w)
                sample.append(i)
        n = max(len(w.ids) for w in rows)
        ids = np.full((len(rows), n), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), n), dtype=np.int64)
        for i, w in enumerate(rows):
            ids[i, :len(w.ids)] = w.ids
            mask[i, :len(w.ids)] = w.attention_mask
        return Windows(ids, mask, [list(w.offsets) for w in rows], [list(w.sequence_ids) for w in rows], sample)
