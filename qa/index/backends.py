"""Open the store ``--store`` names (see ``qa.index.stores`` for the forms)."""
from __future__ import annotations

from qa.index.stores import DocumentStore, StoreSpec, parse_store


def open_store(text: str | StoreSpec | None) -> DocumentStore | None:
    """The store ``--store`` names; None for the default FAISS index directories (which keep
    their own code path, ``qa.index.build``, unchanged). Nothing is contacted until first use."""
    spec = text if isinstance(text, StoreSpec) else parse_store(text)
    if not spec.is_milvus:
        return None
    from qa.index.milvus_store import MilvusStore
    return MilvusStore(spec)
