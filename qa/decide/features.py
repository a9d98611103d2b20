"""What the answer decision knows about a candidate span: features that carry to new text.

``candidate_features(question, candidates, index)`` gives one row per candidate (columns
``FEATURES``), computed once per question for the whole pool:

- the neural reader's evidence: span − no-answer logit, the no-answer logit, its rank;
- the typed reader's: whether the span is a candidate of the asked-for type, its score;
  whether a neural span was extended to the typed candidate's full extent;
- completeness: the measure word the question asks for (多少**人**) present in the span; a
  number asked for and none in the span;
- constraints: the idf-weighted share of the question's words in the cited sentence (and in
  the sentence before it), of its focus words (the words just before 多少/什么), and in the
  whole cited document (a place, a category, a role it does not have); a year the question
  names that the sentence states, or contradicts (it names only other years);
- echo: how much of the span repeats the question (an answer rarely does);
- retrieval: the passage's rank, the sentence's similarity to the question and its distance
  from the best sentence retrieved (not the fused retrieval score: min-max fusion gives the best
  passage about 1 whatever the collection holds, so it cannot tell a user's unanswerable question,
  while the fitting collections' retrieval unanswerables — gold paragraph dropped after
  retrieval — would teach that it does: their best passage scored 0.49–0.56 on average, real
  unanswerables 0.91–0.96);
- competition: margin of the span's neural evidence over the best different span;
- the combined reader's view: the score its hand-set mix gives the span, and whether it is
  that reader's answer (the ranker learns from public questions how far to trust it);
- the question's kind (numeric, date, who, what/where, list, open).

Nothing here depends on a particular document or evaluation question.
"""
from __future__ import annotations

import math
import re

import numpy as np

from qa.read.candidates import ACCEPTS, year_evidence
from qa.types import Candidate, Question

_DIGIT = re.compile(r"[\d零〇一二两三四五六七八九十百千万亿]")
NUMERIC_KINDS = frozenset({"amount", "count", "percent", "rank"})
KIND_GROUPS = {"numeric": NUMERIC_KINDS, "date": {"date"}, "who": {"person", "role"},
               "what": {"place", "entity"}, "list": {"list"}}
NO_NEURAL = -8.0        # span − null logit given to a typed span that no neural span covers
CLIP = 15.0

FEATURES = (
    "neural_diff", "neural_null", "neural_present", "neural_rank",
    "typed_present", "typed_score", "type_match", "extended",
    "unit_asked", "unit_present", "number_missing",
    "coverage", "coverage_prev", "focus", "doc_coverage", "year_asked", "year_match", "year_conflict",
    "echo", "log_length",
    "passage_rank", "sentence_similarity", "sentence_gap",
    "margin", "agree_count", "combined_score", "combined_top",
    *(f"kind_{g}" for g in KIND_GROUPS),
)


def _share(bigrams: list[str], idf: dict[str, float], text: str) -> float:
    if not bigrams:
        return 0.0
    total = sum(idf.get(b, 1.0) for b in bigrams) or 1.0
    return sum(idf.get(b, 1.0) for b in bigrams if b in text) / total


def _sentence_similarity(c: Candidate, index) -> float:
    """The cited sentence's cosine similarity to the question (the hit's best where the span
    stands in none of its sentences)."""
    hit = c.passage
    if hit is None or not hit.sentence_ids:
        return 0.0
    sims = hit.sentence_similarity
    for sid, sim in zip(hit.sentence_ids, sims):
        s = index.sentences[sid]
        if s.start <= c.start < s.end or (s.start < c.end <= s.end):
            return float(sim)
    return float(np.max(sims)) if len(sims) else 0.0


