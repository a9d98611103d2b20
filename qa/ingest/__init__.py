"""Stage 1: documents in. Read files into :class:`qa.types.Document`, text untouched."""
from qa.ingest.loaders import SUPPORTED_SUFFIXES, LoadReport, load_paths, read_document
from qa.ingest.seeds import load_seeds

__all__ = ["SUPPORTED_SUFFIXES", "LoadReport", "load_paths", "read_document", "load_seeds"]
