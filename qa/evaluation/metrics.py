"""The one answer scorer, CMRC 2018 style, plus retrieval, citation and no-answer metrics.

Everything here is a pure function over plain values: strings, ints, booleans and
lists of ``(doc_id, start, end)`` spans (a mapping with those keys, or an object
with those attributes such as :class:`qa.types.Chunk`, is accepted for a span).

Answer scoring follows the official CMRC 2018 script (``cmrc2018_evaluate.py``):

- both strings are lower-cased and stripped of punctuation;
- each CJK character is one token and each run of consecutive non-CJK characters
  (letters, digits) is segmented further, as ``nltk.word_tokenize`` does there:
  ``"604.5亿元"`` → ``["604.5", "亿", "元"]``, ``"16.7%"`` → ``["16.7", "%"]``,
  ``"5G网络"`` → ``["5g", "网", "络"]``;
- F1 comes from the longest common *contiguous* token sequence:
  precision = lcs / len(pred), recall = lcs / len(gold);
- EM and F1 are each the maximum over the acceptable answers.

Where this departs from the official script, on purpose:

- traditional and simplified script, and full and half width, count as equal
  (:func:`qa.text.normalize.normalize` is applied first);
- all Unicode punctuation is dropped, ASCII and Chinese alike (the official list
  misses ASCII ``. , ( )`` and some Chinese marks), except what carries meaning in
  numbers: ``%`` and ``‰`` stay; ``.``, ``/`` and ``:`` stay between two digits
  (``604.5``, ``1/3``, ``15:29``); a range dash or tilde between two digits becomes
  ``-`` (``2013〜2017`` = ``2013-2017``); a comma between digits is dropped
  (``1,000`` = ``1000``). Symbols such as ``+`` and ``>`` are kept
  (``1+9`` ≠ ``19``);
- whitespace is dropped everywhere (``"朱银燕 倪贤方"`` = ``"朱银燕倪贤方"``), and
  tokens are taken from the normalised string, so EM = 1 always implies F1 = 1.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from qa.text.normalize import HAN_ALL, normalize

Span = tuple[str, int, int]

# Han ideographs (BMP, extension A, compatibility, supplementary planes) and 〇.
_CJK_CLASS = HAN_ALL
_TOKEN = re.compile(
    rf"[{_CJK_CLASS}]"                           # one CJK character
    rf"|(?:(?![{_CJK_CLASS}])[^\W_]|[./:\-])+"   # a run of letters/digits (with 604.5, 1/3, 8000-10000)
    r"|\S"                                       # any other kept symbol: % + > …
)
_KEEP_PUNCT = frozenset("%‰")                    # punctuation by Unicode, meaning by use
_BETWEEN_DIGITS = {".": ".", "/": "/", ":": ":"}
_RANGE_MARKS = frozenset("-‐‑‒–—―~〜～－")
_EXTRA_DROP = frozenset("~|`^")                  # symbols (not P*) the official script drops too


def _is_punct(ch: str) -> bool:
    return ch in _EXTRA_DROP or (unicodedata.category(ch).startswith("P") and ch not in _KEEP_PUNCT)


def normalize_answer(s: str | None) -> str:
    """The comparison form of an answer: simplified script, half width, lower case,
    no punctuation, no whitespace (number-internal marks kept, see module doc).

    >>> normalize_answer("“604.5億元”。")
    '604.5亿元'
    """
    if not s:
        return ""
    t = normalize(s)
    out = []
    n = len(t)
    for i, ch in enumerate(t):
        if ch.isspace():
            continue
        if ch in _BETWEEN_DIGITS or ch in _RANGE_MARKS or ch == ",":
            between = 0 < i < n - 1 and t[i - 1].isdigit() and t[i + 1].isdigit()
            if between and ch in _BETWEEN_DIGITS:
                out.append(ch)
            elif between and ch in _RANGE_MARKS:
                out.append("-")
            # otherwise (a comma, or the mark is not between digits) it is dropped
            continue
        if _is_punct(ch):
            continue
        out.append(ch)
    return "".join(out)


def tokenize(s: str | None) -> list[str]:
    """Tokens of the normalised answer: one per CJK character, one per run of
    letters/digits (``604.5``, ``5g``, ``8000-10000``), one per other symbol."""
    return _TOKEN.findall(normalize_answer(s))


def _lcs_len(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous run of ``a`` and ``b``."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best = cur[j]
        prev = cur
    return best


def em(pred: str | None, gold: str | None) -> float:
    """1.0 if the two answers are equal after :func:`normalize_answer`, else 0.0."""
    return 1.0 if normalize_answer(pred) == normalize_answer(gold) else 0.0


def f1(pred: str | None, gold: str | None) -> float:
    """Token F1 from the longest common substring of the token lists.

    Two empty answers score 1.0; one empty and one not score 0.0.
    """
    p, g = tokenize(pred), tokenize(gold)
    if not p or not g:
        return 1.0 if not p and not g else 0.0
    lcs = _lcs_len(p, g)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(g)
    return 2 * precision * recall / (precision + recall)


def _answer_text(a: Any) -> str:
    return a["text"] if isinstance(a, Mapping) else a


def score(pred: str | None, golds: Iterable[str | Mapping[str, Any]]) -> tuple[float, float]:
    """``(em, f1)`` of one prediction against every acceptable answer (each max'd separately).

    ``golds`` holds answer strings (or answer dicts with a ``"text"`` key, as in the
    eval set). Pass ``pred=""`` (or ``None``) when the system abstains.

    No-answer questions have ``golds == []``: an abstention scores ``(1.0, 1.0)``
    and any non-empty prediction ``(0.0, 0.0)``. For an answerable question an
    abstention scores ``(0.0, 0.0)``.
    """
    texts = [_answer_text(g) for g in golds]
    abstained = normalize_answer(pred) == ""
    if not texts:
        return (1.0, 1.0) if abstained else (0.0, 0.0)
    if abstained:
        return 0.0, 0.0
    return max(em(pred, t) for t in texts), max(f1(pred, t) for t in texts)


# ----------------------------------------------------------------- retrieval and citations

def as_span(x: Any) -> Span:
    """``(doc_id, start, end)`` from a tuple, a mapping or an object with those fields."""
    if isinstance(x, Mapping):
        return x["doc_id"], int(x["start"]), int(x["end"])
    if isinstance(x, (tuple, list)):
        doc_id, start, end = x
        return doc_id, int(start), int(end)
    return x.doc_id, int(x.start), int(x.end)


def contains(passage: Any, gold: Any) -> bool:
    """True if ``passage`` is in the gold span's document and covers it entirely."""
    pd, ps, pe = as_span(passage)
    gd, gs, ge = as_span(gold)
    return pd == gd and ps <= gs and ge <= pe


def hit_rank(ranked_hits: Sequence[Any], gold_spans: Sequence[Any], k: int | None = None) -> int | None:
    """1-based rank of the first passage that contains any gold span (within the
    top ``k`` when given), or ``None``."""
    golds = [as_span(g) for g in gold_spans]
    if not golds:
        raise ValueError("no gold spans: retrieval metrics are undefined for a no-answer question")
    limit = len(ranked_hits) if k is None else k
    for rank, hit in enumerate(ranked_hits[:limit], 1):
        if any(contains(hit, g) for g in golds):
            return rank
    return None


def recall_at_k(ranked_hits: Sequence[Any], gold_spans: Sequence[Any], k: int) -> float:
    """1.0 if one of the top ``k`` passages contains a gold span, else 0.0 (for one
    question; average over questions). ``ranked_hits`` is best first."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return 0.0 if hit_rank(ranked_hits, gold_spans, k) is None else 1.0


def mrr(ranked_hits: Sequence[Any], gold_spans: Sequence[Any], k: int | None = None) -> float:
    """Reciprocal rank of the first passage containing a gold span (0.0 if none in
    the top ``k``) for one question; the mean over questions is the MRR."""
    rank = hit_rank(ranked_hits, gold_spans, k)
    return 0.0 if rank is None else 1.0 / rank


def citation_correct(citation_doc: str, citation_start: int, citation_end: int,
                     gold_answers: Iterable[Any]) -> bool:
    """True if the citation is in a gold answer's document and its quote
    ``[citation_start, citation_end)`` overlaps that answer's span by at least one
    character. No gold answers → False."""
    for g in gold_answers:
        gd, gs, ge = as_span(g)
        if gd == citation_doc and citation_start < ge and gs < citation_end:
            return True
    return False


# ----------------------------------------------------------------- no-answer detection

class PRF(NamedTuple):
    precision: float
    recall: float
    f1: float


def no_answer_prf(pairs: Iterable[tuple[bool, bool]]) -> PRF:
    """Precision, recall and F1 of abstaining, from ``(predicted_no_answer, gold_no_answer)``
    pairs; the positive class is "no answer".

    A ratio whose denominator is zero is 1.0 when there was nothing to get wrong
    (no abstention claimed and none missed, or vice versa) and 0.0 otherwise:
    with no gold no-answer questions and no abstentions all three are 1.0.
    """
    tp = fp = fn = 0
    for predicted, gold in pairs:
        if predicted and gold:
            tp += 1
        elif predicted:
            fp += 1
        elif gold:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f)


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p``-th percentile (0–100) with linear interpolation between closest
    ranks (numpy's default): ``percentile([1, 2, 3, 4], 50) == 2.5``."""
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("percentile of an empty list")
    if not 0 <= p <= 100:
        raise ValueError(f"p must be within [0, 100], got {p}")
    pos = (len(xs) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ----------------------------------------------------------------- calibration

#: A span is a correct answer when its F1 against a gold answer is at least this (the
#: answer decision is fitted and judged with it: 604.5亿 for 604.5亿元 counts, 604.5 does not).
CORRECT_F1 = 0.8


def is_correct(pred: str | None, golds: Iterable[str | Mapping[str, Any]]) -> bool:
    """``pred`` answers correctly: an answerable question and F1 ≥ :data:`CORRECT_F1`."""
    golds = list(golds)
    return bool(golds) and normalize_answer(pred) != "" and score(pred, golds)[1] >= CORRECT_F1


class Bin(NamedTuple):
    lo: float
    hi: float
    n: int
    confidence: float      # mean stated probability in the bin
    accuracy: float        # share right in the bin


def calibration(pairs: Iterable[tuple[float, bool]], bins: int = 10) -> tuple[list[Bin], float]:
    """Reliability bins and expected calibration error of ``(probability, correct)`` pairs:
    ``ECE = Σ n_b / N · |accuracy_b − confidence_b|`` over ``bins`` equal-width bins of [0, 1]."""
    rows = [(min(max(float(p), 0.0), 1.0), bool(ok)) for p, ok in pairs]
    out, total, ece = [], len(rows), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(p, ok) for p, ok in rows if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if not inside:
            out.append(Bin(lo, hi, 0, (lo + hi) / 2, 0.0))
            continue
        conf = sum(p for p, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / total * abs(acc - conf)
        out.append(Bin(lo, hi, len(inside), conf, acc))
    return out, ece


def answered_precision(pairs: Iterable[tuple[float, bool]], threshold: float) -> tuple[float, float]:
    """``(precision, coverage)`` of answering when the probability reaches ``threshold``:
    the share right among those answered, and the share of all questions answered."""
    rows = list(pairs)
    answered = [ok for p, ok in rows if p >= threshold]
    precision = sum(answered) / len(answered) if answered else 1.0
    return precision, (len(answered) / len(rows) if rows else 0.0)
