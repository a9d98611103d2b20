"""The on-disk index of a collection: documents, chunks, sentences, their vectors, a manifest.

Layout of an index directory (no pickle anywhere; JSON, .npy and FAISS files):

    manifest.json        format version, encoder id/dim, chunking, fingerprint, counts
    documents.json       every document with its text (offsets refer to it)
    chunks.json          chunk spans; sentences.json  sentence spans
    chunks.faiss         FAISS index over chunk vectors (inner product)
    sentences.npy        sentence vectors (float16), for the reader
    cache/keys.json + cache/vectors.npy   embedding cache by content hash

Writes are atomic: a complete new directory is written beside the old one and
swapped in with ``os.replace``; a lock file serialises concurrent writers.
"""
from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from embeddings.vectors import content_hash
from qa.errors import IndexError_
from qa.text.normalize import normalize
from qa.types import Chunk, Document, Sentence

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = ("manifest.json", "documents.json", "chunks.json", "sentences.json", "chunks.faiss", "sentences.npy")
def corpus_fingerprint(documents: list[Document]) -> str:
    h = hashlib.sha1()
    for d in sorted(documents, key=lambda d: d.doc_id):
        h.update(d.doc_id.encode("utf-8", "surrogatepass") + b"\0" + content_hash(d.text).encode() + b"\0")
    return h.hexdigest()


@dataclass
class IndexData:
    """Everything an index directory holds, in memory, plus what every question needs of it
    computed once at load: each document's normalised text (same length as the text, so
    offsets carry over; shared by BM25 and both readers) and each document's sentence ids."""

    manifest: dict
    documents: dict[str, Document]
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_index: faiss.Index
    sentence_vectors: np.ndarray          # (n_sentences, dim) float32
    doc_sentences: dict[str, list[int]] = field(default_factory=dict)  # doc_id → sentence ids in order
    normalized: dict[str, str] = field(default_factory=dict)           # doc_id → normalize(document.text)

    def __post_init__(self):
        if not self.doc_sentences:
            for i, s in enumerate(self.sentences):
                self.doc_sentences.setdefault(s.doc_id, []).append(i)
        if not self.normalized:
            self.normalized = {doc_id: normalize(d.text) for doc_id, d in self.documents.items()}
        self._sentence_starts = {doc_id: [self.sentences[i].start for i in ids]
                                 for doc_id, ids in self.doc_sentences.items()}

    def sentences_in(self, chunk: Chunk) -> list[int]:
        """Ids of the sentences that start inside ``chunk``, in document order."""
        ids = self.doc_sentences.get(chunk.doc_id, [])
        starts = self._sentence_starts.get(chunk.doc_id, [])
        return ids[bisect.bisect_left(starts, chunk.start):bisect.bisect_left(starts, chunk.end)]

    def normalized_span(self, doc_id: str, span) -> str:
        """The normalised text of ``[span.start, span.end)`` of a document."""
        return self.normalized[doc_id][span.start:span.end]


_HELD = threading.local()   # lock files this thread holds (write_lock is re-entrant)


