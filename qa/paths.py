"""Where things live: the user's qa home, the default collection, the built-in corpus.

One place for every path the runtime reads or writes, so nothing reaches into the
pipeline for them.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO / "seeds"                      # the five seed documents and metadata.json
PREBUILT_SEEDS_INDEX = SEEDS_DIR / "index"      # their index, built in advance (qa index --rebuild)
READER_MODEL_DIR = REPO / "qa" / "read" / "neural" / "model"
EVAL_SET = REPO / "eval" / "seed_questions.jsonl"
SEEDS_SOURCE = "<seeds>"                        # how a collection's manifest names the built-in corpus


def qa_home() -> Path:
    """``$QA_HOME``, default ``~/.cache/qa-zh``: collections, uploads, caches, converted models."""
    return Path(os.environ.get("QA_HOME", Path.home() / ".cache" / "qa-zh"))


def default_index_dir() -> Path:
    """Where the default collection (the seeds, plus what ``qa index PATH`` adds) lives."""
    return Path(os.environ.get("QA_INDEX", qa_home() / "index"))
