"""The on-disk index of a collection: documents, chunks, sentences, their vectors, a manifest.

Layout of an index directory (no pickle anywhere; JSON, .npy and FAISS files):

    manifest.json        format version, encoder id/dim, chunking, fingerprint, counts
    documents.json       every document with its text (offsets refer to it)
    chunks.json          chunk spans; sentences.json  sentence spans
    chunks.faiss         FAISS index over chunk vectors (inner product)
    sentences.npy        sentence vectors (float16), for the reader
    cache/keys.json + cache/vectors.npy   embedding cache by content hash (+ cache/checksums.json)

Only a missing path, an empty folder or a folder of these files is an index folder: nothing
else is ever written into, moved or deleted (``check_index_target``).

Writes are atomic: a complete new directory is written beside the old one and
swapped in with ``os.replace``; a lock file serialises concurrent writers.
"""
from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from embeddings.vectors import EmbeddingCache, content_hash
from qa.errors import IndexError_, StorageError, UsageError
from qa.text.normalize import normalize
from qa.types import Chunk, Document, Sentence

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = ("manifest.json", "documents.json", "chunks.json", "sentences.json", "chunks.faiss", "sentences.npy")
CACHE_DIR = "cache"
CACHE_FILES = ("keys.json", "vectors.npy", "checksums.json")


# --- what an index directory is (and what may be written, moved or deleted) ---------------

def resolve_index_dir(index_dir: str | os.PathLike) -> Path:
    """The real path of an index directory: ``~`` expanded and symlinks resolved, once, so
    the lock, the swap and the files all use the same place (a symlinked ``--index`` is
    written through, never replaced by a folder; two names of one index share one lock)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(index_dir))))


def index_dir_state(index_dir: str | os.PathLike) -> tuple[str, list[str]]:
    """What is at ``index_dir`` (symlinks followed): ``("absent"|"empty"|"index"|"file"|
    "foreign"|"unusable", details)``. A folder is an index only when everything in it is
    a file an index holds (``manifest.json`` … ``cache/``): only then may a writer
    replace it. ``details``: for "foreign", the entries that are not an index's."""
    real = resolve_index_dir(index_dir)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return "absent", []
    except NotADirectoryError:
        return "file", []            # a path below a file (``/etc/passwd/x``)
    except OSError as e:
        return "unusable", [e.strerror or e.__class__.__name__]
    if not stat.S_ISDIR(st.st_mode):
        return "file", []
    try:
        names = sorted(os.listdir(real))
    except OSError as e:
        return "unusable", [e.strerror or e.__class__.__name__]
    if not names:
        return "empty", []
    stray = [n for n in names if n not in FILES and n != CACHE_DIR]
    cache = real / CACHE_DIR
    if CACHE_DIR in names:
        if cache.is_symlink() or not cache.is_dir():
            stray.append(CACHE_DIR)
        else:
            try:
                stray += [f"{CACHE_DIR}/{n}" for n in sorted(os.listdir(cache)) if n not in CACHE_FILES]
            except OSError:
                stray.append(CACHE_DIR)
    return ("foreign", stray) if stray else ("index", [])


def _not_an_index(index_dir, state: str, details: list[str]) -> str:
    if state == "file":
        return f"{index_dir} is a file, not an index folder"
    if state == "unusable":
        return f"{index_dir} cannot be used as an index folder ({details[0] if details else 'unreadable'})"
    shown = ", ".join(details[:3]) + (f" and {len(details) - 3} more" if len(details) > 3 else "")
    return f"{index_dir} is a folder that is not an index (it holds {shown})"


