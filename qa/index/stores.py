"""Where a collection's chunks and vectors live: the store interface and its two kinds.

The pipeline needs five things of a store (``DocumentStore``): the manifest (encoder, chunking,
sources), everything the reader needs in memory (``load`` → :class:`IndexData`), dense search,
keyword search and their fusion (``retriever``). Writers add the rows of new documents, delete
those of removed or changed ones, and write the manifest last.

Two kinds, chosen by ``--store``:

- ``faiss`` (default; also what ``--index DIR`` means): the index directory of ``qa.index.store``
  — FAISS over chunk vectors, the project's BM25, written whole and atomically.
- Milvus (``qa.index.milvus_store``, extra ``qa-zh[milvus]``): one row per chunk (original and
  normalised text, document id, ``[start, end)``, vector, BM25 sparse vector computed by Milvus),
  per sentence and per document part; hybrid search runs inside Milvus. Two URI forms:

  - ``milvus://HOST:PORT/COLLECTION`` — a Milvus server or cluster (``milvus+https://`` for TLS;
    ``MILVUS_TOKEN`` in the environment when it needs one);
  - ``milvus-lite:PATH.db#COLLECTION`` — a local milvus-lite data folder, served in-process.

``index_into_store`` updates any store incrementally: per document (content hash), only new or
changed text is encoded, rows already written by an interrupted run are not encoded again, and
the manifest is written last — a collection whose manifest does not match its rows is reported
stale, never read half-written.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import numpy as np

from pathlib import Path

from embeddings.vectors import EmbeddingCache, content_hash
from qa.errors import IndexError_, UsageError
from qa.index.build import IndexReport, bulk_encoder, passage_text
from qa.index.store import FORMAT_VERSION, IndexData, corpus_fingerprint
from qa.text.chunking import ChunkSpec, chunk_sentences, split_sentences
from qa.types import Chunk, Document, Question

STORE_FORMS = ("faiss", "milvus://HOST:PORT/COLLECTION", "milvus-lite:PATH.db#COLLECTION")
DEFAULT_COLLECTION = "qa"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")   # Milvus collection names


@dataclass(frozen=True)
class StoreSpec:
    """A parsed ``--store``: ``kind`` ("faiss" | "milvus" | "milvus-lite"), the client ``uri``
    (``http://host:port`` or a local ``.db`` folder) and the ``collection`` name."""

    kind: str
    uri: str = ""
    collection: str = DEFAULT_COLLECTION
    text: str = "faiss"          # as the user wrote it, for messages

    @property
    def is_milvus(self) -> bool:
        return self.kind in ("milvus", "milvus-lite")


def parse_store(text: str | None) -> StoreSpec:
    """``--store`` as a :class:`StoreSpec`; :class:`UsageError` naming the forms for anything else."""
    if text is None or text.strip() in ("", "faiss"):
        return StoreSpec("faiss")
    t = text.strip()
    allowed = f"use one of: {', '.join(STORE_FORMS)}"
    m = re.fullmatch(r"milvus(\+https?)?://([^/:\s]+)(?::(\d{1,5}))?(?:/([^/\s]*))?/?", t)
    if m:
        scheme = "https" if m.group(1) == "+https" else "http"
        port = int(m.group(3) or 19530)
        collection = m.group(4) or DEFAULT_COLLECTION
        if not 0 < port < 65536:
            raise UsageError(f"--store {t}: port {port} is out of range; {allowed}")
        _check_name(collection, t)
        return StoreSpec("milvus", f"{scheme}://{m.group(2)}:{port}", collection, t)
    if t.startswith("milvus-lite:"):
        rest = t[len("milvus-lite:"):]
        if rest.startswith("//"):
            rest = rest[2:]
        path, _, collection = rest.partition("#")
        collection = collection or DEFAULT_COLLECTION
        if not path.endswith(".db") or path == ".db":
            raise UsageError(f"--store {t}: a milvus-lite store is a local folder whose name ends in .db "
                             f"(e.g. milvus-lite:./qa.db#docs); {allowed}")
        _check_name(collection, t)
        import os
        return StoreSpec("milvus-lite", os.path.abspath(os.path.expanduser(path)), collection, t)
    raise UsageError(f"--store {t}: not a store; {allowed}")


def _check_name(collection: str, text: str) -> None:
    if not _NAME.match(collection):
        raise UsageError(f"--store {text}: collection name {collection!r} must start with a letter or _ "
                         f"and hold only letters, digits and _")


class DocumentStore(Protocol):
    """What the pipeline needs of a store (see the module docstring). Chunks are named by a
    string key: a row key in Milvus, the chunk's position in a FAISS index folder."""

    spec: StoreSpec

    def read_manifest(self) -> dict: ...                      # IndexError_ when there is none

    def load(self, encoder, spec: ChunkSpec) -> IndexData: ...  # checked fresh; what the reader needs

    def retriever(self, kind: str, index: IndexData): ...     # hybrid | bm25 | dense, over this store

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]: ...

    def keyword_search(self, question: Question, k: int) -> list[tuple[str, float]]: ...

    def fetch_chunks(self, keys: list[str]) -> dict[str, Chunk]: ...


