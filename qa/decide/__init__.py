"""The answer decision: how likely each candidate span is to be the right answer, and
whether to answer, answer with 「可能是…」, or say the documents do not say."""
from qa.decide.model import DECISION_FILE, STATES, AnswerDecision

__all__ = ["AnswerDecision", "DECISION_FILE", "STATES"]
