"""The seed evaluation set: every gold answer is where it says it is, and the set
covers what the evaluation needs (documents, kinds, scripts, unanswerable questions)."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from qa.text.chunking import is_furniture_line
from qa.evaluation.metrics import normalize_answer, score
from qa.text.normalize import to_simplified

ROOT = Path(__file__).resolve().parents[1]
EVAL_FILE = ROOT / "eval" / "seed_questions.jsonl"
SEEDS = ROOT / "seeds"
TRADITIONAL_DOC = "000_e0db5ce7d9f92f47.txt"

KINDS = {"amount", "percent", "count", "rank", "date", "person", "org", "list",
         "paraphrase", "other", "unanswerable"}
TAGS = {"traditional_question", "simplified_about_traditional", "multi_answer", "paraphrase"}
FIELDS = {"id", "question", "answers", "kind", "tags", "no_answer", "note"}


def _load() -> list[dict]:
    rows = []
    with EVAL_FILE.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            assert line.strip(), f"blank line {n} in {EVAL_FILE.name}"
            rows.append(json.loads(line))
    return rows


QUESTIONS = _load()
DOC_TEXT = {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}


def _line_of(text: str, start: int, end: int) -> str:
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end)
    return text[ls: le if le >= 0 else len(text)]


def test_every_row_has_the_documented_fields():
    for q in QUESTIONS:
        assert set(q) == FIELDS, q["id"]
        assert isinstance(q["question"], str) and q["question"].strip(), q["id"]
        assert isinstance(q["answers"], list) and isinstance(q["tags"], list), q["id"]
        assert isinstance(q["no_answer"], bool), q["id"]


def test_ids_and_questions_are_unique():
    ids = [q["id"] for q in QUESTIONS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"q\d{3}", i) for i in ids)
    texts = Counter(q["question"] for q in QUESTIONS)
    assert [t for t, c in texts.items() if c > 1] == []


def test_set_is_large_enough():
    assert len(QUESTIONS) >= 150


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q["id"])
def test_gold_answers_stand_in_their_documents_at_their_offsets(q):
    seen = set()
    for a in q["answers"]:
        assert set(a) == {"text", "doc_id", "start", "end"}
        assert a["doc_id"] in DOC_TEXT, f"unknown document {a['doc_id']}"
        text = DOC_TEXT[a["doc_id"]]
        assert 0 <= a["start"] < a["end"] <= len(text)
        assert text[a["start"]:a["end"]] == a["text"]
        assert a["text"] == a["text"].strip(), "answer has surrounding whitespace"
        assert normalize_answer(a["text"]), "answer is punctuation only"
        # never page furniture: table pipes, image links, the e-paper metadata line
        assert "|" not in a["text"] and "![" not in a["text"]
        assert not is_furniture_line(_line_of(text, a["start"], a["end"]))
        key = (a["doc_id"], a["start"], a["end"])
        assert key not in seen, "duplicate answer entry"
        seen.add(key)


@pytest.mark.parametrize("q", [q for q in QUESTIONS if q["answers"]], ids=lambda q: q["id"])
def test_each_gold_answer_scores_full_marks_against_its_own_question(q):
    for a in q["answers"]:
        assert score(a["text"], q["answers"]) == (1.0, 1.0)


def test_unanswerable_questions_are_marked_consistently():
    for q in QUESTIONS:
        unanswerable = q["kind"] == "unanswerable"
        assert q["no_answer"] is unanswerable, q["id"]
        assert (q["answers"] == []) is unanswerable, q["id"]
    assert sum(q["no_answer"] for q in QUESTIONS) >= 25


def test_each_document_has_at_least_twenty_answerable_questions():
    per_doc = Counter()
    for q in QUESTIONS:
        for doc_id in {a["doc_id"] for a in q["answers"]}:
            per_doc[doc_id] += 1
    assert set(per_doc) == set(DOC_TEXT)
    for doc_id in DOC_TEXT:
        assert per_doc[doc_id] >= 20, (doc_id, per_doc[doc_id])


def test_kinds_are_from_the_allowed_list_and_all_present():
    kinds = Counter(q["kind"] for q in QUESTIONS)
    assert set(kinds) <= KINDS
    assert set(kinds) == KINDS, f"missing kinds: {KINDS - set(kinds)}"


def test_tags_are_known_and_match_the_question():
    for q in QUESTIONS:
        tags = set(q["tags"])
        assert tags <= TAGS, q["id"]
        traditional = to_simplified(q["question"]) != q["question"]
        assert ("traditional_question" in tags) is traditional, q["id"]
        about_traditional = any(a["doc_id"] == TRADITIONAL_DOC for a in q["answers"])
        assert ("simplified_about_traditional" in tags) is (about_traditional and not traditional), q["id"]
        if len({a["doc_id"] for a in q["answers"]}) > 1:
            assert "multi_answer" in tags, q["id"]
        if "multi_answer" in tags:
            places = {(a["doc_id"], a["start"]) for a in q["answers"]}
            assert len(places) > 1, q["id"]


def test_coverage_of_scripts_and_multiple_answers():
    tags = Counter(t for q in QUESTIONS for t in q["tags"])
    assert tags["traditional_question"] >= 12
    assert tags["simplified_about_traditional"] >= 12
    assert tags["multi_answer"] >= 8


def test_answers_keep_the_source_script():
    """Gold answers are quoted, so answers in 000 keep traditional characters."""
    trad = [a for q in QUESTIONS for a in q["answers"] if a["doc_id"] == TRADITIONAL_DOC]
    assert any(to_simplified(a["text"]) != a["text"] for a in trad)
    assert any(a["text"] == "鍾元" for a in trad)