class WritableStore(DocumentStore, Protocol):
    """A store written row by row (Milvus): what :func:`index_into_store` needs. (An index folder
    is written whole and atomically instead: ``qa.index.build.index_documents``.)"""

    def stored_documents(self) -> dict[str, str]: ...         # doc_id → content hash, rows present

    def existing_keys(self, doc_ids: list[str]) -> set[str]: ...

    def prepare(self, dim: int) -> None: ...

    def add_documents(self, documents: list[Document]) -> None: ...

    def add_rows(self, rows: "Rows") -> None: ...

    def delete_documents(self, doc_ids: list[str]) -> None: ...

    def write_manifest(self, manifest: dict) -> None: ...

    def drop(self) -> None: ...


class FaissStore:
    """The index folder (FAISS + the project's BM25) seen through the store interface: what the
    pipeline has always used, unchanged (``Pipeline.load(index_dir)`` still opens it directly)."""

    def __init__(self, index_dir, encoder=None, spec: ChunkSpec = ChunkSpec()):
        self.spec = StoreSpec("faiss", str(index_dir), text=f"faiss:{index_dir}")
        self.index_dir = index_dir
        self._data = None
        if encoder is not None:
            self.load(encoder, spec)

    def read_manifest(self) -> dict:
        from qa.index.store import read_manifest
        return read_manifest(self.index_dir)

    def load(self, encoder, spec: ChunkSpec = ChunkSpec()) -> IndexData:
        from qa.index.build import check_fresh
        from qa.retrieve import BM25Retriever, DenseRetriever
        if self._data is None:
            self._data = check_fresh(self.index_dir, encoder, spec)
            self._bm25, self._dense = BM25Retriever(self._data), DenseRetriever(self._data.chunks,
                                                                                self._data.chunk_index)
        return self._data

    def retriever(self, kind: str, index: IndexData):
        from qa.retrieve import make_retriever
        return make_retriever(kind, self._bm25, self._dense)

    def dense_search(self, vector, k: int) -> list[tuple[str, float]]:
        scores, ids = self._dense.search(vector, k)
        return [(str(int(i)), float(s)) for s, i in zip(scores, ids)]

    def keyword_search(self, question: Question, k: int) -> list[tuple[str, float]]:
        return [(str(h.chunk.chunk_id), h.score) for h in self._bm25.retrieve(question, k)]

    def fetch_chunks(self, keys: list[str]) -> dict[str, Chunk]:
        return {k: self._data.chunks[int(k)] for k in keys if k.isdigit() and int(k) < len(self._data.chunks)}


# --- the rows of a store: keys are the same whoever computes them (one process or Ray) ----

def document_hash(doc: Document) -> str:
    """What decides that a document changed: its text and its title (the encoder sees both)."""
    return content_hash(f"{doc.title}\0{doc.text}")


def row_key(kind: str, doc_id: str, doc_hash: str, start: int, end: int) -> str:
    """The key of a chunk (``kind`` "c") or sentence ("s") row: stable for the same text of the
    same document, new when the document changes."""
    h = hashlib.sha1(f"{kind}\0{doc_id}\0{doc_hash}\0{start}\0{end}".encode("utf-8", "surrogatepass"))
    return f"{kind}{h.hexdigest()[:31]}"


@dataclass
class Rows:
    """Chunk and sentence rows of some documents, ready for a store: keys, spans, texts (what the
    encoder sees, ``encode_texts``), and vectors once encoded (float32, L2-normalised)."""

    kind: str                              # "c" (chunks) or "s" (sentences)
    keys: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)          # original text, document.text[start:end]
    encode_texts: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)           # position in its document
    vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, idx: Iterable[int]) -> "Rows":
        idx = list(idx)
        out = Rows(self.kind, *[[getattr(self, f)[i] for i in idx] for f in
                                ("keys", "doc_ids", "starts", "ends", "texts", "encode_texts", "seqs")])
        if self.vectors is not None:
            out.vectors = self.vectors[idx]
        return out


