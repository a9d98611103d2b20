"""A collection: an index directory plus the sources (files, folders, the seeds)
it was built from. ``update_collection`` rescans the sources, so new and changed
files are encoded, deleted ones dropped, and unchanged text comes from the cache.
"""
from __future__ import annotations

from pathlib import Path

from embeddings.encoders import get_encoder
from embeddings.store import read_manifest
from qa.chunking import ChunkSpec
from qa.errors import IndexError_, InputError
from qa.indexing import IndexReport, index_documents
from qa.ingest import LoadReport, load_paths, load_seeds

SEEDS_SOURCE = "<seeds>"


def previous_sources(index_dir: Path) -> list[str]:
    try:
        return list(read_manifest(index_dir).get("sources", []))
    except IndexError_:
        return []


def update_collection(index_dir: Path, paths: list[str], rebuild: bool = False, seeds: bool = True,
                      encoder: str | None = None, spec: ChunkSpec = ChunkSpec(), progress=None
                      ) -> tuple[IndexReport, LoadReport]:
    """Index ``paths`` (plus the collection's earlier sources unless ``rebuild``)
    into ``index_dir``. Raises :class:`InputError` if no document could be read."""
    index_dir = Path(index_dir)
    sources = [] if rebuild else previous_sources(index_dir)
    sources = [s for s in sources if s != SEEDS_SOURCE]
    for p in paths:
        resolved = str(Path(p).resolve()) if Path(p).exists() else str(p)
        if resolved not in sources:
            sources.append(resolved)
    loaded = load_paths(sources)
    documents = list(loaded.documents)
    if seeds:
        documents = load_seeds() + documents
    if not documents:
        reasons = "; ".join(f"{p}: {r}" for p, r in loaded.skipped[:3]) or "no paths given"
        raise InputError(f"nothing to index ({reasons})")
    enc = get_encoder(encoder)
    kept_sources = ([SEEDS_SOURCE] if seeds else []) + [s for s in sources if Path(s).exists()]
    report = index_documents(documents, index_dir, enc, spec, rebuild=rebuild, progress=progress,
                             extra_manifest={"sources": kept_sources})
    return report, loaded
