"""``qa index``: build or update a collection and say what happened."""
from __future__ import annotations

import sys
from pathlib import Path

from qa.collection import update_collection
from qa.pipeline import default_index_dir
from qa.progress import TerminalProgress


def run_index(args) -> int:
    index_dir = Path(args.index) if args.index else default_index_dir()
    # The seeds belong to the default collection; a separate --index holds only what it is given.
    seeds = not args.no_seeds and (not args.index or index_dir.resolve() == default_index_dir().resolve())
    # a progress bar on stderr, only when it is a terminal and not --quiet
    bar = TerminalProgress(sys.stderr, enabled=False if getattr(args, "quiet", False) else None)
    try:
        report, loaded = update_collection(index_dir, args.paths, rebuild=args.rebuild, seeds=seeds,
                                           encoder=args.encoder, progress=bar)
    finally:
        bar.close()
    for path, note in getattr(loaded, "notes", []):
        print(f"note {path}: {note}", file=sys.stderr)
    for path, reason in loaded.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"indexed {report.documents} documents into {report.index_dir}: "
          f"{len(report.added)} new, {len(report.changed)} changed, {len(report.removed)} removed, "
          f"{report.unchanged} unchanged; encoded {report.texts_encoded} passages "
          f"({report.texts_cached} from cache) in {report.seconds:.1f} s")
    if loaded.skipped:
        print(f"{len(loaded.skipped)} file(s) skipped", file=sys.stderr)
        return 1
    return 0