def document_rows(documents: list[Document], spec: ChunkSpec) -> tuple[Rows, Rows]:
    """Chunk rows and sentence rows of ``documents`` — the same segmentation as
    ``qa.index.build.segment``, the same encoder input as ``passage_text``."""
    chunks, sentences = Rows("c"), Rows("s")
    for doc in documents:
        h = document_hash(doc)
        spans = split_sentences(doc.text, spec.max_sentence)
        for seq, (s, e) in enumerate(spans):
            _append(sentences, row_key("s", doc.doc_id, h, s, e), doc, s, e, doc.text[s:e], seq)
        for seq, (s, e, _, _) in enumerate(chunk_sentences(spans, spec)):
            _append(chunks, row_key("c", doc.doc_id, h, s, e), doc, s, e, passage_text(doc, doc.text[s:e]), seq)
    return chunks, sentences


def _append(rows: Rows, key, doc, s, e, encode_text, seq) -> None:
    rows.keys.append(key)
    rows.doc_ids.append(doc.doc_id)
    rows.starts.append(s)
    rows.ends.append(e)
    rows.texts.append(doc.text[s:e])
    rows.encode_texts.append(encode_text)
    rows.seqs.append(seq)


# --- indexing into a store, incrementally ----------------------------------------------------

#: Texts per write: a failed run loses at most one batch of encoding.
WRITE_BATCH = 256