def check_index_target(index_dir: str | os.PathLike, sources: list[str] | tuple = ()) -> Path:
    """The real path to write the index at, or :class:`UsageError`: only a missing path,
    an empty folder or an index folder is ever written into, moved or deleted; a source
    inside the index folder, or the index folder inside a source, is refused too."""
    real = resolve_index_dir(index_dir)
    state, details = index_dir_state(real)
    if state not in ("absent", "empty", "index"):
        raise UsageError(f"{_not_an_index(index_dir, state, details)}; nothing was written. "
                         f"Give --index a folder that does not exist yet (or an empty one)")
    for parent in real.parents:        # a file on the way (``notes.txt/index``)
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{index_dir}: {parent} is a file, not a folder; nothing was written")
            break
    for source in sources:
        src = Path(os.path.realpath(os.path.expanduser(os.fspath(source))))
        if src == real or real in src.parents:
            raise UsageError(f"{source} is inside the index folder {index_dir}; nothing was written. "
                             f"Keep documents outside the index folder")
        if src in real.parents:
            between = real.relative_to(src).parts
            if not any(part.startswith(".") for part in between):   # hidden folders are not read
                raise UsageError(f"the index folder {index_dir} is inside {source}, which is to be indexed; "
                                 f"nothing was written. Put the index outside it")
    return real


def rebuild_hint(index_dir, paths: bool = False) -> str:
    """The command that rebuilds ``index_dir`` — only when running it is safe (the folder is
    an index, missing or empty); else what it is and why no command is given."""
    state, details = index_dir_state(index_dir)
    if state in ("absent", "empty", "index"):
        return f"rebuild it with: qa index --rebuild --index {index_dir}" + (" PATH…" if paths else "")
    return (f"{_not_an_index(index_dir, state, details)}; build an index in a new folder with: "
            f"qa index --index NEWDIR PATH…")


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


LOCK_TIMEOUT = 600.0


def _lock_path(real: Path) -> Path:
    return real.parent / f".{real.name}.lock"


@contextlib.contextmanager
def write_lock(index_dir: Path, timeout: float = LOCK_TIMEOUT, quiet: bool = False):
    """An exclusive lock beside ``index_dir`` (its real path) so two writers never interleave.
    Re-entrant within a thread; once held, an index left aside by a killed writer is put back.
    While it waits for another writer it says so once on stderr (unless ``quiet``)."""
    real = resolve_index_dir(index_dir)
    lock_path = _lock_path(real)
    held = _HELD.__dict__.setdefault("paths", set())
    if str(lock_path) in held:
        yield
        return
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a+")
    except OSError as e:
        raise storage_error(e, index_dir) from None
    with fh:
        deadline = time.monotonic() + timeout
        said = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexError_(f"another 'qa index' is writing {index_dir} (waited {timeout:.0f} s); "
                                      f"try again later") from None
                if not said and not quiet:
                    holder = _lock_holder(lock_path)
                    print(f"waiting for another writer{holder} to finish with {index_dir} "
                          f"(at most {timeout:.0f} s) …", file=sys.stderr, flush=True)
                    said = True
                time.sleep(0.2)
        held.add(str(lock_path))
        try:
            with contextlib.suppress(OSError):        # who holds it, for a waiting writer's message
                fh.seek(0)
                fh.truncate()
                fh.write(f"{os.getpid()}\n")
                fh.flush()
            _restore_orphan(real)
            yield
        finally:
            held.discard(str(lock_path))
            fcntl.flock(fh, fcntl.LOCK_UN)


def _lock_holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def storage_error(e: OSError, index_dir) -> StorageError:
    """A one-line :class:`StorageError` for an ``OSError`` met while writing an index."""
    if e.errno in _NO_SPACE:
        why = "the disk is full" if e.errno == errno.ENOSPC else \
              ("the disk quota is used up" if e.errno == errno.EDQUOT else "a file size limit was reached")
    elif e.errno in (errno.EACCES, errno.EPERM):
        why = f"permission denied{f' ({e.filename})' if e.filename else ''}"
    elif e.errno == errno.EROFS:
        why = "the file system is read-only"
    else:
        why = f"{e.strerror or e.__class__.__name__}{f' ({e.filename})' if e.filename else ''}"
    return StorageError(f"cannot write the index at {index_dir}: {why}; "
                        f"the index there was left as it was")


