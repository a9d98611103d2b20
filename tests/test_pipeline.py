"""End-to-end answers over the seed documents (the prebuilt seeds index)."""
import pytest

from qa import answer
from qa.errors import UsageError
from qa.api import get_pipeline

TRADITIONAL_DOC = "000_e0db5ce7d9f92f47.txt"


def check_citations(a):
    docs = get_pipeline().index.documents
    for cit in [c for x in [a, *a.alternatives] for c in x.citations]:
        text = docs[cit.doc_id].text
        assert text[cit.start:cit.end] == cit.quote
        assert text[cit.sentence_start:cit.sentence_end] == cit.sentence
        assert cit.sentence_start <= cit.start < cit.end <= cit.sentence_end
        assert cit.passage_start <= cit.sentence_start and cit.sentence_end <= cit.passage_end


def test_the_card_example():
    a = answer("新材料产业产值是多少")
    assert not a.no_answer
    assert a.text == "604.5亿元"
    cit = a.citations[0]
    assert cit.doc_id.startswith("001_") and cit.date == "2021-02-23"
    assert "604.5亿元" in cit.sentence
    check_citations(a)


def test_a_traditional_question_gets_a_traditional_answer():
    a = answer("上虞新材料產業2020年的工業總產值是多少")
    assert a.text == "604.5億元" and a.script == "traditional"
    assert a.citations[0].quote == "604.5亿元"


def test_simplified_question_about_the_traditional_document():
    a = answer("经开区2019年经济总量达到多少")
    assert a.text == "1350亿"
    assert a.citations[0].doc_id == TRADITIONAL_DOC
    assert a.citations[0].quote == "1350億"
    check_citations(a)


def test_traditional_question_about_the_traditional_document():
    a = answer("經開區2019年經濟總量是多少")
    assert a.text == "1350億"


@pytest.mark.parametrize("question, expected, doc", [
    ("衢州高新区什么时候升级为国家级高新区", "2013年12月", "003_"),
    ("2017年要确保实到外资多少", "8000万美元", "004_"),
    ("三大产业链是什么", "氟化工、有机硅、无机硅", "003_"),
    ("城乡居民收入分别是多少", "68309元和38044元", "001_"),
    ("經開區在全國國家級開發區中排名第幾", "第92位", "000_"),
])
def test_answers_of_each_kind(question, expected, doc):
    a = answer(question)
    assert a.text == expected
    assert a.citations[0].doc_id.startswith(doc)
    check_citations(a)


@pytest.mark.parametrize("question", [
    "上虞的GDP在2030年预计是多少",
    "火星上有多少个湖泊?",
])
def test_abstains_when_the_documents_do_not_say(question):
    a = answer(question)
    assert a.no_answer
    assert "没有找到" in a.text
    assert a.citations == []
    check_citations(a)


def test_not_found_is_said_in_the_questions_script():
    assert "沒有找到" in answer("火星上有多少個湖泊?").text


def test_alternatives_come_from_other_sentences_with_their_own_citations():
    a = answer("财政总收入是多少")
    check_citations(a)
    for alt in a.alternatives:
        assert alt.citations and alt.text != a.text


def test_retrieval_finds_the_right_document_in_either_script():
    pipe = get_pipeline()
    for q, doc in [("衢州高新区四区合一", "003_"), ("經開區落戶企業超過多少家", "000_"),
                   ("经开区落户企业超过多少家", "000_"), ("2017年工作计划的总体思路", "004_")]:
        hits = pipe.retrieve(q, top_k=3)
        assert any(h.chunk.doc_id.startswith(doc) for h in hits), q


def test_timings_are_reported_per_stage():
    a = answer("新材料产业产值是多少")
    assert {"encode_ms", "search_ms", "read_ms", "total_ms"} <= set(a.timings)


def test_to_dict_round_trips():
    from qa.types import Answer
    a = answer("新材料产业产值是多少")
    assert Answer.from_dict(a.to_dict()).to_dict() == a.to_dict()


@pytest.mark.parametrize("bad", ["", "   ", "\n\t", "问" * 5000])
def test_empty_or_huge_question_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        answer(bad)


def test_a_table_cell_is_cited_with_its_row_so_the_header_shows():
    """The seed 004's form table: 「发布单位: | 杭州湾上虞经开区 |」. The cells are separate sentences
    (no answer spans a pipe), but the cited context is the row, header included."""
    from qa.text.chunking import split_sentences, table_row
    from qa.types import Candidate
    pipe = get_pipeline()
    doc = pipe.index.documents["004_509121fd7d564b7b.txt"]
    start = doc.text.index("杭州湾上虞经开区 |")
    end = start + len("杭州湾上虞经开区")
    assert (start, end) in split_sentences(doc.text)                 # the cell alone is a sentence
    row = table_row(doc.text, start, end)
    assert doc.text[row[0]:row[1]] == "发布单位: | 杭州湾上虞经开区"
    cit = pipe.citation(Candidate(doc.doc_id, start, end, doc.text[start:end], 0.9,
                                  sentence_start=start, sentence_end=end))
    assert cit.quote == "杭州湾上虞经开区" and cit.sentence == "发布单位: | 杭州湾上虞经开区"
    assert doc.text[cit.sentence_start:cit.sentence_end] == cit.sentence
    plain = doc.text.index("2017年开发区的总体思路")                   # not a table row: unchanged
    assert table_row(doc.text, plain, plain + 4) == (plain, plain + 4)
