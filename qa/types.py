"""The few value types that flow through the pipeline.

document → chunks → passage hits → candidates → answer (with citations).
Every offset is a half-open ``[start, end)`` index into the *original* text of a
document, so ``document.text[start:end] == quote`` always holds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _box(box: Any) -> tuple[float, float, float, float] | None:
    return None if box is None else tuple(float(v) for v in box)   # JSON gives a list


@dataclass(frozen=True)
class LayoutSpan:
    """Where ``[start, end)`` of a document's text stands on its page: ``page`` counts from 1;
    ``box`` is ``(x0, y0, x1, y1)`` as fractions (0–1) of the page's width and height, origin
    at the top left, or None where only the page is known (a PDF's text layer)."""

    start: int
    end: int
    page: int
    box: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "page": self.page,
                "box": list(self.box) if self.box is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LayoutSpan":
        return cls(start=int(d["start"]), end=int(d["end"]), page=int(d["page"]), box=_box(d.get("box")))


@dataclass(frozen=True)
class Document:
    """One source document, its text kept exactly as read.

    ``layout`` (PDFs and images only; empty for every other document) places the text on
    pages: :class:`LayoutSpan` ranges in text order, one per OCR line (with its box) or per
    page of a text layer; ``qa.ingest.layout.locate`` turns a citation's offsets into a page
    and a box."""

    doc_id: str
    title: str
    text: str
    source: str = ""          # path or URL it came from
    date: str | None = None   # ISO date where known
    script: str = "simplified"  # "simplified" | "traditional"
    mtime: float | None = None
    layout: tuple[LayoutSpan, ...] = field(default=(), repr=False, hash=False)

    def to_dict(self, with_text: bool = True) -> dict[str, Any]:
        """JSON-ready; ``layout`` only when there is one (so other documents' dicts are as
        they always were)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "layout"}
        if not with_text:
            d.pop("text")
        if self.layout:
            d["layout"] = [s.to_dict() for s in self.layout]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Document":
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "layout" in kw:
            kw["layout"] = tuple(s if isinstance(s, LayoutSpan) else LayoutSpan.from_dict(s)
                                 for s in (kw["layout"] or ()))
        return cls(**kw)


@dataclass(frozen=True)
class Span:
    """A half-open ``[start, end)`` range of one document's text."""

    doc_id: str
    start: int
    end: int

    def overlaps(self, other: "Span") -> bool:
        """Whether the two ranges share at least one character of the same document."""
        return self.doc_id == other.doc_id and self.start < other.end and other.start < self.end

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Sentence(Span):
    """A sentence of a document, as the index split it."""


@dataclass(frozen=True)
class Chunk:
    """A retrieval unit: consecutive sentences of one document, ``[start, end)``."""

    chunk_id: int
    doc_id: str
    start: int
    end: int
    text: str                 # original text, == document.text[start:end]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        return cls(**d)


@dataclass
class Question:
    """A question, made once per question (``qa.question.make_question``) and read by every
    stage: retrieval uses ``normalized`` and ``vector``, the readers what it asks for."""

    text: str                 # as asked, validated
    normalized: str           # normalize(text): simplified, half-width, lower-case; same length
    kind: str                 # what it asks for: amount, count, date, person, … (qa.question)
    script: str               # "simplified" | "traditional": the answer is written in it
    terms: list[str] = field(default_factory=list)      # content pieces of the question
    bigrams: list[str] = field(default_factory=list)    # their character bigrams (and ASCII words)
    years: list[str] = field(default_factory=list)      # four-digit years it names
    unit: str = ""                                      # measure word after 多少/几, if any
    plural: bool = False                                # asks for several values (分别, 各)
    focus: list[str] = field(default_factory=list)      # bigrams of the words just before the wh-word
    dimension: str = ""                                 # what its head noun measures: money, people, area, ratio, …
    figure: str = ""                                    # the figure it asks for: year, duration, number, or ""
    places: list[str] = field(default_factory=list)     # places it names (宁海 for 宁海县), without the suffix
    vector: Any = field(default=None, repr=False)       # the query embedding (numpy, unit length)
    idf: dict[str, float] = field(default_factory=dict, repr=False)  # BM25 idf of each bigram here


@dataclass
class PassageHit:
    """A chunk returned by a retriever with its score and rank (0 = best)."""

    chunk: Chunk
    score: float
    rank: int
    dense_score: float | None = None
    sparse_score: float | None = None
    sentence_ids: list[int] | None = None    # the index's sentences in this chunk (set before reading)
    sentence_similarity: Any = None          # their cosine similarity to the question (numpy float32)


@dataclass
class Candidate:
    """A span proposed by a reader, before it becomes an answer."""

    doc_id: str
    start: int
    end: int
    text: str                 # original text of the span
    score: float
    kind: str = ""            # answer type it was extracted as (amount, date, …)
    sentence_start: int = 0
    sentence_end: int = 0
    passage: PassageHit | None = None
    features: dict[str, float] = field(default_factory=dict)

    @property
    def span(self) -> Span:
        return Span(self.doc_id, self.start, self.end)


@dataclass(frozen=True)
class Citation:
    """Where an answer stands in a document; ``quote == text[start:end]``."""

    doc_id: str
    title: str
    start: int
    end: int
    quote: str
    sentence: str
    sentence_start: int
    sentence_end: int
    passage_start: int
    passage_end: int
    source: str = ""
    date: str | None = None
    page: int | None = None   # page of a PDF or image the quote stands on (from 1)
    box: tuple[float, float, float, float] | None = None   # the quote's box there (LayoutSpan.box)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = list(self.box) if self.box is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Citation":
        d = dict(d)
        if d.get("box") is not None:
            d["box"] = _box(d["box"])
        return cls(**d)


@dataclass
class Answer:
    """What ``answer()`` returns.

    ``text`` is the answer in the question's script (the cited ``quote`` keeps
    the source's script); for ``no_answer`` it is a sentence saying the
    documents do not contain the answer.
    """

    question: str
    text: str
    score: float
    no_answer: bool
    citations: list[Citation] = field(default_factory=list)
    alternatives: list["Answer"] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)   # milliseconds per stage
    kind: str = ""
    script: str = "simplified"   # the question's script, which ``text`` is written in
    state: str = ""              # "answer" | "probable" (可能是…) | "not_found" (qa.decide.STATES)

    def __post_init__(self) -> None:
        if not self.state:
            self.state = "not_found" if self.no_answer else "answer"

    def __str__(self) -> str:
        """One line: the answer and where it stands, or that the documents do not say."""
        if self.no_answer:
            return self.text
        c = self.citations[0] if self.citations else None
        where = f"  《{c.title}》 {c.doc_id} [{c.start}, {c.end})" if c else ""
        hedge = "可能是：" if self.state == "probable" else ""
        return f"{hedge}{self.text}  ({self.score:.2f}){where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "score": round(float(self.score), 4),
            "no_answer": self.no_answer,
            "state": self.state,
            "kind": self.kind,
            "script": self.script,
            "citations": [c.to_dict() for c in self.citations],
            "alternatives": [a.to_dict() for a in self.alternatives],
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        return cls(
            question=d["question"], text=d["text"], score=d["score"],
            no_answer=d["no_answer"], kind=d.get("kind", ""), script=d.get("script", "simplified"),
            state=d.get("state", ""),
            citations=[Citation.from_dict(c) for c in d.get("citations", [])],
            alternatives=[Answer.from_dict(a) for a in d.get("alternatives", [])],
            timings=d.get("timings", {}),
        )
