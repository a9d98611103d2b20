"""The decision reader (``--reader decision``): one pool of candidate spans from both readers,
ranked by the learned answer decision.

The neural span reader proposes spans with start/end and no-answer logits; the typed-span
reader proposes spans of the type the question asks for, with their full extent (604.5亿元,
第3位, 85%以上). ``pool()`` merges them: each span once, carrying the evidence of both
(a neural span that overlaps a typed candidate of the asked-for type records it; on a number
question the neural span is also offered extended to the typed candidate's full extent, so
604.5 → 604.5亿元 is a choice the decision sees, not a rule). The combined reader's mix of the
same two lists is one more piece of evidence: each span carries the score that mix gives it
and whether it is the mix's answer (its best three spans join the pool), so the ranker learns
from public questions how far to trust the hand-set mix. ``read()`` then scores every
pooled span with :class:`qa.decide.AnswerDecision` — P(this span is a correct answer),
calibrated on public questions — and ranks by it. Its two thresholds (``threshold`` for an
answer, ``probable_threshold`` for 「可能是…」) come with the decision model.

Not the default yet (issue 15, measured in the README): a span only the typed reader finds
has no neural evidence in the pool, and the ranker, fitted mostly on Wikipedia questions,
ranks such spans low — on report-style figures (「新材料产业产值是多少」 → 604.5亿元) that
loses the answer the hand-mixed ``CombinedReader`` gives.

``DecidedReader(decision=False)`` returns the pool unscored (each span's score is its neural
score, or half its typed score): what ``tools/decision/collect.py`` reads features from.
"""
from __future__ import annotations

from dataclasses import replace

from qa.decide import AnswerDecision
from qa.read.candidates import ACCEPTS
from qa.read.combined import CombinedReader
from qa.read.neural.reader import TransformersReader
from qa.read.typed_span import TypedSpanReader
from qa.types import Candidate, PassageHit, Question

NUMERIC = frozenset({"amount", "count", "percent", "rank"})
NUMERIC_TYPES = frozenset({"amount", "count", "percent", "rank", "date", "amounts"})
MAX_EXTENSION = 12          # characters a typed candidate may add to a neural span
TYPED_POOL = 8              # best typed candidates that join the pool on their own
DECISION_WINDOWS = 4        # sentence windows the neural reader reads for the pool
COMBINED_POOL = 3           # the combined reader's best spans join the pool even when neither list has them


class DecidedReader:
    name = "decision"

    def __init__(self, model_dir: str = "", neural: TransformersReader | None = None,
                 typed: TypedSpanReader | None = None, decision: AnswerDecision | bool | None = None):
        # the answer decision was fitted on pools read from 4 windows (tools/decision/collect.py);
        # its features (ranks, margins) mean what they meant there only with the same reading
        self.neural = neural or TransformersReader(model_dir, max_windows=DECISION_WINDOWS, early_stop=False)
        self.typed = typed or TypedSpanReader()
        self.combined = CombinedReader(neural=self.neural, typed=self.typed)
        if decision is None or decision is True:
            decision = AnswerDecision.load()
        self.decision = decision or None
        if self.decision is not None:
            self.threshold = self.decision.answer_threshold
            self.probable_threshold = self.decision.probable_threshold
        else:
            self.threshold = self.probable_threshold = self.neural.threshold

    def read(self, question: Question, hits: list[PassageHit], index) -> list[Candidate]:
        pool = self.pool(question, hits, index)
        if self.decision is not None and pool:
            probabilities = self.decision.probabilities(question, pool, index)
            pool = [replace(c, score=float(p)) for c, p in zip(pool, probabilities)]
        pool.sort(key=lambda c: (-c.score, c.end - c.start))
        return pool

    def pool(self, question: Question, hits: list[PassageHit], index) -> list[Candidate]:
        """Every span either reader proposes, once, with the evidence of both in ``features``."""
        neural = self.neural.read(question, hits, index)
        typed_all = self.typed.read(question, hits, index)
        accepted = set(ACCEPTS.get(question.kind, ACCEPTS["span"]))
        typed = [t for t in typed_all if t.kind in accepted]
        pool: dict[tuple, Candidate] = {}
        # the combined reader's mix of the same two lists is one more piece of evidence per span
        mixed = self.combined.combine(question, neural, typed_all, index)
        mixed_score: dict[tuple, float] = {}
        for c in mixed:
            mixed_score.setdefault((c.doc_id, c.start, c.end), c.score)

        def add(c: Candidate) -> None:
            key = (c.doc_id, c.start, c.end)
            old = pool.get(key)
            if old is None:
                pool[key] = c
                return
            merged = dict(old.features)
            for k, v in c.features.items():
                if k == "typed_kind":
                    merged.setdefault(k, v)
                elif k not in merged or (isinstance(v, float) and v > merged[k]):
                    merged[k] = v
            keep = old if old.score >= c.score else c
            pool[key] = replace(keep, features=merged)

        def typed_evidence(t: Candidate) -> dict:
            return {"typed_score": t.score, "typed_kind": t.kind}

        for c in neural:
            over = [t for t in typed if c.span.overlaps(t.span)]
            features = dict(c.features)
            if over:
                best = max(over, key=lambda t: t.score)
                features.update(typed_evidence(best), agree_count=float(len(over)))
            add(replace(c, features=features))
            if question.kind in NUMERIC:
                num = [t for t in over if t.kind in NUMERIC_TYPES]
                if num:
                    t = max(num, key=lambda t: (t.score, t.end - t.start))
                    s, e = min(c.start, t.start), max(c.end, t.end)
                    if (s, e) != (c.start, c.end) and (e - s) - (c.end - c.start) <= MAX_EXTENSION:
                        text = index.documents[c.doc_id].text
                        add(replace(c, start=s, end=e, text=text[s:e], kind=t.kind,
                                    sentence_start=min(c.sentence_start, t.sentence_start),
                                    sentence_end=max(c.sentence_end, t.sentence_end),
                                    features=dict(features, typed_score=t.score, typed_kind=t.kind, extended=1.0)))
        for t in typed[:TYPED_POOL]:
            over = [c for c in neural if c.span.overlaps(t.span)]
            features = typed_evidence(t)
            if over:
                features["agree_count"] = float(len(over))
                inside = [c for c in over if t.start <= c.start and c.end <= t.end]
                if inside:   # the typed span is a neural span at its full extent: it keeps that evidence
                    best = max(inside, key=lambda c: c.score)
                    features.update(span_logit=best.features["span_logit"], null_logit=best.features["null_logit"])
                    if (t.start, t.end) != (best.start, best.end):
                        features["extended"] = 1.0
            add(replace(t, score=0.5 * t.score, features=features))
        for c in mixed[:COMBINED_POOL]:
            if (c.doc_id, c.start, c.end) not in pool:
                add(c)
        out = []
        for key, c in pool.items():
            features = dict(c.features, combined_score=mixed_score.get(key, 0.0))
            if mixed and key == (mixed[0].doc_id, mixed[0].start, mixed[0].end):
                features["combined_top"] = 1.0
            out.append(replace(c, features=features))
        return out
