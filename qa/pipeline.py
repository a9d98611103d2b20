"""The thin pipeline: question → encode → retrieve → read → answer with citations.

``Pipeline.load()`` opens an index (the seeds by default) once; ``answer()``
is then cheap and thread-safe.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
import unicodedata
from pathlib import Path

from embeddings.encoders import DEFAULT_ENCODER, get_encoder
from embeddings.store import IndexData, corpus_fingerprint, recover_orphan
from qa.chunking import ChunkSpec
from qa.errors import IndexError_, UsageError
from qa.indexing import check_fresh, index_documents
from qa.ingest.seeds import load_seeds
from qa.normalize import in_script
from qa.read.base import make_reader
from qa.read.question import analyze_question
from qa.retrieve import BM25Retriever, DenseRetriever, make_retriever
from qa.types import Answer, Candidate, Citation

MAX_QUESTION_CHARS = 1000
PREBUILT_SEEDS_INDEX = Path(__file__).resolve().parents[1] / "embeddings" / "prebuilt" / "seeds"
NOT_FOUND = {"simplified": "文档中没有找到这个问题的答案。", "traditional": "文件中沒有找到這個問題的答案。"}


def qa_home() -> Path:
    return Path(os.environ.get("QA_HOME", Path.home() / ".cache" / "qa-zh"))


def default_index_dir() -> Path:
    """Where the default collection (the seeds, plus what ``qa index PATH`` adds) lives."""
    return Path(os.environ.get("QA_INDEX", qa_home() / "index"))


def clean_question(question) -> str:
    """Validate a question: a non-empty string of at most ``MAX_QUESTION_CHARS``.

    Control characters and lone surrogates become spaces; surrounding space is
    dropped. Raises :class:`UsageError` with a message in Chinese and English.
    """
    if not isinstance(question, str):
        raise UsageError("问题必须是文本 (question must be a string)")
    question = question.encode("utf-8", "replace").decode("utf-8", "replace") if re.search(
        r"[\ud800-\udfff]", question) else question
    question = "".join(" " if unicodedata.category(c) in ("Cc", "Cs", "Co") else c for c in question).strip()
    if not question:
        raise UsageError("问题为空，请输入一个问题 (empty question)")
    if len(question) > MAX_QUESTION_CHARS:
        raise UsageError(f"问题太长：{len(question)} 个字符，上限 {MAX_QUESTION_CHARS} "
                         f"(question too long: {len(question)} characters, limit {MAX_QUESTION_CHARS})")
    return question


def _overlaps(a: Candidate, b: Candidate) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


class Pipeline:
    """Encoder + index + retriever + reader, loaded once."""

    def __init__(self, index: IndexData, encoder, retriever: str = "hybrid", reader=None,
                 index_dir: Path | None = None):
        self.index, self.encoder, self.index_dir = index, encoder, index_dir
        self.bm25 = BM25Retriever(index.chunks)
        self.dense = DenseRetriever(index.chunks, index.chunk_index, encoder)
        self.retriever = make_retriever(retriever, self.bm25, self.dense)
        self.reader = reader or make_reader()

    @classmethod
    def load(cls, index_dir: str | Path | None = None, encoder: str | None = None,
             retriever: str = "hybrid", reader=None, spec: ChunkSpec = ChunkSpec()) -> "Pipeline":
        """Open ``index_dir``, or the default collection (built from the seeds if needed)."""
        enc = get_encoder(encoder or DEFAULT_ENCODER)
        if index_dir is not None:
            index_dir = Path(index_dir)
            data = check_fresh(index_dir, enc, spec)
        else:
            index_dir, data = open_default_index(enc, spec)
        return cls(data, enc, retriever, reader, index_dir)

    def retrieve(self, question: str, top_k: int = 5, question_vector=None):
        question = clean_question(question)
        if question_vector is None:
            question_vector = self.encoder.encode_queries([question])[0]
        return self.retriever.retrieve(question, top_k, question_vector)

    def answer(self, question: str, top_k: int = 5, max_alternatives: int = 3, abstain: bool = True) -> Answer:
        """Retrieve ``top_k`` passages and read them. ``abstain=False`` always
        returns the best span (used to score readers on sets with no unanswerable questions)."""
        t0 = time.perf_counter()
        question = clean_question(question)
        qvec = self.encoder.encode_queries([question])[0]
        t1 = time.perf_counter()
        hits = self.retriever.retrieve(question, top_k, qvec)
        t2 = time.perf_counter()
        result = self.read(question, hits, qvec, max_alternatives, abstain)
        result.timings = {"encode_ms": (t1 - t0) * 1e3, "search_ms": (t2 - t1) * 1e3,
                          "read_ms": result.timings["read_ms"], "total_ms": (time.perf_counter() - t0) * 1e3}
        return result

    def read(self, question: str, hits, question_vector, max_alternatives: int = 3,
             abstain: bool = True) -> Answer:
        """The reader stage alone: the answer found in ``hits``."""
        t0 = time.perf_counter()
        info = analyze_question(question)
        candidates = self.reader.read(info, hits, self.index, question_vector, idf=self.bm25.idf)
        chosen: list[Candidate] = []
        for c in candidates:
            if len(chosen) > max_alternatives:
                break
            if any(_overlaps(c, o) or c.text == o.text for o in chosen):
                continue
            chosen.append(c)
        threshold = self.reader.threshold if abstain else float("-inf")
        answers = [self._to_answer(question, info, c) for c in chosen]
        if not answers or chosen[0].score < threshold:
            best = chosen[0].score if chosen else 0.0
            result = Answer(question=question, text=NOT_FOUND[info.script], score=best, no_answer=True,
                            alternatives=answers[:2], kind=info.kind)
        else:
            best_score = chosen[0].score
            alts = [a for a, c in zip(answers[1:], chosen[1:])
                    if c.score >= max(threshold, best_score - 0.15)]
            result = answers[0]
            result.alternatives = alts
        result.timings = {"read_ms": (time.perf_counter() - t0) * 1e3}
        return result

    def citation(self, c: Candidate) -> Citation:
        doc = self.index.documents[c.doc_id]
        quote = doc.text[c.start:c.end]
        return Citation(doc_id=doc.doc_id, title=doc.title, start=c.start, end=c.end, quote=quote,
                        sentence=doc.text[c.sentence_start:c.sentence_end], sentence_start=c.sentence_start,
                        sentence_end=c.sentence_end,
                        passage_start=c.passage.chunk.start if c.passage else c.sentence_start,
                        passage_end=c.passage.chunk.end if c.passage else c.sentence_end,
                        source=doc.source, date=doc.date)

    def _to_answer(self, question: str, info, c: Candidate) -> Answer:
        cit = self.citation(c)
        return Answer(question=question, text=in_script(cit.quote, info.script), score=c.score,
                      no_answer=False, citations=[cit], kind=c.kind)


def open_default_index(encoder, spec: ChunkSpec) -> tuple[Path, IndexData]:
    """The default collection: the user's default index if it exists, else the
    prebuilt seeds index shipped with the project, else build it from the seeds."""
    index_dir = default_index_dir()
    recover_orphan(index_dir)   # a writer killed between its renames left the collection aside
    if (index_dir / "manifest.json").exists():
        return index_dir, check_fresh(index_dir, encoder, spec)
    seeds = load_seeds()
    try:
        data = check_fresh(PREBUILT_SEEDS_INDEX, encoder, spec)
        if data.manifest.get("fingerprint") == corpus_fingerprint(seeds):
            return PREBUILT_SEEDS_INDEX, data
    except IndexError_:
        pass
    print(f"building the seeds index at {index_dir} (first run) …", file=sys.stderr)
    index_documents(seeds, index_dir, encoder, spec, seed_caches=[PREBUILT_SEEDS_INDEX / "cache"],
                    extra_manifest={"sources": ["<seeds>"]})
    return index_dir, check_fresh(index_dir, encoder, spec)


_PIPELINES: dict[tuple, Pipeline] = {}
_LOCK = threading.Lock()


def get_pipeline(index: str | Path | None = None, encoder: str | None = None, retriever: str = "hybrid",
                 reader: str | None = None) -> Pipeline:
    """A process-wide pipeline per configuration, loaded on first use and reloaded
    when its index changed on disk (``qa index`` in another process, an upload)."""
    key = (str(index) if index else None, encoder, retriever, reader)
    with _LOCK:
        pipe = _PIPELINES.get(key)
        if pipe is None:
            pipe = _PIPELINES[key] = Pipeline.load(index, encoder, retriever,
                                                   make_reader(reader) if reader else None)
            pipe.stamp = _stamp_of(index, pipe)
            return pipe
    if _stamp_of(index, pipe) != getattr(pipe, "stamp", None):
        refresh_pipeline(index)
        pipe = _PIPELINES[key]
        pipe.stamp = _stamp_of(index, pipe)
    return pipe


def _stamp_of(index, pipe) -> tuple:
    # the default collection may move from the prebuilt seeds index to the user's own
    return _manifest_stamp(pipe.index_dir), (_manifest_stamp(default_index_dir()) if index is None else None)


def _manifest_stamp(index_dir) -> tuple | None:
    """(mtime, size) of an index's manifest: changes whenever the index is rewritten."""
    try:
        st = (Path(index_dir) / "manifest.json").stat()
        return st.st_mtime_ns, st.st_size, st.st_ino
    except (OSError, TypeError):
        return None


