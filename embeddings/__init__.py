"""Stage 4–5: encoders that turn text into vectors, and the FAISS index store."""
from embeddings.encoders import Encoder, get_encoder, DEFAULT_ENCODER

__all__ = ["Encoder", "get_encoder", "DEFAULT_ENCODER"]
