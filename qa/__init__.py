"""Offline question answering over Chinese documents, with exact citations.

>>> from qa import answer
>>> a = answer("新材料产业产值是多少")
>>> a.text, a.citations[0].title
"""
from qa.pipeline import Pipeline, answer
from qa.types import Answer, Citation, Document

__all__ = ["answer", "Answer", "Citation", "Document", "Pipeline"]
__version__ = "0.1.0"
