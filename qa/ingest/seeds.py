"""The built-in corpus: the five documents in ``seeds/`` and their metadata."""
from __future__ import annotations

import json
from pathlib import Path

from qa.paths import SEEDS_DIR
from qa.types import Document


def load_seeds(seeds_dir: Path = SEEDS_DIR) -> list[Document]:
    """Read every ``*.txt`` in ``seeds_dir`` with the titles in ``metadata.json``."""
    meta = json.loads((seeds_dir / "metadata.json").read_text(encoding="utf-8"))
    docs = []
    for path in sorted(seeds_dir.glob("*.txt")):
        m = meta.get(path.name, {})
        text = path.read_bytes().decode("utf-8")
        docs.append(Document(doc_id=path.name, title=m.get("title") or path.stem, text=text,
                             source=m.get("source", ""), date=m.get("date"),
                             script=m.get("script", "simplified")))
    return docs