@contextlib.contextmanager
def write_lock(index_dir: Path, timeout: float = 600.0):
    """An exclusive lock beside ``index_dir`` so two writers never interleave.
    Re-entrant within a thread; once held, an index left aside by a killed writer is put back."""
    index_dir = Path(index_dir)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = index_dir.parent / f".{index_dir.name}.lock"
    held = _HELD.__dict__.setdefault("paths", set())
    if os.path.realpath(lock_path) in held:
        yield
        return
    with open(lock_path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexError_(f"another 'qa index' is writing {index_dir}; try again later") from None
                time.sleep(0.2)
        held.add(os.path.realpath(lock_path))
        try:
            _restore_orphan(index_dir)
            yield
        finally:
            held.discard(os.path.realpath(lock_path))
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_index(index_dir: Path, data: IndexData, cache: EmbeddingCache | None = None,
               cache_keep: set[str] | None = None) -> None:
    """Write ``data`` to ``index_dir`` atomically (call under :func:`write_lock`)."""
    index_dir = Path(index_dir)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.new-", dir=index_dir.parent))
    os.chmod(tmp, 0o755)
    try:
        (tmp / "documents.json").write_text(
            json.dumps([d.to_dict() for d in data.documents.values()], ensure_ascii=False), encoding="utf-8")
        (tmp / "chunks.json").write_text(
            json.dumps([[c.doc_id, c.start, c.end] for c in data.chunks], ensure_ascii=False), encoding="utf-8")
        (tmp / "sentences.json").write_text(
            json.dumps([[s.doc_id, s.start, s.end] for s in data.sentences], ensure_ascii=False), encoding="utf-8")
        faiss.write_index(data.chunk_index, str(tmp / "chunks.faiss"))
        np.save(tmp / "sentences.npy", data.sentence_vectors.astype(np.float16), allow_pickle=False)
        if cache is not None:
            cache.save(tmp / "cache", keep=cache_keep)
        manifest = dict(data.manifest)
        manifest["checksums"] = {name: _file_sha1(tmp / name) for name in FILES if name != MANIFEST}
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if index_dir.exists():
            old = index_dir.parent / f".{index_dir.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(index_dir, old)
        os.replace(tmp, index_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        remove_leftovers(index_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_leftovers(index_dir: Path) -> None:
    """Delete what writers killed earlier left beside ``index_dir`` (call under the
    lock, with ``index_dir`` in place: then no live writer owns these)."""
    index_dir = Path(index_dir)
    for stale in [*index_dir.parent.glob(f".{index_dir.name}.new-*"),
                  *index_dir.parent.glob(f".{index_dir.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def _file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _orphans(index_dir: Path) -> list[Path]:
    """Indexes moved aside by writers (``.NAME.old-PID-TIMENS``), newest last."""
    olds = index_dir.parent.glob(f".{index_dir.name}.old-*") if index_dir.parent.exists() else []
    stamp = lambda p: int(p.name.rsplit("-", 1)[-1]) if p.name.rsplit("-", 1)[-1].isdigit() else 0  # noqa: E731
    return sorted(olds, key=stamp)


def _restore_orphan(index_dir: Path) -> None:
    if not index_dir.exists() and (olds := _orphans(index_dir)):
        os.replace(olds[-1], index_dir)


def recover_orphan(index_dir: Path) -> None:
    """If a writer was killed between its two renames, put the old index back.
    Done under the lock, so a live writer between its renames is never disturbed."""
    index_dir = Path(index_dir)
    if index_dir.exists() or not _orphans(index_dir):
        return
    try:
        with write_lock(index_dir, timeout=60.0):   # restores it once the lock is held
            pass
    except (OSError, IndexError_):
        pass


def read_manifest(index_dir: Path) -> dict:
    fix = f"rebuild it with: qa index --rebuild --index {index_dir}"
    recover_orphan(Path(index_dir))
    try:
        manifest = json.loads((Path(index_dir) / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexError_(f"no index at {index_dir}; build one with: qa index --index {index_dir} PATH…") from None
    except (OSError, ValueError) as e:   # the list of sources went with it: they must be named again
        raise IndexError_(f"index manifest at {index_dir} is damaged ({e.__class__.__name__}); "
                          f"{fix} PATH… (the files and folders it held)") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexError_(f"index at {index_dir} has format {manifest.get('format_version') if isinstance(manifest, dict) else '?'}, "
                          f"this version reads {FORMAT_VERSION}; {fix}")
    return manifest


def _dir_id(path: Path):
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except OSError:
        return None


def load_index(index_dir: Path, verify: bool = True) -> IndexData:
    """Read an index directory, checking every file against the manifest.

    Raises :class:`IndexError_` (with the command that fixes it) for a missing,
    truncated, corrupted or foreign index. A writer swapping in a new version
    while this reads (mixed files) is not damage: then it reads again.
    """
    for _ in range(3):
        before = _dir_id(Path(index_dir))
        try:
            return _load_index(Path(index_dir), verify)
        except IndexError_:
            if _dir_id(Path(index_dir)) == before:
                raise
    return _load_index(Path(index_dir), verify)


def _load_index(index_dir: Path, verify: bool) -> IndexData:
    recover_orphan(index_dir)
    manifest = read_manifest(index_dir)
    fix = f"rebuild it with: qa index --rebuild --index {index_dir}"
    try:
        if verify:
            checksums = manifest.get("checksums")
            if not isinstance(checksums, dict) or set(checksums) != set(FILES) - {MANIFEST}:
                raise IndexError_(f"index manifest at {index_dir} has no checksums for its files; {fix}")
            for name, digest in checksums.items():
                if _file_sha1(index_dir / name) != digest:
                    raise IndexError_(f"index file {name} in {index_dir} is damaged (checksum mismatch); {fix}")
        docs = [Document.from_dict(d) for d in json.loads((index_dir / "documents.json").read_text(encoding="utf-8"))]
        documents = {d.doc_id: d for d in docs}
        chunks = [Chunk(i, doc_id, s, e, documents[doc_id].text[s:e])
                  for i, (doc_id, s, e) in enumerate(json.loads((index_dir / "chunks.json").read_text(encoding="utf-8")))]
        sentences = [Sentence(doc_id, s, e)
                     for doc_id, s, e in json.loads((index_dir / "sentences.json").read_text(encoding="utf-8"))]
        chunk_index = faiss.read_index(str(index_dir / "chunks.faiss"))
        sentence_vectors = np.load(index_dir / "sentences.npy", allow_pickle=False).astype(np.float32)
    except IndexError_:
        raise
    except FileNotFoundError as e:
        raise IndexError_(f"index file {Path(e.filename).name} is missing from {index_dir}; {fix}") from None
    except Exception as e:  # truncated JSON/npy/faiss, wrong shapes, unknown doc ids
        raise IndexError_(f"index at {index_dir} cannot be read ({e.__class__.__name__}); {fix}") from None
    dim = manifest.get("encoder_dim")
    if chunk_index.ntotal != len(chunks) or len(sentence_vectors) != len(sentences) or \
            chunk_index.d != dim or (len(sentences) and sentence_vectors.shape[1] != dim):
        raise IndexError_(f"index at {index_dir} is inconsistent (vector counts do not match); {fix}")
    return IndexData(manifest, documents, chunks, sentences, chunk_index, sentence_vectors)