def save_index(index_dir: Path, data: IndexData, cache: EmbeddingCache | None = None,
               cache_keep: set[str] | None = None) -> None:
    """Write ``data`` to ``index_dir`` atomically (call under :func:`write_lock`).
    Only a missing path, an empty folder or an index folder is ever replaced
    (:class:`UsageError` otherwise); a failed write (disk full …) leaves the old index
    in place and raises :class:`StorageError`."""
    shown = index_dir
    index_dir = check_index_target(index_dir)
    tmp = None
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.new-", dir=index_dir.parent))
        os.chmod(tmp, 0o755)
        (tmp / "documents.json").write_text(
            json.dumps([d.to_dict() for d in data.documents.values()], ensure_ascii=False), encoding="utf-8")
        (tmp / "chunks.json").write_text(
            json.dumps([[c.doc_id, c.start, c.end] for c in data.chunks], ensure_ascii=False), encoding="utf-8")
        (tmp / "sentences.json").write_text(
            json.dumps([[s.doc_id, s.start, s.end] for s in data.sentences], ensure_ascii=False), encoding="utf-8")
        faiss.write_index(data.chunk_index, str(tmp / "chunks.faiss"))
        np.save(tmp / "sentences.npy", data.sentence_vectors.astype(np.float16), allow_pickle=False)
        if cache is not None:
            cache.save(tmp / CACHE_DIR, keep=cache_keep)
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
    except OSError as e:
        raise storage_error(e, shown) from None
    except RuntimeError as e:       # faiss reports a failed write as RuntimeError
        if "No space left" in str(e) or "errno 28" in str(e).lower():
            raise storage_error(OSError(errno.ENOSPC, "No space left on device"), shown) from None
        raise
    finally:
        if tmp is not None and tmp.exists():
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
    index_dir = resolve_index_dir(index_dir)
    if index_dir.exists() or not _orphans(index_dir):
        return
    try:
        with write_lock(index_dir, timeout=60.0, quiet=True):   # restores it once the lock is held
            pass
    except (OSError, IndexError_):
        pass


def read_manifest(index_dir: Path) -> dict:
    real = resolve_index_dir(index_dir)
    recover_orphan(real)
    try:
        manifest = json.loads((real / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        state, details = index_dir_state(real)
        if state in ("absent", "empty", "index"):
            raise IndexError_(f"no index at {index_dir}; build one with: qa index --index {index_dir} PATH…") from None
        raise IndexError_(rebuild_hint(index_dir)) from None
    except (OSError, ValueError) as e:   # the list of sources went with it: they must be named again
        raise IndexError_(f"index manifest at {index_dir} is damaged ({e.__class__.__name__}); "
                          f"{rebuild_hint(index_dir, paths=True)} (the files and folders it held)") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexError_(f"index at {index_dir} has format {manifest.get('format_version') if isinstance(manifest, dict) else '?'}, "
                          f"this version reads {FORMAT_VERSION}; {rebuild_hint(index_dir)}")
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
    real = resolve_index_dir(index_dir)
    for _ in range(3):
        before = _dir_id(real)
        try:
            return _load_index(Path(index_dir), verify)
        except IndexError_:
            if _dir_id(real) == before:
                raise
    return _load_index(Path(index_dir), verify)


def _load_index(shown: Path, verify: bool) -> IndexData:
    index_dir = resolve_index_dir(shown)
    recover_orphan(index_dir)
    manifest = read_manifest(shown)
    fix = rebuild_hint(shown)
    try:
        if verify:
            checksums = manifest.get("checksums")
            if not isinstance(checksums, dict) or set(checksums) != set(FILES) - {MANIFEST}:
                raise IndexError_(f"index manifest at {shown} has no checksums for its files; {fix}")
            for name, digest in checksums.items():
                if _file_sha1(index_dir / name) != digest:
                    raise IndexError_(f"index file {name} in {shown} is damaged (checksum mismatch); {fix}")
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
        raise IndexError_(f"index file {Path(e.filename).name} is missing from {shown}; {fix}") from None
    except Exception as e:  # truncated JSON/npy/faiss, wrong shapes, unknown doc ids
        raise IndexError_(f"index at {shown} cannot be read ({e.__class__.__name__}); {fix}") from None
    dim = manifest.get("encoder_dim")
    if chunk_index.ntotal != len(chunks) or len(sentence_vectors) != len(sentences) or \
            chunk_index.d != dim or (len(sentences) and sentence_vectors.shape[1] != dim):
        raise IndexError_(f"index at {shown} is inconsistent (vector counts do not match); {fix}")
    return IndexData(manifest, documents, chunks, sentences, chunk_index, sentence_vectors)
