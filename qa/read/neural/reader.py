"""The neural reader: an extractive (start/end) span model over the best sentences.

``TransformersReader(model_dir="")`` loads the reader shipped in ``qa/read/neural/model/``
(multilingual-e5-small fine-tuned for span extraction by ``python -m tools.reader.train``,
exported by ``tools.reader.export``: pruned vocabulary, int8 weights) or any local
transformers question-answering directory. Loading needs no network.

Two backends run the same weights (``backend=`` or ``$QA_READER_BACKEND``):
``onnx`` (the default when ``model.onnx`` and onnxruntime are there; ~0.3 s to import
and load, no torch; its matrix products in int8 on CPUs with VNNI and fp32 elsewhere,
``precision=`` or ``$QA_READER_PRECISION`` = ``auto|fp32|int8``, see
``backends.pick_precision``) and ``torch`` (transformers' ``BertForQuestionAnswering``, bf16 where the
CPU has it; what training uses). Both tokenise with the ``tokenizers`` library
directly (``PairTokenizer``: the same windows as transformers' fast tokenizer).

``read()`` takes the sentences of the top passages, ranks them by semantic
similarity to the question (sentence vectors · question vector) plus question
term coverage and passage rank, builds a few windows of consecutive sentences
around the best ones (≈ ``window_chars`` characters each, at most
``max_windows``; 256-token inputs, the length the model was trained on — 384 cost
6 EM points on DRCD dev), runs them in one batched forward pass and keeps the best
spans of each window (start ≤ end, at most ``max_answer_tokens`` tokens: the model card's
``max_answer_tokens``, else ``MAX_ANSWER_TOKENS`` = 64, room for the 40–100-character clause
that answers 「有哪些措施」; 30 cut every answer over ~45 characters).
Token offsets map back to document offsets, so ``Candidate.text ==
document.text[start:end]``. ``score = sigmoid((span_logit − null_logit) / 2)``
where the null logit is the window's ``<s>`` (no-answer) start+end logit;
``threshold`` (0.86, stored in the model's ``qa-reader.json``) was calibrated on
300 DRCD dev questions + 300 held-out SQuAD 2.0-zh unanswerable questions
(not on the seed eval set).

``predict(question, contexts)`` is the plain reading-comprehension call (one
question, whole paragraphs, overflowing windows) used for SQuAD-style reader
evaluation.
"""
from __future__ import annotations

import bisect
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.paths import READER_MODEL_DIR
from qa.read.neural.backends import (META_FILE, OnnxSpanModel, TorchSpanModel, available_backends, pick_backend,
                                     shipped_model_present)
from qa.read.neural.spans import sigmoid, strip_span, top_spans
from qa.read.neural.tokenizer import PairTokenizer
from qa.text.chunking import split_sentences
from qa.types import Candidate, PassageHit, Question

DEFAULT_THRESHOLD = 0.5
MAX_ANSWER_TOKENS = 64


def default_reader_kind() -> str:
    """``"combined"`` when the shipped model is present and a backend can run it (onnxruntime,
    or torch + transformers); ``"typed"`` otherwise (what ``make_reader`` uses when no kind is given)."""
    return "combined" if available_backends() else "typed"


def sentence_of_tokens(offsets, sentence_starts: list[int], length: int) -> np.ndarray:
    """Which sentence (an index into ``sentence_starts``, character offsets of the window's
    text) each of ``length`` tokens belongs to, by the token's last character (a piece may
    take the line break before it); tokens past ``offsets`` (question, padding) get 0."""
    return np.array([bisect.bisect_right(sentence_starts, max(o[0], o[1] - 1)) for o in offsets]
                    + [0] * (length - len(offsets)))


@dataclass(frozen=True)
class ReadWindow:
    """Consecutive sentences of one document read together: ``[start, end)`` of the document,
    the sentence ids ``first..last`` it spans, and the rank score of its best sentence."""

    doc_id: str
    start: int
    end: int
    first: int
    last: int
    best: float

    @property
    def sentence_ids(self) -> range:
        return range(self.first, self.last + 1)


