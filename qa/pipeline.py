"""The thin pipeline: question → encode → retrieve → read → answer with citations.

``Pipeline.load()`` opens an index (the default collection unless told another)
once; ``answer()`` is then cheap and thread-safe. Every caller — ``qa.answer``, the
command line, the page, the evaluation, the benchmark — goes through ``run()``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from embeddings.encoders import DEFAULT_ENCODER, get_encoder
from qa.index.build import check_fresh
from qa.index.collection import open_default_index
from qa.index.store import IndexData
from qa.ingest.layout import place
from qa.question import make_question
from qa.read.base import make_reader
from qa.retrieve import BM25Retriever, DenseRetriever, make_retriever
from qa.text.chunking import ChunkSpec, table_row
from qa.text.normalize import in_script
from qa.types import Answer, Candidate, Citation, PassageHit, Question

NOT_FOUND = {"simplified": "文档中没有找到这个问题的答案。", "traditional": "文件中沒有找到這個問題的答案。"}
# other candidates are offered as alternatives while their confidence is within this of the answer's
ALTERNATIVE_MARGIN = 0.15


@dataclass
class Reading:
    """One question through the pipeline: the question as analysed, the passages retrieved
    (each with its sentences scored against the question) and the answer."""

    question: Question
    hits: list[PassageHit]
    answer: Answer


class Pipeline:
    """Encoder + index + retriever + reader, loaded once."""

    def __init__(self, index: IndexData, encoder, retriever: str = "hybrid", reader=None,
                 index_dir: Path | None = None, store=None):
        """``store``: a ``qa.index.stores`` store (Milvus) that ``index`` was loaded from; then
        retrieval runs in the store (the in-memory BM25 still gives the question's term weights)."""
        self.index, self.encoder, self.index_dir, self.store = index, encoder, index_dir, store
        self.bm25 = BM25Retriever(index)
        self.dense = DenseRetriever(index.chunks, index.chunk_index)
        self.retriever = (store.retriever(retriever, index) if store is not None
                          else make_retriever(retriever, self.bm25, self.dense))
        self.reader = reader or make_reader()

    @classmethod
    def load(cls, index_dir: str | Path | None = None, encoder: str | None = None,
             retriever: str = "hybrid", reader=None, spec: ChunkSpec = ChunkSpec(),
             store: str | None = None) -> "Pipeline":
        """Open ``index_dir``, or the default collection (built from the seeds if needed), or
        the collection of ``store`` (``--store``: ``milvus://HOST:PORT/NAME``, ``milvus-lite:PATH.db#NAME``)."""
        enc = get_encoder(encoder or DEFAULT_ENCODER)
        if store is not None:
            from qa.index.backends import open_store
            opened = open_store(store)
            if opened is not None:
                return cls(opened.load(enc, spec), enc, retriever, reader, None, store=opened)
        if index_dir is not None:
            index_dir = Path(index_dir)
            data = check_fresh(index_dir, enc, spec)
        else:
            index_dir, data = open_default_index(enc, spec)
        return cls(data, enc, retriever, reader, index_dir)

    def question(self, question: Question | str) -> Question:
        """The question validated and analysed once (text), with its vector and its terms' BM25
        weights in this collection added where missing (a :class:`Question` is completed in place)."""
        q = question if isinstance(question, Question) else make_question(question)
        if q.vector is None:
            q.vector = self.encoder.encode_queries([q.text])[0]
        if q.bigrams and not q.idf:
            q.idf = {b: self.bm25.idf(b) for b in q.bigrams}
        return q

    def retrieve(self, question: Question | str, top_k: int = 5) -> list[PassageHit]:
        return self.retriever.retrieve(self.question(question), top_k)

    def run(self, question: Question | str, top_k: int = 5, max_alternatives: int = 3, abstain: bool = True,
            passages=None, min_confidence: float | None = None) -> Reading:
        """Answer ``question`` from the ``top_k`` best passages. ``passages(question)``, when
        given, replaces retrieval (the evaluation's reader mode hands the gold paragraph);
        ``abstain=False`` always returns the best span; ``min_confidence`` replaces the reader's
        answer threshold (see :meth:`read`)."""
        t0 = time.perf_counter()
        q = self.question(question)
        t1 = time.perf_counter()
        hits = passages(q) if passages is not None else self.retriever.retrieve(q, top_k)
        t2 = time.perf_counter()
        a = self.read(q, hits, max_alternatives, abstain, min_confidence)
        t3 = time.perf_counter()
        a.timings = {"encode_ms": (t1 - t0) * 1e3, "search_ms": (t2 - t1) * 1e3, "read_ms": (t3 - t2) * 1e3,
                     "total_ms": (t3 - t0) * 1e3}
        return Reading(q, hits, a)

    def answer(self, question: Question | str, top_k: int = 5, max_alternatives: int = 3,
               abstain: bool = True, min_confidence: float | None = None) -> Answer:
        """The answer to ``question`` (see :meth:`run`)."""
        return self.run(question, top_k, max_alternatives, abstain, min_confidence=min_confidence).answer

    def thresholds(self, min_confidence: float | None = None) -> tuple[float, float]:
        """``(answer, probable)``: the best candidate's score at or above the first is an answer,
        at or above the second 「可能是…」, below it "not found". The first is the reader's
        ``answer_threshold`` (else its ``threshold``), and ``min_confidence`` replaces it; the second
        is the reader's ``probable_threshold`` (its answer threshold for readers without one)."""
        default = getattr(self.reader, "answer_threshold", self.reader.threshold)
        answer_at = default if min_confidence is None else float(min_confidence)
        probable_at = getattr(self.reader, "probable_threshold", answer_at)
        return answer_at, min(probable_at, answer_at)

    def read(self, question: Question, hits: list[PassageHit], max_alternatives: int = 3,
             abstain: bool = True, min_confidence: float | None = None) -> Answer:
        """The reader stage alone: the answer found in ``hits``, in one of three states
        (``Answer.state``): ``answer``, ``probable`` or ``not_found`` — which still names the
        nearest candidates, with their citations, as alternatives."""
        score_sentences(self.index, question, hits)
        candidates = self.reader.read(question, hits, self.index)
        chosen: list[Candidate] = []
        for c in candidates:
            if len(chosen) > max_alternatives:
                break
            if any(c.span.overlaps(o.span) or c.text == o.text for o in chosen):
                continue
            chosen.append(c)
        answer_at, probable_at = self.thresholds(min_confidence) if abstain else (float("-inf"),) * 2
        answers = [self._to_answer(question, c) for c in chosen]
        if not answers or chosen[0].score < probable_at:
            best = chosen[0].score if chosen else 0.0
            return Answer(question=question.text, text=NOT_FOUND[question.script], score=best, no_answer=True,
                          alternatives=answers[:2], kind=question.kind, script=question.script, state="not_found")
        best_score = chosen[0].score
        result = answers[0]
        result.state = "answer" if best_score >= answer_at else "probable"
        result.alternatives = [a for a, c in zip(answers[1:], chosen[1:])
                               if c.score >= max(probable_at, best_score - ALTERNATIVE_MARGIN)]
        return result

    def citation(self, c: Candidate) -> Citation:
        """Where ``c`` stands: document, characters, sentence, passage, and for a scan or PDF
        the page (and the quote's box on it)."""
        doc = self.index.documents[c.doc_id]
        s0, s1 = table_row(doc.text, c.sentence_start, c.sentence_end)   # a table cell: its whole row
        return place(Citation(doc_id=doc.doc_id, title=doc.title, start=c.start, end=c.end, quote=doc.text[c.start:c.end],
                        sentence=doc.text[s0:s1], sentence_start=s0, sentence_end=s1,
                        passage_start=c.passage.chunk.start if c.passage else c.sentence_start,
                        passage_end=c.passage.chunk.end if c.passage else c.sentence_end,
                        source=doc.source, date=doc.date), doc)

    def _to_answer(self, question: Question, c: Candidate) -> Answer:
        cit = self.citation(c)
        return Answer(question=question.text, text=in_script(cit.quote, question.script), score=c.score,
                      no_answer=False, citations=[cit], kind=c.kind, script=question.script)


def score_sentences(index: IndexData, question: Question, hits: list[PassageHit]) -> None:
    """Give each hit its sentence ids and their cosine similarity to the question, once for
    both readers (``hit.sentence_ids``, ``hit.sentence_similarity``)."""
    import numpy as np
    for hit in hits:
        if hit.sentence_ids is not None:
            continue
        hit.sentence_ids = index.sentences_in(hit.chunk)
        if question.vector is not None and hit.sentence_ids:
            hit.sentence_similarity = np.asarray(index.sentence_vectors[hit.sentence_ids] @ question.vector,
                                                 dtype=np.float32)
        else:
            hit.sentence_similarity = np.zeros(len(hit.sentence_ids), dtype=np.float32)