def refresh_pipeline(index: str | Path | None = None) -> Pipeline | None:
    """Reload from disk every cached pipeline of ``index`` (None: the default collection),
    after ``qa index`` or an upload changed it. The encoder is kept; the reader is made
    anew (the typed reader caches document text by doc_id, stale once a document changed).
    Returns the refreshed pipeline of the default configuration (hybrid, default
    reader), else any refreshed one, else None when none was cached."""
    name = str(index) if index else None
    refreshed = None
    with _LOCK:
        for key, old in list(_PIPELINES.items()):
            if key[0] != name:
                continue
            if index is None:
                index_dir, data = open_default_index(old.encoder, ChunkSpec())
            else:
                index_dir, data = Path(index), check_fresh(Path(index), old.encoder, ChunkSpec())
            new = Pipeline(data, old.encoder, key[2], make_reader(key[3]) if key[3] else None, index_dir)
            new.stamp = _stamp_of(index, new)
            _PIPELINES[key] = new
            if refreshed is None or (key[1] is None and key[2] == "hybrid" and key[3] is None):
                refreshed = new
    return refreshed


def answer(question: str, index: str | Path | None = None, top_k: int = 5, retriever: str = "hybrid",
           reader: str | None = None, encoder: str | None = None) -> Answer:
    """Answer ``question`` from the documents of ``index`` (default: the seeds).

    Returns an :class:`Answer`: ``text`` in the question's script, ``citations``
    quoting the source exactly, ``no_answer`` when the documents do not say.
    Raises :class:`qa.errors.UsageError` for an empty or over-long question.
    """
    return get_pipeline(index, encoder, retriever, reader).answer(question, top_k=top_k)
