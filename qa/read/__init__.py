"""Stage 7: readers turn retrieved passages into scored answer spans."""
from qa.read.base import Reader, make_reader, READERS
from qa.read.question import QuestionInfo, analyze_question

__all__ = ["Reader", "make_reader", "READERS", "QuestionInfo", "analyze_question"]
