"""Stages 2–3: the one normaliser, sentences and chunks."""
