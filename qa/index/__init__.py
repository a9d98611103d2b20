"""Stages 4–5: the index of a collection (documents, sentences, chunks, vectors) on disk."""
