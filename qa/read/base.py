"""The reader interface: every reader returns scored candidate spans.

``reader.read(question, hits, index) -> list[Candidate]``, best first, with
``Candidate.score`` in [0, 1] comparable to the pipeline's abstain threshold
(``reader.threshold``). ``question`` is the one :class:`~qa.types.Question` of this
question (its vector and term weights included); each hit carries its sentences and
their similarity to the question; ``index`` gives document and normalised text.
"""
from __future__ import annotations

import os
from typing import Protocol

from qa.errors import UsageError
from qa.types import Candidate, PassageHit, Question

READERS = ("typed", "transformers", "combined", "decision")


class Reader(Protocol):
    name: str
    threshold: float

    def read(self, question: Question, hits: list[PassageHit], index) -> list[Candidate]: ...


def make_reader(kind: str | None = None, model_dir: str | None = None) -> Reader:
    """``combined`` (default when the shipped model and a backend to run it are there: the
    trained neural reader checked by the typed-span reader), ``typed`` (default otherwise),
    ``transformers`` (the neural reader alone, or any local QA model directory), or ``decision``
    (both readers' spans pooled and ranked by the learned answer decision, ``qa/decide``)."""
    from qa.read.neural.reader import default_reader_kind   # imports no torch
    kind = kind or os.environ.get("QA_READER") or default_reader_kind()
    if kind == "typed":
        from qa.read.typed_span import TypedSpanReader
        return TypedSpanReader()
    if kind == "combined":
        from qa.read.combined import CombinedReader
        return CombinedReader(model_dir or os.environ.get("QA_READER_MODEL", ""))
    if kind == "decision":
        from qa.read.decided import DecidedReader
        return DecidedReader(model_dir or os.environ.get("QA_READER_MODEL", ""))
    if kind == "transformers":
        from qa.read.neural.reader import TransformersReader
        return TransformersReader(model_dir or os.environ.get("QA_READER_MODEL", ""))
    raise UsageError(f"unknown reader {kind!r}; choose one of: {', '.join(READERS)}")
