"""Evaluation: the seed question set (``eval/seed_questions.jsonl``) and its scorer (``metrics``)."""
