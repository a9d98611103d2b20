"""Stage 6: retrieval. BM25 over normalised text, dense FAISS search, and their fusion."""
from qa.retrieve.bm25 import BM25Retriever, bm25_tokens
from qa.retrieve.dense import DenseRetriever
from qa.retrieve.hybrid import HybridRetriever, make_retriever, RETRIEVERS

__all__ = ["BM25Retriever", "bm25_tokens", "DenseRetriever", "HybridRetriever", "make_retriever", "RETRIEVERS"]
