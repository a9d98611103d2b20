"""The public entry points: ``answer()`` and a process-wide pipeline per configuration.

A pipeline is loaded on first use and reloaded when its index changed on disk
(``qa index`` in another process, an upload on the page).
"""
from __future__ import annotations

import threading
from pathlib import Path

from qa.index.build import check_fresh
from qa.index.collection import open_default_index
from qa.paths import default_index_dir
from qa.pipeline import Pipeline
from qa.read.base import make_reader
from qa.text.chunking import ChunkSpec
from qa.types import Answer

_PIPELINES: dict[tuple, Pipeline] = {}
_LOCK = threading.Lock()


def get_pipeline(index: str | Path | None = None, encoder: str | None = None, retriever: str = "hybrid",
                 reader: str | None = None) -> Pipeline:
    """The cached pipeline of this configuration, reloaded if its index changed on disk."""
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
    """(mtime, size, inode) of an index's manifest: changes whenever the index is rewritten."""
    try:
        st = (Path(index_dir) / "manifest.json").stat()
        return st.st_mtime_ns, st.st_size, st.st_ino
    except (OSError, TypeError):
        return None


def refresh_pipeline(index: str | Path | None = None) -> Pipeline | None:
    """Reload from disk every cached pipeline of ``index`` (None: the default collection),
    after ``qa index`` or an upload changed it. The encoder is kept; the reader is made anew.
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
           reader: str | None = None, encoder: str | None = None, min_confidence: float | None = None) -> Answer:
    """Answer ``question`` from the documents of ``index`` (default: the seeds and what
    ``qa index`` added).

    Returns an :class:`Answer`: ``text`` in the question's script, ``citations``
    quoting the source exactly, ``score`` the reader's confidence (with ``reader="decision"`` a
    calibrated probability that it is right), and ``state``: ``"answer"``, ``"probable"`` (shown
    as 「可能是…」) or ``"not_found"`` (``no_answer``; the nearest candidates stay in
    ``alternatives``). ``min_confidence`` (0–1) is the strictness: the score an answer needs
    (default: the reader's own answer cut, 0.73 for the default reader, where an answer is as
    likely right as wrong on held-out public questions; 0.92 for the decision reader).
    Raises :class:`qa.errors.UsageError` for an empty or over-long question, or a bad
    ``top_k``, ``index``, ``retriever``, ``reader`` or ``min_confidence``.
    """
    check_options(top_k=top_k, index=index, min_confidence=min_confidence)
    return get_pipeline(index, encoder, retriever, reader).answer(question, top_k=top_k,
                                                                  min_confidence=min_confidence)


def check_options(top_k=5, index=None, min_confidence=None) -> None:
    """Options a caller can get wrong fail with a message, not a ``TypeError`` deep inside."""
    from qa.errors import UsageError
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 100:
        raise UsageError(f"top_k 必须是 1 到 100 之间的整数，收到 {top_k!r}")
    if index is not None and not isinstance(index, (str, Path)):
        raise UsageError(f"index 必须是索引目录的路径，收到 {type(index).__name__}")
    if min_confidence is not None and (isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
                                       or not 0.0 <= float(min_confidence) <= 1.0):
        raise UsageError(f"min_confidence 必须是 0 到 1 之间的数，收到 {min_confidence!r}")