def candidate_features(question: Question, candidates: list[Candidate], index) -> np.ndarray:
    """One row of ``FEATURES`` per candidate (float32)."""
    rows = np.zeros((len(candidates), len(FEATURES)), dtype=np.float32)
    if not candidates:
        return rows
    col = {name: i for i, name in enumerate(FEATURES)}
    accepted = set(ACCEPTS.get(question.kind, ACCEPTS["span"]))
    q_years = set(question.years)
    q_norm = question.normalized
    diffs = []
    for c in candidates:
        f = c.features
        diffs.append(f["span_logit"] - f["null_logit"] if "span_logit" in f else NO_NEURAL)
    order = sorted(range(len(candidates)), key=lambda i: -diffs[i])
    neural_rank = {i: r for r, i in enumerate(order)}
    # the best sentence similarity among all retrieved passages (sentence_gap is measured from it)
    best_sims = [0.0]
    for c in candidates:
        if c.passage is not None and c.passage.sentence_similarity is not None and len(c.passage.sentence_similarity):
            best_sims.append(float(np.max(c.passage.sentence_similarity)))
    best_sim_all = max(best_sims)
    for i, c in enumerate(candidates):
        f = c.features
        row = rows[i]
        norm = index.normalized[c.doc_id]
        sentence = norm[c.sentence_start:c.sentence_end]
        prev = norm[max(0, c.sentence_start - 80):c.sentence_start]
        span = norm[c.start:c.end]
        row[col["neural_diff"]] = max(-CLIP, min(CLIP, diffs[i]))
        row[col["neural_null"]] = max(-CLIP, min(CLIP, f.get("null_logit", 0.0)))
        row[col["neural_present"]] = 1.0 if "span_logit" in f else 0.0
        row[col["neural_rank"]] = min(neural_rank[i], 5)
        row[col["typed_present"]] = 1.0 if "typed_score" in f else 0.0
        row[col["typed_score"]] = f.get("typed_score", 0.0)
        row[col["type_match"]] = 1.0 if f.get("typed_kind") in accepted or c.kind in accepted else 0.0
        row[col["extended"]] = f.get("extended", 0.0)
        if question.unit:
            row[col["unit_asked"]] = 1.0
            money = question.unit == "元"
            row[col["unit_present"]] = 1.0 if (re.search(r"[元亿万]", span) if money else question.unit in span) else 0.0
        if question.kind in NUMERIC_KINDS and not _DIGIT.search(span):
            row[col["number_missing"]] = 1.0
        row[col["coverage"]] = _share(question.bigrams, question.idf, sentence)
        row[col["coverage_prev"]] = _share(question.bigrams, question.idf, prev + sentence)
        row[col["focus"]] = _share(question.focus, question.idf, sentence)
        row[col["doc_coverage"]] = _share(question.bigrams, question.idf, norm)
        if q_years:
            row[col["year_asked"]] = 1.0
            match, conflict = year_evidence(q_years, norm, c.sentence_start, c.sentence_end)
            row[col["year_match"]] = 1.0 if match else 0.0
            row[col["year_conflict"]] = 1.0 if conflict else 0.0
        span_bigrams = {span[j:j + 2] for j in range(len(span) - 1)} or {span}
        row[col["echo"]] = sum(1 for b in span_bigrams if b in q_norm) / len(span_bigrams)
        row[col["log_length"]] = math.log1p(c.end - c.start)
        hit = c.passage
        if hit is not None:
            row[col["passage_rank"]] = min(hit.rank, 10)
        sim = _sentence_similarity(c, index)
        row[col["sentence_similarity"]] = sim
        row[col["sentence_gap"]] = best_sim_all - sim
        others = [diffs[j] for j in range(len(candidates)) if candidates[j].text != c.text]
        row[col["margin"]] = max(-CLIP, min(CLIP, diffs[i] - max(others))) if others else CLIP
        row[col["agree_count"]] = f.get("agree_count", 0.0)
        row[col["combined_score"]] = f.get("combined_score", 0.0)
        row[col["combined_top"]] = f.get("combined_top", 0.0)
        for g, kinds in KIND_GROUPS.items():
            if question.kind in kinds:
                row[col[f"kind_{g}"]] = 1.0
    return rows