class TransformersReader:
    name = "transformers"
    threshold = DEFAULT_THRESHOLD

    def __init__(self, model_dir: str | Path = "", max_windows: int = 2, window_chars: int = 220,
                 max_answer_tokens: int | None = None, max_passages: int = 5, spans_per_window: int = 2,
                 bf16: bool | None = None, threads: int | None = None, backend: str | None = None,
                 precision: str | None = None, early_stop: bool = True):
        d = Path(model_dir) if model_dir else READER_MODEL_DIR
        if not shipped_model_present(d):
            raise ModelError(f"no reader model in {d} (expected tokenizer.json and model.onnx, or "
                             "config.json and model.safetensors)")
        self.model_dir = d
        try:
            self.meta = json.loads((d / META_FILE).read_text(encoding="utf-8")) if (d / META_FILE).exists() else {}
        except (OSError, ValueError) as exc:
            raise ModelError(f"unreadable {d / META_FILE}: {exc}") from exc
        if "threshold" in self.meta:
            self.threshold = float(self.meta["threshold"])
        self.backend = pick_backend(d, backend)
        self.tok = PairTokenizer(d / "tokenizer.json")
        self.model = OnnxSpanModel(d, threads, precision) if self.backend == "onnx" \
            else TorchSpanModel(d, bf16, threads)
        self.max_windows, self.window_chars = max_windows, window_chars
        self.max_answer_tokens = int(max_answer_tokens or self.meta.get("max_answer_tokens", MAX_ANSWER_TOKENS))
        self.max_passages = max_passages
        self.spans_per_window = spans_per_window
        # read the best window alone first and stop when it answers by the reader's own calibrated
        # threshold (README, "Reading fewer tokens"); None reads every window in one pass
        self.confident_at = self.threshold if early_stop else None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ model call
    def _run(self, questions: list[str], contexts: list[str], max_len: int = 256, stride: int = 128):
        """Tokenise + forward. Returns (windows, start_logits, end_logits) as numpy float32."""
        with self._lock:
            qs = [self.tok.truncate_question(q) for q in questions]
            enc = self.tok.windows(qs, contexts, max_len, stride)
            sl, el = self.model(enc.input_ids, enc.attention_mask)
        return enc, sl, el

    # ------------------------------------------------------------------ plain RC
    def predict(self, question: str, contexts: list[str], max_len: int = 256,
                stride: int = 128) -> list[tuple[int, int, float, float]]:
        """For each context: ``(start_char, end_char, span_logit, null_logit)`` of its best span
        (over all windows of the context; the null logit is the smallest over its windows).
        The answer is ``context[start_char:end_char]``; abstain when ``span_logit - null_logit``
        is low (``score = sigmoid(diff / 2)`` vs ``threshold``)."""
        if not contexts:
            return []
        enc, sl, el = self._run([question] * len(contexts), list(contexts), max_len, stride)
        return self.best_spans(contexts, enc, sl, el)

    def best_spans(self, contexts: list[str], enc, sl, el,
                   max_answer_tokens: int | None = None) -> list[tuple[int, int, float, float]]:
        """``predict``'s decoding of one forward pass (``_run``'s output), with the span cap
        ``max_answer_tokens`` (default: the reader's own). As in ``read``, a span stays inside one
        sentence (``split_sentences``, the index's splitter): on the first 1,000 questions of each
        validation set, gold paragraph, EM DRCD 62.9 → 63.3, security news 51.4 → 51.6,
        DuReader-robust 33.4 → 34.4, CAIL 62.5 → 62.4 (F1 80.4 → 80.5)."""
        cap = max_answer_tokens or self.max_answer_tokens
        best: dict[int, list] = {}
        sentence_starts = {ci: [a for a, _ in split_sentences(contexts[ci])] for ci in set(enc.sample)}
        for i, ci in enumerate(enc.sample):
            ctx = enc.context_mask(i)
            offs = enc.offsets[i]
            spans = top_spans(sl[i], el[i], ctx, cap, 1, sentence_of_tokens(offs, sentence_starts[ci], len(ctx)))
            null = float(sl[i][0] + el[i][0])
            cur = best.setdefault(ci, [(-math.inf, 0, 0), math.inf])
            if spans and spans[0][0] > cur[0][0]:
                sc, s, e = spans[0]
                cur[0] = (sc, offs[s][0], offs[e][1])
            cur[1] = min(cur[1], null)
        out = []
        for ci, ctx_text in enumerate(contexts):
            (sc, s, e), null = best.get(ci, [(-math.inf, 0, 0), math.inf])
            s2, e2 = strip_span(ctx_text, s, e)
            if e2 > s2:
                s, e = s2, e2
            out.append((int(s), int(e), float(sc), float(null)))
        return out

    def score_of(self, span_logit: float, null_logit: float) -> float:
        return sigmoid((span_logit - null_logit) / 2.0)

    # ------------------------------------------------------------------ pipeline reader
    def windows(self, question: Question, hits: list[PassageHit], index) -> list[ReadWindow]:
        """Windows of consecutive sentences around the best-ranked sentences of the top passages
        (``hit.sentence_ids`` / ``hit.sentence_similarity``, set by the pipeline)."""
        hit_of: dict[int, PassageHit] = {}
        sem_of: dict[int, float] = {}
        for hit in hits[: self.max_passages]:
            for sid, sim in zip(hit.sentence_ids, hit.sentence_similarity):
                if sid not in hit_of:
                    hit_of[sid], sem_of[sid] = hit, float(sim)
        if not hit_of:
            return []
        bigrams = question.bigrams or []
        rank_score = {}
        for sid in hit_of:
            sent = index.sentences[sid]
            text = index.normalized_span(sent.doc_id, sent)
            cov = sum(1 for b in bigrams if b in text) / max(len(bigrams), 1)
            rank_score[sid] = sem_of[sid] + 0.1 * cov - 0.01 * hit_of[sid].rank
        covered: set[int] = set()
        out: list[ReadWindow] = []
        for sid in sorted(hit_of, key=lambda s: -rank_score[s]):
            if len(out) >= self.max_windows:
                break
            if sid in covered:
                continue
            doc_id = index.sentences[sid].doc_id
            lo = hi = sid

            def length(a, b):
                return index.sentences[b].end - index.sentences[a].start

            grow = True
            while grow:
                grow = False
                for cand in (lo - 1, hi + 1):   # previous sentence first, then the next
                    if cand in hit_of and cand not in covered and index.sentences[cand].doc_id == doc_id:
                        a, b = min(lo, cand), max(hi, cand)
                        if length(a, b) <= self.window_chars:
                            lo, hi = a, b
                            grow = True
            covered.update(range(lo, hi + 1))
            out.append(ReadWindow(doc_id, index.sentences[lo].start, index.sentences[hi].end, lo, hi, rank_score[sid]))
        return out

    def read(self, question: Question, hits: list[PassageHit], index) -> list[Candidate]:
        """The best spans of the best windows. With ``early_stop`` (the default) the best window is
        read first and the others only when none of its spans reaches the reader's threshold
        (``confident_at``): a question the best window answers costs one window's tokens instead
        of ``max_windows``'. Measured over the same retrieval: seed set answerable EM 62.7 → 64.2,
        DRCD dev open 64.0 → 64.0–64.3, with 1.4 and 1.1 windows read a question instead of 2."""
        wins = self.windows(question, hits, index)
        if not wins:
            return []
        best: dict[tuple, Candidate] = {}
        batches = [wins[:1], wins[1:]] if self.confident_at is not None else [wins]
        for batch in batches:
            if not batch:
                continue
            if best and max(c.score for c in best.values()) >= self.confident_at:
                break
            self._read_windows(question, batch, hits, index, best)
        return sorted(best.values(), key=lambda c: (-c.score, c.end - c.start))

    def _read_windows(self, question: Question, wins: list[ReadWindow], hits: list[PassageHit], index,
                      best: dict[tuple, Candidate]) -> None:
        """One batched forward pass over ``wins``; their spans join ``best`` (by document span)."""
        texts = [index.documents[w.doc_id].text[w.start:w.end] for w in wins]
        enc, sl, el = self._run([question.text] * len(wins), texts)
        for i, wi in enumerate(enc.sample):
            w = wins[wi]
            doc_text = index.documents[w.doc_id].text
            ctx = enc.context_mask(i)
            null = float(sl[i][0] + el[i][0])
            offs = enc.offsets[i]
            # a span never crosses a sentence boundary the index drew
            starts = [index.sentences[x].start - w.start for x in w.sentence_ids]
            segments = sentence_of_tokens(offs, starts, len(ctx))
            for sc, s, e in top_spans(sl[i], el[i], ctx, self.max_answer_tokens, self.spans_per_window, segments):
                ds, de = strip_span(doc_text, w.start + offs[s][0], w.start + offs[e][1])
                if de <= ds:
                    continue
                sids = list(w.sentence_ids)
                sents = [index.sentences[x] for x in sids]
                first = next((x for x in sents if x.end > ds), sents[-1])
                last = next((x for x in reversed(sents) if x.start < de), sents[0])
                sid_first = sids[sents.index(first)]
                score = self.score_of(sc, null)
                key = (w.doc_id, ds, de)
                if key in best and best[key].score >= score:
                    continue
                best[key] = Candidate(doc_id=w.doc_id, start=ds, end=de, text=doc_text[ds:de], score=score,
                                      kind="neural", sentence_start=first.start,
                                      sentence_end=max(last.end, first.end),
                                      passage=self._hit_for(hits, w.doc_id, ds, sid_first, index),
                                      features={"span_logit": sc, "null_logit": null, "window_rank": w.best})

    def _hit_for(self, hits, doc_id, start, sid, index):
        for h in hits[: self.max_passages]:
            if h.chunk.doc_id == doc_id and h.chunk.start <= start < h.chunk.end:
                return h
        for h in hits[: self.max_passages]:
            if h.chunk.doc_id == doc_id:
                return h
        return None
