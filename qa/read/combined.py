"""The combined reader: the neural span reader and the typed-span reader together.

Default ``mode="by_kind"``: the question's kind decides which reader leads.

- Numbers (``SUPPORT_KINDS``: amount, count, percent, rank) — ``"support"``:
  every typed candidate (a span of the type the question asks for, with its full extent:
  604.5亿元, 第3位, 85%以上) is re-scored with the neural reader's support:
  ``score = typed_score + support_weight × best neural score of an overlapping neural span``;
  a neural span that overlaps a typed candidate is thereby extended to the typed candidate's
  full extent (units and qualifiers attached to numbers: 604.5 → 604.5亿元); neural spans that
  overlap no typed candidate compete with ``score = neural_score × typed.threshold /
  neural.threshold``, so they clear the abstain threshold exactly when they clear the neural
  reader's own (calibrated on DRCD dev / SQuAD 2.0-zh questions, not on the seed set).
  The neural reader leads: when one of its spans clears its own threshold without any typed
  candidate, a typed candidate with weaker neural support is capped just below it (session 6:
  「五羊邨站共有几层」 → the neural 三层, not a typed 4个 elsewhere in the paragraph; seed set
  answerable EM 65.1 → 66.0, 1,000 CMRC 2018 training questions in reader mode 41.2 → 41.5).
- Lists (「有什么」「哪些」) left the support mode in session 6: with reader v3 the typed
  enumerations lost to the neural spans on Wikipedia-style text (1,000 CMRC 2018 training
  questions through ``qa eval --mode reader``: list questions 5.3 → 35.1 EM) and on the seed
  set as well (answerable EM 64.2 → 65.1).
- Every other kind (date, person, place, entity, role, open "span" questions) — ``"neural"``:
  the neural spans lead; a span that agrees with a typed candidate of the asked-for type gains
  ``agreement_bonus``; on amount/count/percent/rank questions a span overlapping a typed number
  is extended to its full extent. Scores are shifted so that the neural threshold maps to the
  typed one. When the best span is also a typed candidate of the asked-for type, the two
  readers agree, and its confidence becomes what the support rule gives the pair (typed score
  + support_weight × neural score) if that is higher (``confirm_top``): the ranking stays the
  neural reader's, only the decision to answer changes. Without it the neural reader's
  threshold (calibrated on DRCD / SQuAD2-zh) withheld answers both readers agreed on.

Why by kind: measured on 400 DRCD dev questions (open retrieval) and the 249 seed questions
together, per kind (README, "Readers"): with typed candidates leading everywhere, DRCD EM was
19.8 (typed gap-filling spans beat the right neural span on entity/place/open questions); with
neural leading everywhere the seed set lost its numbers with units. The split takes each kind's
better mode by pooled EM; ``agreement_bonus`` 0.2 is the middle of the flat range 0.1–0.3.
``mode="support"`` or ``"neural"`` forces one mode for every question.
The abstain threshold is the typed reader's; all scores (and the threshold) are divided by
``1 + support_weight`` so that they stay in [0, 1] without ties at 1.

Three states (``Pipeline.thresholds``): below ``threshold`` (= ``probable_threshold``) "not found";
from there to ``answer_threshold`` 「可能是…」; above it the answer. ``answer_threshold`` (0.73,
``combined-states.json``) is where P(right) reaches 0.5 on public questions
(``python -m tools.decision.states``); without that file there are two states.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from qa.read.candidates import (ACCEPTS, asked_roles, dimension_conflict, figure_absent,
                                measure_conflict, place_absent, role_conflict, year_evidence)
from qa.read.neural.reader import TransformersReader
from qa.read.typed_span import TypedSpanReader
from qa.types import Candidate, PassageHit, Question

NUMERIC = frozenset({"amount", "count", "percent", "rank"})
# question kinds whose answers the typed patterns know best (numbers with units, ranks):
# there the typed candidates lead ("support"); for every other kind the neural spans lead
SUPPORT_KINDS = frozenset({"amount", "count", "percent", "rank"})
NUMERIC_TYPES = frozenset({"amount", "count", "percent", "rank", "date", "amounts"})
# a span that contradicts the question's year, role or count is scaled into [0, threshold): never an answer
CONFLICT_SCALE = 0.99
UNSUPPORTED_BELOW = 0.99   # a less supported typed candidate stays just below the neural lead (an alternative)
MAX_EXTENSION = 12          # characters a typed candidate may add to a neural span (mode "neural")
# the "answer" cut above the abstain threshold (tools.decision.states): between the two, 「可能是…」
STATES_FILE = Path(__file__).with_name("combined-states.json")


def load_answer_threshold(abstain_at: float, path: Path = STATES_FILE) -> float:
    """The calibrated "answer" threshold (at least ``abstain_at``); ``abstain_at`` itself — two
    states only — when the file is missing or unreadable."""
    try:
        value = float(json.loads(path.read_text(encoding="utf-8"))["answer_threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return abstain_at
    return min(max(value, abstain_at), 1.0)


def _inside(t: Candidate, c: Candidate) -> bool:
    """Candidate ``t`` lies inside the longer candidate ``c`` (same document)."""
    return t.doc_id == c.doc_id and c.start <= t.start and t.end <= c.end and (c.end - c.start) > (t.end - t.start)


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


class CombinedReader:
    name = "combined"

    def __init__(self, model_dir: str = "", neural: TransformersReader | None = None,
                 typed: TypedSpanReader | None = None, mode: str = "by_kind",
                 support_weight: float = 0.4, agreement_bonus: float = 0.2, confirm_top: bool = True):
        self.neural = neural or TransformersReader(model_dir)
        self.typed = typed or TypedSpanReader()
        self.mode = mode
        self.support_weight = support_weight
        self.agreement_bonus = agreement_bonus
        self.confirm_top = confirm_top
        # raw scores go up to 1 + support_weight; dividing by that keeps them in [0, 1]
        # without clipping (clipping at 1 would tie the best candidates)
        self._norm = 1.0 + support_weight
        # below ``threshold`` the reader abstains ("not found"); from there to ``answer_threshold``
        # its best span is shown as 「可能是…」 (``probable_threshold``), above it as the answer
        self.threshold = self.probable_threshold = self.typed.threshold / self._norm
        self.answer_threshold = load_answer_threshold(self.threshold)

    def read(self, question: Question, hits: list[PassageHit], index) -> list[Candidate]:
        return self.combine(question, self.neural.read(question, hits, index),
                            self.typed.read(question, hits, index), index)

    def combine(self, question: Question, neural: list[Candidate], typed: list[Candidate],
                index) -> list[Candidate]:
        """The two readers' candidates for one question, mixed and ranked best first."""
        out = self._support(neural, typed) if self.mode_for(question.kind) == "support" else \
            self._neural_led(question, neural, typed, index)
        out = self._constraints_checked(question, out, index)
        out.sort(key=lambda c: (-c.score, c.end - c.start))
        return out

    def _constraints_checked(self, question: Question, out: list[Candidate], index) -> list[Candidate]:
        """A span whose cited text contradicts a constraint of the question may not be the
        answer:

        - ``year_conflict``: its sentence names only other years than the question's (asked for
          2024, the text gives 2025's figure);
        - ``role_conflict``: the question asks for a role the sentence never names while another
          role stands right before the span (asked for 总经理, 「董事长王建华」);
        - ``measure_conflict``: the question counts one kind of thing and the span another
          (多少所学校 → 3.7万人);
        - ``dimension_conflict``: the question's head noun measures one thing and the span's
          figures another (常住人口 → 64亿元; 产值 → 3万人);
        - ``figure_absent``: the question asks for a figure (多少, 几, 哪一年) and the span holds
          none (「哪一年开始担任」 → 杭州湾上虞);
        - ``place_conflict``: the question names a place its cited document never names (asked
          about 宁海县 or 北京市, the document is about 上虞区).

        Its score is scaled into ``[0, threshold)``, keeping the order among such spans, so a
        span that fits ranks first and, when there is none, "not found" still names it as the
        nearest. Measured on public questions (README, "Years, roles and counts the documents
        do not give", and ``python -m tools.reader.constraints``): near misses of a year were
        answered 60-95 % of the time, now 0-20 %. Of the answerable questions in the public
        training sets, the conflicts contradict the gold answer of 11 of 1,565 naming a year,
        0 of 164 naming a role, 1 of 2,914 asking for a measure word, 2 of 657 with a measuring
        head noun, 13 of 3,232 asking for a figure (native sets), and 4 of 485 naming a place."""
        roles = asked_roles(question.normalized) if question.kind in ("person", "role") else frozenset()
        if not (question.years or roles or question.unit or question.dimension or question.places
                or question.figure):
            return out
        missing_place: dict[str, bool] = {}
        checked = []
        for c in out:
            norm = index.normalized[c.doc_id]
            span = norm[c.start:c.end]
            if c.doc_id not in missing_place:
                missing_place[c.doc_id] = place_absent(question.places, norm)
            _, conflict = year_evidence(question.years, norm, c.sentence_start, c.sentence_end)
            why = "year_conflict" if conflict else None
            if why is None and role_conflict(roles, norm, c.sentence_start, c.sentence_end, c.start):
                why = "role_conflict"
            if why is None and question.unit and measure_conflict(question.unit, span):
                why = "measure_conflict"
            if why is None and dimension_conflict(question.dimension, span, question.kind):
                why = "dimension_conflict"
            if why is None and figure_absent(question.figure, span):
                why = "figure_absent"
            if why is None and missing_place[c.doc_id]:
                why = "place_conflict"
            if why:
                c = replace(c, score=self.threshold * CONFLICT_SCALE * c.score, features=dict(c.features, **{why: 1.0}))
            checked.append(c)
        return checked

    def mode_for(self, kind: str) -> str:
        if self.mode == "by_kind":
            return "support" if kind in SUPPORT_KINDS else "neural"
        return self.mode

    def _neural_scale(self) -> float:
        return self.typed.threshold / max(self.neural.threshold, 1e-6)

    def _support(self, neural: list[Candidate], typed: list[Candidate]) -> list[Candidate]:
        out = []
        # a neural span that holds a whole clause candidate and more (「对…企业，三年内免收…，并由…
        # 给予补贴」 for 「有哪些措施」) is the reader's extent for an answer of several clauses:
        # it stands for the clauses inside it instead of being cut to one of them
        wider = [c for c in neural if any(_inside(t, c) for t in typed if t.kind == "clause")]
        for t in typed:
            if t.kind == "clause" and any(_inside(t, c) for c in wider):
                continue
            support = max((c.score for c in neural if c.span.overlaps(t.span)), default=0.0)
            out.append(replace(t, score=_clip((t.score + self.support_weight * support) / self._norm),
                               features=dict(t.features, neural_support=support)))
        for c in wider:
            held = max(t.score for t in typed if t.kind == "clause" and _inside(t, c))
            out.append(replace(c, score=_clip((held + self.support_weight * c.score) / self._norm),
                               features=dict(c.features, neural_support=c.score, holds_clauses=1.0)))
        scale = self._neural_scale()
        lead = None       # the best neural span that clears the neural reader's own threshold alone
        lead_raw = 0.0
        for c in neural:
            if c in wider or any(c.span.overlaps(t.span) for t in typed):
                continue          # the overlapping typed candidate (full extent) stands for it
            score = _clip(c.score * scale / self._norm)
            out.append(replace(c, score=score, features=dict(c.features, neural_only=1.0)))
            if c.score >= self.neural.threshold and c.score > lead_raw:
                lead, lead_raw = score, c.score
        if lead is not None:
            # the neural reader leads: a typed candidate that the neural reader supports less than
            # a span it answers with by its own threshold ranks below that span (「五羊邨站共有几层」:
            # the neural reader's 三层 at 0.95, not a typed 4个 that a 0.84 span 「4个出入口和2个站厅」
            # supports)
            cap = lead * UNSUPPORTED_BELOW
            out = [replace(c, score=cap, features=dict(c.features, below_lead=1.0))
                   if c.score > cap and "neural_only" not in c.features
                   and c.features.get("neural_support", 0.0) < lead_raw
                   else c for c in out]
        return out

    def _neural_led(self, question: Question, neural: list[Candidate], typed: list[Candidate],
                    index) -> list[Candidate]:
        accepted = set(ACCEPTS.get(question.kind, ACCEPTS["span"]))
        numeric = question.kind in NUMERIC
        scale = self._neural_scale()
        out: list[Candidate] = []
        for c in neural:
            over = [t for t in typed if c.span.overlaps(t.span) and t.kind in accepted]
            features = dict(c.features)
            new, score = c, c.score * scale
            if over:
                features["type_agree"] = 1.0
                score += self.agreement_bonus
                num = [t for t in over if t.kind in NUMERIC_TYPES] if numeric else []
                if num:
                    t = max(num, key=lambda t: (t.score, t.end - t.start))
                    s, e = min(c.start, t.start), max(c.end, t.end)
                    if (e - s) - (c.end - c.start) <= MAX_EXTENSION and (s, e) != (c.start, c.end):
                        doc_text = index.documents[c.doc_id].text
                        features["extended"] = 1.0
                        new = replace(new, start=s, end=e, text=doc_text[s:e],
                                      sentence_start=min(c.sentence_start, t.sentence_start),
                                      sentence_end=max(c.sentence_end, t.sentence_end))
                    new = replace(new, kind=t.kind)
            out.append(replace(new, score=_clip(score / self._norm), features=features))
        if out and self.confirm_top:
            # the answer's confidence (not the ranking): when the best neural span is also a typed
            # candidate of the asked-for type, the two readers agree, and the pair is worth what the
            # support rule gives it (typed score + support_weight x neural score)
            i = min(range(len(out)), key=lambda j: (-out[j].score, out[j].end - out[j].start))
            top, src = out[i], neural[i]
            agree = [t for t in typed if src.span.overlaps(t.span) and t.kind in accepted]
            if agree:
                pair = max((t.score + self.support_weight * src.score) / self._norm for t in agree)
                if pair > top.score:
                    out[i] = replace(top, score=_clip(pair), features=dict(top.features, confirmed=pair))
        return out
