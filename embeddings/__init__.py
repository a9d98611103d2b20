"""Stage 4: encoders that turn text into vectors, the FAISS vector index and the embedding cache.

The layer below ``qa``: nothing here imports ``qa``.
"""
from embeddings.encoders import DEFAULT_ENCODER, Encoder, get_encoder

__all__ = ["Encoder", "get_encoder", "DEFAULT_ENCODER"]
