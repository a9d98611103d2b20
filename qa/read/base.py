"""The reader interface: every reader returns scored candidate spans.

``reader.read(question, hits, index, question_vector, idf) -> list[Candidate]``,
best first, with ``Candidate.score`` in [0, 1] comparable to the pipeline's
abstain threshold (``reader.threshold``).
"""
from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from qa.errors import UsageError
from qa.read.question import QuestionInfo
from qa.types import Candidate, PassageHit

READERS = ("typed", "transformers", "combined")


class Reader(Protocol):
    name: str
    threshold: float

    def read(self, question: QuestionInfo, hits: list[PassageHit], index, question_vector: np.ndarray,
             idf=None) -> list[Candidate]: ...


def make_reader(kind: str | None = None, model_dir: str | None = None) -> Reader:
    """``combined`` (default when torch and the shipped model are there: the trained
    neural reader checked by the typed-span reader), ``typed`` (default otherwise),
    or ``transformers`` (the neural reader alone, or any local QA model directory)."""
    from qa.read.transformers_reader import default_reader_kind   # imports no torch
    kind = kind or os.environ.get("QA_READER") or default_reader_kind()
    if kind == "typed":
        from qa.read.typed_span import TypedSpanReader
        return TypedSpanReader()
    if kind == "combined":
        from qa.read.combined import CombinedReader
        return CombinedReader(model_dir or os.environ.get("QA_READER_MODEL", ""))
    if kind == "transformers":
        from qa.read.transformers_reader import TransformersReader
        return TransformersReader(model_dir or os.environ.get("QA_READER_MODEL", ""))
    raise UsageError(f"unknown reader {kind!r}; choose one of: {', '.join(READERS)}")
