"""The answer decision (qa/decide): what it sees in a candidate, its three states, and what
a user gets through ``answer()`` (states, strictness, the page's examples)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from qa.decide import DECISION_FILE, AnswerDecision
from qa.decide.features import FEATURES, candidate_features
from qa.index.store import IndexData
from qa.pipeline import score_sentences
from qa.question import analyze_question
from qa.types import Candidate, Chunk, Document, PassageHit, Sentence

TEXT = ("2021年，上虞区新材料产业实现产值604.5亿元，同比增长18%。"
        "全区常住人口3.7万人，其中外来人口占一半。")


def _index(text: str = TEXT) -> IndexData:
    import re
    sentences = [Sentence("d1", m.start(), m.end()) for m in re.finditer(r"[^。]*。", text)]
    index = IndexData(manifest={}, documents={"d1": Document(doc_id="d1", title="t", text=text)},
                      chunks=[Chunk(0, "d1", 0, len(text), text)], sentences=sentences, chunk_index=None,
                      sentence_vectors=np.zeros((len(sentences), 4), dtype=np.float32))
    return index


def _candidate(index, quote: str, question, diff: float = 4.0) -> Candidate:
    text = index.documents["d1"].text
    s = text.index(quote)
    sent = next(x for x in index.sentences if x.start <= s < x.end)
    hit = PassageHit(index.chunks[0], 0.8, 0)
    q = question
    q.vector = np.zeros(4, dtype=np.float32)
    score_sentences(index, q, [hit])
    return Candidate("d1", s, s + len(quote), quote, 0.5, "neural", sent.start, sent.end, hit,
                     features={"span_logit": diff, "null_logit": 0.0})


def _row(question_text: str, quote: str) -> dict:
    index = _index()
    q = analyze_question(question_text)
    row = candidate_features(q, [_candidate(index, quote, q)], index)[0]
    return dict(zip(FEATURES, row.tolist()))


def test_a_year_the_sentence_contradicts_is_seen_and_counts_against_the_span():
    asked_right = _row("2021年新材料产业产值是多少", "604.5亿元")
    asked_other = _row("2019年新材料产业产值是多少", "604.5亿元")
    assert asked_right["year_match"] == 1.0 and asked_right["year_conflict"] == 0.0
    assert asked_other["year_match"] == 0.0 and asked_other["year_conflict"] == 1.0
    model = AnswerDecision.load()
    (p_right,) = model.pool_probabilities(np.array([[asked_right[f] for f in FEATURES]]), ["604.5亿元"])
    (p_other,) = model.pool_probabilities(np.array([[asked_other[f] for f in FEATURES]]), ["604.5亿元"])
    assert p_other < p_right


def test_the_unit_the_question_asks_for_is_checked_in_the_span():
    whole = _row("全区常住人口是多少人", "3.7万人")
    cut = _row("全区常住人口是多少人", "3.7万")
    assert whole["unit_asked"] == cut["unit_asked"] == 1.0
    assert whole["unit_present"] == 1.0 and cut["unit_present"] == 0.0


def test_an_answer_that_repeats_the_question_is_seen():
    assert _row("新材料产业产值是多少", "新材料产业")["echo"] == 1.0
    assert _row("新材料产业产值是多少", "604.5亿元")["echo"] == 0.0


def test_how_high_the_retrieval_score_is_does_not_change_what_the_decision_sees():
    """Min-max fusion gives the best passage of any collection a score near 1, answerable or
    not; only the fitting data's retrieval unanswerables (gold paragraph dropped after
    retrieval) have a lower one. A feature that read it would learn that artefact."""
    index = _index()
    q = analyze_question("新材料产业产值是多少")
    c = _candidate(index, "604.5亿元", q)
    as_best = candidate_features(q, [c], index)[0]
    from dataclasses import replace
    as_leftover = candidate_features(q, [replace(c, passage=replace(c.passage, score=0.45))], index)[0]
    assert as_best.tolist() == as_leftover.tolist()
    assert "passage_score" not in FEATURES and "passage_rank" in FEATURES


def test_three_states_from_two_thresholds():
    model = AnswerDecision.load()
    hi, lo = model.answer_threshold, model.probable_threshold
    assert 0.0 < lo <= hi < 1.0
    assert model.state(hi) == "answer"
    assert model.state(hi - 1e-6) == ("probable" if lo < hi else "not_found")
    assert model.state(lo - 1e-6) == "not_found"
    # a stricter user: the same probability is no longer an answer
    assert model.state(hi, min_confidence=min(1.0, hi + 0.05)) != "answer"


def test_the_model_file_says_what_it_was_fitted_on_and_never_the_seeds():
    meta = json.loads(DECISION_FILE.read_text(encoding="utf-8"))
    assert meta["features"] == list(FEATURES)
    fitted = " ".join(meta["fitted_on"].values())
    for held_out in ("seed", "drcd_dev", "antiterror_dev", "cail2019_dev", "dureader_robust_dev"):
        assert held_out not in fitted
    assert (DECISION_FILE.parent / "CARD.md").exists()


def test_a_model_fitted_on_other_features_is_a_clear_model_error(tmp_path):
    from qa.errors import ModelError
    d = json.loads(DECISION_FILE.read_text(encoding="utf-8"))
    d["features"] = d["features"][:-1] + ["something_else"]
    bad = tmp_path / "answer-decision.json"
    bad.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ModelError, match="refit"):
        AnswerDecision.load(bad)
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable"):
        AnswerDecision.load(bad)


# ------------------------------------------------------------------ through answer()

@pytest.fixture(scope="module")
def seeds():
    from qa.read.neural.backends import available_backends
    if not available_backends():
        pytest.skip("the combined reader needs onnxruntime (or torch)")
    from qa.api import get_pipeline
    return get_pipeline()


def test_the_page_examples_are_questions_the_seeds_answer(seeds):
    from ui.app import EXAMPLES
    for q in EXAMPLES:
        a = seeds.answer(q)
        # answered; 「可能是…」 where the calibrated cut says the score is not yet sure
        # (新材料产业产值是多少 → 604.5亿元 at 0.62, below the 0.73 answer threshold)
        assert a.state in ("answer", "probable") and not a.no_answer, (q, a.text, a.score)
        assert a.citations and a.citations[0].quote


def test_a_question_the_seeds_do_not_answer_is_not_found_but_names_the_nearest(seeds):
    a = seeds.answer("火星上有多少个湖泊?")
    assert a.state == "not_found" and a.no_answer
    assert a.alternatives and a.alternatives[0].citations     # 「最接近的内容」 with its citation


def test_min_confidence_makes_the_same_answer_stricter(seeds):
    from qa.api import answer
    from qa.errors import UsageError
    sure = answer("經開區2019年經濟總量是多少")
    assert sure.state == "answer"
    strict = answer("經開區2019年經濟總量是多少", min_confidence=1.0)
    assert strict.state != "answer" or strict.score >= 1.0
    for bad in (-0.1, 1.5, "high", True):
        with pytest.raises(UsageError):
            answer("新材料产业产值是多少", min_confidence=bad)


def test_the_decision_reader_states_a_calibrated_probability_and_a_state(seeds):
    from qa.pipeline import Pipeline
    from qa.read.base import make_reader
    pipe = Pipeline(seeds.index, seeds.encoder, "hybrid", make_reader("decision"), seeds.index_dir)
    assert 0.0 < pipe.reader.probable_threshold < pipe.reader.threshold < 1.0
    for q in ("衢州高新区什么时候升级为国家级高新区", "火星上有多少个湖泊?"):
        a = pipe.answer(q)
        assert a.state in ("answer", "probable", "not_found") and 0.0 <= a.score <= 1.0
        for c in a.citations:
            assert pipe.index.documents[c.doc_id].text[c.start:c.end] == c.quote


def test_every_state_is_in_the_json(seeds):
    a = seeds.answer("新材料产业产值是多少")
    d = a.to_dict()
    assert d["state"] in ("answer", "probable", "not_found")
    from qa.types import Answer
    assert Answer.from_dict(d).state == a.state


def test_the_default_reader_has_three_states_from_its_calibrated_cut(seeds, tmp_path):
    """The combined reader abstains below its threshold, says 「可能是…」 from there to the
    answer threshold chosen on public questions (tools.decision.states), and answers above."""
    from qa.read.combined import STATES_FILE, load_answer_threshold
    reader = seeds.reader
    assert reader.probable_threshold == reader.threshold <= reader.answer_threshold <= 1.0
    assert seeds.thresholds() == (reader.answer_threshold, reader.threshold)
    from tools.decision.sets import CHECK_SETS
    card = json.loads(STATES_FILE.read_text(encoding="utf-8"))
    assert card["answer_threshold"] == round(reader.answer_threshold, 2) and "P(right)" in card["rule"]
    assert set(card["fitted_on"]).isdisjoint(CHECK_SETS) and "seed" not in json.dumps(card["fitted_on"])
    damaged = tmp_path / "combined-states.json"
    damaged.write_text("{not json", encoding="utf-8")
    assert load_answer_threshold(0.37, damaged) == 0.37          # two states, never a crash
    damaged.write_text('{"answer_threshold": 0.1}', encoding="utf-8")
    assert load_answer_threshold(0.37, damaged) == 0.37          # never below the abstain cut
