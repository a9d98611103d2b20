"""Offline question answering over Chinese documents, with exact citations.

>>> from qa import answer
>>> a = answer("新材料产业产值是多少")
>>> a.text, a.citations[0].title

The names below are loaded on first use, so ``import qa.errors`` (or any
submodule) does not pull in the whole pipeline.
"""
__version__ = "0.1.0"
__all__ = ["answer", "Answer", "Citation", "Document", "Pipeline"]


def __getattr__(name):
    if name == "answer":
        from qa import api
        return api.answer
    if name == "Pipeline":
        from qa import pipeline
        return pipeline.Pipeline
    if name in ("Answer", "Citation", "Document"):
        from qa import types
        return getattr(types, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