def store_manifest(documents: list[Document], encoder, spec: ChunkSpec, built_with: str,
                   extra: dict | None = None) -> dict:
    """The manifest of a store collection: as an index directory's, without the per-document
    hashes (they live on the document rows, so the manifest stays small at any size)."""
    n_chunks = n_sentences = 0
    manifest = {
        "format_version": FORMAT_VERSION,
        "encoder_id": encoder.encoder_id,
        "encoder_family": getattr(encoder, "family", encoder.encoder_id),
        "built_with": built_with,
        "encoder_dim": encoder.dim,
        "chunking": spec.to_dict(),
        "fingerprint": corpus_fingerprint(documents),
        "counts": {"documents": len(documents), "chunks": n_chunks, "sentences": n_sentences},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    manifest.update(extra or {})
    return manifest


def check_compatible(manifest: dict, encoder, spec: ChunkSpec, where: str, fix: str) -> None:
    """:class:`IndexError_` when a collection was built with another encoder family or chunking."""
    family = getattr(encoder, "family", encoder.encoder_id)
    if manifest.get("encoder_id") != encoder.encoder_id and \
            manifest.get("encoder_family", manifest.get("encoder_id")) != family:
        raise IndexError_(f"{where} was built with encoder {manifest.get('encoder_id')!r}, "
                          f"not {encoder.encoder_id!r}; {fix}")
    if manifest.get("chunking") != spec.to_dict():
        raise IndexError_(f"{where} was built with other chunking settings; {fix}")


def index_into_store(documents: list[Document], store: WritableStore, encoder, spec: ChunkSpec = ChunkSpec(),
                     rebuild: bool = False, progress=None, extra_manifest: dict | None = None,
                     encode_rows: Callable | None = None, caches: list | None = None) -> IndexReport:
    """Make ``store`` hold exactly ``documents``: delete removed and changed documents' rows,
    encode and add the rows of new and changed ones (skipping rows an interrupted run already
    wrote), then write the manifest. ``encode_rows([chunk_rows, sentence_rows], write, progress)``,
    when given, encodes elsewhere (Ray: ``qa.index.ray_build``) and calls ``write(rows)`` per batch
    of encoded rows;
    the default encodes here, ``WRITE_BATCH`` texts at a time. Texts whose vectors the embedding
    caches in ``caches`` hold (folders, e.g. the prebuilt seeds' cache) are not encoded. ``progress``
    as for :func:`qa.index.build.build_index_data`."""
    t0 = time.perf_counter()
    report = IndexReport(index_dir=store.spec.text, documents=len(documents))
    old_manifest: dict = {}
    if rebuild:
        store.drop()
    else:
        try:
            old_manifest = store.read_manifest()
        except IndexError_:
            old_manifest = {}
        if old_manifest:
            check_compatible(old_manifest, encoder, spec, f"collection {store.spec.text}",
                             f"rebuild it with: qa index --rebuild --store {store.spec.text}")
    stored = {} if rebuild else store.stored_documents()
    new_hashes = {d.doc_id: document_hash(d) for d in documents}
    listed = set(stored) if old_manifest else set()
    report.added = sorted(set(new_hashes) - listed)
    report.removed = sorted(set(stored) - set(new_hashes))
    report.changed = sorted(k for k in new_hashes if k in listed and stored[k] != new_hashes[k])
    report.unchanged = len(new_hashes) - len(report.added) - len(report.changed)
    # rows of removed and changed documents go; so do a half-written document's stale rows
    stale = sorted(set(report.removed) | set(report.changed) |
                   {k for k in report.added if k in stored and stored[k] != new_hashes[k]})
    if stale:
        store.delete_documents(stale)
    todo_docs = [d for d in documents if d.doc_id in set(report.added) | set(report.changed)]
    chunks, sentences = document_rows(todo_docs, spec)
    have = store.existing_keys([d.doc_id for d in todo_docs]) if todo_docs and not rebuild else set()
    todo_c = chunks.take(i for i, k in enumerate(chunks.keys) if k not in have)
    todo_s = sentences.take(i for i, k in enumerate(sentences.keys) if k not in have)
    in_store = len(chunks) + len(sentences) - len(todo_c) - len(todo_s)
    # vectors the embedding cache holds (the prebuilt seeds' …) are written without encoding
    cache = EmbeddingCache(getattr(encoder, "family", encoder.encoder_id), encoder.dim)
    for directory in caches or []:
        cache.load(Path(directory))          # a damaged cache is simply not used
    cached_c, todo_c = _split_cached(cache, todo_c)
    cached_s, todo_s = _split_cached(cache, todo_s)
    report.texts_cached = in_store + len(cached_c) + len(cached_s)
    report.texts_encoded = len(todo_c) + len(todo_s)
    report.chars_encoded = sum(len(t) for t in todo_c.encode_texts + todo_s.encode_texts)
    if progress is not None and hasattr(progress, "start"):
        progress.start(report.texts_encoded, len({*todo_c.doc_ids, *todo_s.doc_ids}))
    store.prepare(encoder.dim)
    for rows in (cached_c, cached_s):
        for i in range(0, len(rows), WRITE_BATCH):
            store.add_rows(rows.take(range(i, min(i + WRITE_BATCH, len(rows)))))
    builder = encoder
    if encode_rows is None:
        builder = bulk_encoder(encoder, report.chars_encoded)
        for rows in (todo_c, todo_s):
            for i in range(0, len(rows), WRITE_BATCH):
                part = rows.take(range(i, min(i + WRITE_BATCH, len(rows))))
                part.vectors = builder.encode_passages(part.encode_texts)
                store.add_rows(part)
                if progress:
                    progress(len(part))
    elif report.texts_encoded:
        encode_rows([todo_c, todo_s], store.add_rows, progress)
    # a document's own row last: a document the store lists has all its rows (an interrupted
    # run's documents are "new" again next time, and only their missing rows are encoded)
    store.add_documents(todo_docs)
    manifest = store_manifest(documents, encoder, spec, getattr(builder, "encoder_id", encoder.encoder_id),
                              extra_manifest)
    manifest["counts"].update(chunks=store.count("c"), sentences=store.count("s"))
    same = {k: manifest.get(k) for k in ("fingerprint", "encoder_family", "chunking", "sources", "counts")}
    if rebuild or same != {k: old_manifest.get(k) for k in same}:
        store.write_manifest(manifest)
    report.seconds = time.perf_counter() - t0
    return report


def _split_cached(cache, rows: Rows) -> tuple[Rows, Rows]:
    """(rows whose vectors ``cache`` holds, with them; the rest, to encode)."""
    keys = [cache.key(t, "passage") for t in rows.encode_texts]
    hit = [i for i, k in enumerate(keys) if k in cache]
    cached = rows.take(hit)
    if hit:
        cached.vectors, _ = cache.encode(cached.encode_texts, "passage", None)
    else:
        cached.vectors = np.zeros((0, cache.dim), np.float32)
    return cached, rows.take(i for i, k in enumerate(keys) if k not in cache)


def update_store(store: WritableStore, paths: list[str], rebuild: bool = False, seeds: bool | None = True,
                 encoder: str | None = None, spec: ChunkSpec = ChunkSpec(), progress=None,
                 follow_links: bool = False, encode_rows: Callable | None = None):
    """``qa index --store``: as :func:`qa.index.collection.update_collection` for a store — the
    collection's earlier sources (from its manifest) and ``paths`` are read and indexed
    incrementally (:func:`index_into_store`). ``seeds=None``: as the collection has them (a new
    collection holds them, like the default one). Returns ``(IndexReport, LoadReport)``."""
    from embeddings.encoders import get_encoder
    from qa.index.collection import gather_documents
    try:
        old_manifest = {} if rebuild else store.read_manifest()
    except IndexError_:
        old_manifest = {}
    from qa.paths import PREBUILT_SEEDS_INDEX, SEEDS_SOURCE
    if seeds is None:
        seeds = SEEDS_SOURCE in old_manifest.get("sources", [SEEDS_SOURCE])
    documents, loaded, extra = gather_documents(old_manifest, paths, rebuild, seeds, follow_links)
    enc = get_encoder(encoder)
    report = index_into_store(documents, store, enc, spec, rebuild=rebuild, progress=progress,
                              extra_manifest=extra, encode_rows=encode_rows,
                              caches=[PREBUILT_SEEDS_INDEX / "cache"] if seeds else None)
    return report, loaded
