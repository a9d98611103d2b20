"""A collection: an index directory plus the sources (files, folders, the seeds)
it was built from. ``update_collection`` rescans the sources, so new and changed
files are encoded, deleted ones dropped, and unchanged text comes from the cache.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from embeddings.encoders import get_encoder
from qa.errors import IndexError_, InputError
from qa.index.build import IndexReport, check_fresh, index_documents
from qa.index.store import (IndexData, check_index_target, corpus_fingerprint, load_index, read_manifest,
                            recover_orphan, write_lock)
from qa.ingest import LoadReport, load_paths, load_seeds
from qa.paths import PREBUILT_SEEDS_INDEX, SEEDS_SOURCE, default_index_dir
from qa.text.chunking import ChunkSpec


def is_default(index_dir: str | Path | None) -> bool:
    """Whether ``index_dir`` (None: yes) is the default collection."""
    if not index_dir:
        return True
    return Path(index_dir).expanduser().resolve() == default_index_dir().expanduser().resolve()


def holds_seeds(index_dir: str | Path | None) -> bool:
    """The one rule for "this collection holds the seeds": the default collection always
    does; another one when its manifest lists them among its sources."""
    return is_default(index_dir) or SEEDS_SOURCE in previous_sources(Path(index_dir))


def open_default_index(encoder, spec: ChunkSpec = ChunkSpec()) -> tuple[Path, IndexData]:
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
                    extra_manifest={"sources": [SEEDS_SOURCE]})
    return index_dir, check_fresh(index_dir, encoder, spec)


def previous_sources(index_dir: Path) -> list[str]:
    try:
        return list(read_manifest(index_dir).get("sources", []))
    except IndexError_:
        return []


def _gone(source: str) -> bool:
    try:
        return not Path(source).exists()
    except OSError:            # unreadable is not gone: load_paths says why it is skipped
        return False


def update_collection(index_dir: Path, paths: list[str], rebuild: bool = False, seeds: bool = True,
                      encoder: str | None = None, spec: ChunkSpec = ChunkSpec(), progress=None,
                      follow_links: bool = False) -> tuple[IndexReport, LoadReport]:
    """Index ``paths`` (plus the collection's earlier sources unless ``rebuild`` with
    paths) into ``index_dir``. Raises :class:`InputError` if no document could be read,
    :class:`UsageError` if ``index_dir`` is something else than an index (a file, a folder
    of other files) or a source and the index folder lie inside one another — before
    anything is written. The whole read-modify-write holds the index's lock: concurrent
    updates add up. ``follow_links``: follow symlinks inside folders that lead out of them
    (remembered by the collection)."""
    real = check_index_target(index_dir, [p for p in paths if str(p).strip() and "\x00" not in str(p)])
    with write_lock(real):
        return _update_collection(real, paths, rebuild, seeds, encoder, spec, progress, follow_links)


def _update_collection(index_dir, paths, rebuild, seeds, encoder, spec, progress, follow_links):
    index_dir = Path(index_dir)
    try:
        old_manifest = read_manifest(index_dir)
    except IndexError_:
        old_manifest = {}
    documents, loaded, extra = gather_documents(old_manifest, paths, rebuild, seeds, follow_links,
                                                previous=lambda: load_index(index_dir).documents)
    enc = get_encoder(encoder)
    report = index_documents(documents, index_dir, enc, spec, rebuild=rebuild, progress=progress,
                             seed_caches=[PREBUILT_SEEDS_INDEX / "cache"] if seeds else None,
                             extra_manifest=extra)
    return report, loaded


def gather_documents(old_manifest: dict, paths: list[str], rebuild: bool, seeds: bool, follow_links: bool,
                     previous=None) -> tuple[list, LoadReport, dict]:
    """The documents a collection is to hold: its earlier sources (from ``old_manifest``, unless
    ``rebuild`` with paths) and ``paths``, read; the seeds first when ``seeds``. Returns them, the
    load report and the manifest entries that remember the sources. ``previous()``: the documents
    indexed last time (a file that reads empty now keeps its previous version). Raises
    :class:`InputError` when there is nothing to index."""
    # --rebuild with no paths re-encodes the same collection (what the damaged-index messages ask for)
    sources = [] if rebuild and paths else list(old_manifest.get("sources", []))
    sources = [s for s in sources if s != SEEDS_SOURCE]
    follow_links = bool(follow_links or (old_manifest.get("follow_links") and not (rebuild and paths)))
    # an earlier source deleted since: its documents go (reported as removed), it is no skip
    gone = [s for s in sources if _gone(s)]
    sources = [s for s in sources if s not in gone]
    for p in paths:
        resolved = str(Path(p).resolve()) if Path(p).exists() else str(p)
        if resolved not in sources:
            sources.append(resolved)
    loaded = load_paths(sources, follow_links=follow_links)
    loaded.notes.extend((s, "no longer exists") for s in gone if s not in sources)
    if not rebuild and previous is not None:
        _keep_previous_versions(previous, loaded)
    documents = list(loaded.documents)
    if seeds:
        documents = load_seeds() + documents
    if not documents:
        reasons = "; ".join(f"{p}: {r}" for p, r in (loaded.skipped or loaded.notes)[:3]) or "no paths given"
        raise InputError(f"nothing to index ({reasons})")
    kept_sources = ([SEEDS_SOURCE] if seeds else []) + [s for s in sources if Path(s).exists()]
    extra = {"sources": kept_sources}
    if follow_links:
        extra["follow_links"] = True
    return documents, loaded, extra


EMPTY_NOW = "empty file"


def _keep_previous_versions(previous, loaded: LoadReport) -> None:
    """Snapshot-or-keep: a file that reads empty now but had text when last indexed (caught
    in the middle of being rewritten, most likely) keeps its previous version, with a note,
    instead of leaving the collection until the next run."""
    empty = [(p, r) for p, r in loaded.skipped if r == EMPTY_NOW]
    if not empty:
        return
    try:
        previous = previous()
    except IndexError_:
        return
    for path, reason in empty:
        try:
            doc_id = str(Path(path).resolve())
        except (OSError, RuntimeError):
            continue
        doc = previous.get(doc_id)
        if doc is None or not doc.text.strip():
            continue
        loaded.skipped.remove((path, reason))
        loaded.documents.append(doc)
        loaded.notes.append((path, "reads empty now (being rewritten?); kept the version indexed before — "
                                   "delete the file to remove it from the collection"))


def list_documents(data: IndexData) -> list[dict]:
    """The collection's documents as the page's library lists them, in index order: ``doc_id``,
    ``title``, ``name`` (the file name, never a folder), ``date`` (ISO, the document's own or
    its file's modification day), ``chars`` and ``passages`` (the chunks it was cut into)."""
    import datetime
    passages: dict[str, int] = {}
    for c in data.chunks:
        passages[c.doc_id] = passages.get(c.doc_id, 0) + 1
    out = []
    for doc_id, doc in data.documents.items():
        date = doc.date or ""
        if not date and doc.mtime:
            date = datetime.date.fromtimestamp(doc.mtime).isoformat()
        name = Path(str(doc_id).replace("\\", "/")).name or str(doc_id)
        out.append({"doc_id": doc_id, "title": doc.title, "name": name, "date": date,
                    "chars": len(doc.text), "passages": passages.get(doc_id, 0)})
    return out


def delete_document_file(index_dir: Path, path: str | Path, seeds: bool = True,
                         progress=None) -> tuple[IndexReport, LoadReport]:
    """Delete ``path``, a file the collection was built from (one of its sources, or a file in
    a source folder), and update the collection incrementally: its passages leave the index,
    nothing is encoded. The whole step holds the index's lock. If the update fails (nothing
    left to index, the index cannot be written) the file is put back and the error raised."""
    path = Path(path)
    real = check_index_target(index_dir)
    with write_lock(real):
        aside = path.with_name(f".{path.name}.deleting")     # hidden: the loader passes over it
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            aside = None                                      # already gone: just update
        try:
            result = _update_collection(real, [], False, seeds, None, ChunkSpec(), progress, False)
        except BaseException:
            if aside is not None:
                os.replace(aside, path)
            raise
        if aside is not None:
            aside.unlink(missing_ok=True)
        return result
