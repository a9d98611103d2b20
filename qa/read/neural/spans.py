"""Span decoding for the neural reader: the best (start, end) token pairs of a window, and
the trimming of a span's surrounding punctuation. Pure numpy."""
from __future__ import annotations

import math
import unicodedata

import numpy as np

_OPEN = "([{（【《「『“‘〈<"
_CLOSE = ")]}）】》」』”’〉>"
_KEEP_END = "%‰°℃％"


def _is_punct(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PZ"


def strip_span(text: str, s: int, e: int) -> tuple[int, int]:
    """Drop surrounding spaces and punctuation, keeping brackets that pair up inside the span
    and a trailing percent/degree sign."""
    while s < e:
        ch = text[s]
        if ch.isspace():
            s += 1
            continue
        if _is_punct(ch):
            if ch in _OPEN and _CLOSE[_OPEN.index(ch)] in text[s + 1:e]:
                break
            s += 1
            continue
        break
    while e > s:
        ch = text[e - 1]
        if ch.isspace():
            e -= 1
            continue
        if _is_punct(ch) and ch not in _KEEP_END:
            if ch in _CLOSE and _OPEN[_CLOSE.index(ch)] in text[s:e - 1]:
                break
            e -= 1
            continue
        break
    if e - s > 2 and text[s] in "（(【[" and text[e - 1] == _CLOSE[_OPEN.index(text[s])] \
            and _CLOSE[_OPEN.index(text[s])] not in text[s + 1:e - 1]:
        return strip_span(text, s + 1, e - 1)      # a span wrapped whole in parentheses
    return s, e


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def top_spans(start_logits: np.ndarray, end_logits: np.ndarray, ctx_mask: np.ndarray, max_answer: int,
              k: int = 1, segments: np.ndarray | None = None) -> list[tuple[float, int, int]]:
    """The ``k`` best non-overlapping ``(score, start_token, end_token)`` inside the context.
    ``segments[t]``: which sentence token ``t`` belongs to; a span never crosses two."""
    idx = np.flatnonzero(ctx_mask)
    if idx.size == 0:
        return []
    sl, el = start_logits[idx], end_logits[idx]
    n = idx.size
    mat = sl[:, None] + el[None, :]
    r = np.arange(n)
    band = (r[None, :] >= r[:, None]) & (r[None, :] - r[:, None] < max_answer)
    if segments is not None:
        seg = np.asarray(segments)[idx]
        band &= seg[:, None] == seg[None, :]
    mat = np.where(band, mat, -np.inf)
    out: list[tuple[float, int, int]] = []
    order = np.argsort(mat, axis=None)[::-1]
    for flat in order[: 200]:
        s, e = divmod(int(flat), n)
        sc = float(mat[s, e])
        if not np.isfinite(sc):
            break
        if any(not (e < s2 or s > e2) for _, s2, e2 in out):
            continue
        out.append((sc, s, e))
        if len(out) >= k:
            break
    return [(sc, int(idx[s]), int(idx[e])) for sc, s, e in out]
