"""Stage 7: readers turn retrieved passages into scored answer spans."""
from qa.read.base import READERS, Reader, make_reader

__all__ = ["Reader", "make_reader", "READERS"]
