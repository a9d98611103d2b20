"""Hostile and odd questions, through ``answer()`` and through ``qa ask``; and load.

Outcome for every question: a clear one-line message with exit 2 (``UsageError``
in-process), or a normal answer / "not found" with exit 0 — never a traceback,
and every citation quotes its document exactly (``text[start:end] == quote``).
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from qa import answer
from qa.errors import UsageError
from qa.api import get_pipeline
from qa.question import MAX_QUESTION_CHARS
from qa.types import Answer

USAGE, ANY = "usage", "any"

# id → (question, expected outcome)
QUESTIONS = {
    "empty": ("", USAGE),
    "whitespace": (" \t\n\u3000\r ", USAGE),
    "only_control": ("\x00\x01\x1b\x7f", USAGE),
    "private_use": ("\ue000\uf8ff", USAGE),
    "100k_chars": ("经" * 100_000, USAGE),
    "just_over_limit": ("新" * (MAX_QUESTION_CHARS + 1), USAGE),
    "at_limit": ("新材料产业产值是多少" * (MAX_QUESTION_CHARS // 10), ANY),
    "punctuation": ("？！。，、；：“”（）……!?.,;", ANY),
    "emoji": ("😀🎉👍🏽🇨🇳", ANY),
    "emoji_in_question": ("新材料产业产值是多少😀", ANY),
    "zero_width_only": ("\u200b\u200c\u200d\ufeff", ANY),
    "bidi_override": ("\u202e新材料产业产值是多少\u202c", ANY),
    "combining_marks": ("e\u0301" * 40, ANY),
    "control_chars": ("新材料\x00产业\x07产值\x1b[31m是多少\x7f", ANY),
    "lone_surrogates": ("\ud800新材料产业产值是多少\udfff", ANY),
    "english": ("What is the output value of the new materials industry?", ANY),
    "mixed": ("GDP 2019年 經開區 economy 总量?", ANY),
    "html_script": ("<script>alert('x')</script><b>新材料</b>产值", ANY),
    "sql": ("'; DROP TABLE documents; -- 新材料产业产值是多少", ANY),
    "format_string": ("{0} %s %n ${HOME} $(rm -rf /) 新材料", ANY),
    "newlines": ("新材料\n产业\r\n产值是多少", ANY),
}


@pytest.fixture(scope="module")
def seeds():
    return get_pipeline()


@pytest.mark.parametrize("case", list(QUESTIONS))
def test_answer_api(case, seeds, check_citations):
    question, outcome = QUESTIONS[case]
    if outcome == USAGE:
        with pytest.raises(UsageError) as err:
            answer(question)
        assert str(err.value) and "\n" not in str(err.value)
        return
    a = answer(question)
    assert isinstance(a, Answer)
    check_citations(a, seeds.index.documents)
    if a.no_answer:
        assert "没有找到" in a.text or "沒有找到" in a.text


@pytest.mark.parametrize("bad", [None, 42, b"\xe6\x96\xb0", ["新材料"]])
def test_non_string_question_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        answer(bad)


def test_a_real_question_survives_the_noise_around_it(seeds):
    for q in ["新材料产业产值是多少😀", "\u202e新材料产业产值是多少\u202c", "新材料\x00产业\x07产值是多少"]:
        assert answer(q).text == "604.5亿元", q


# --- the command line ---------------------------------------------------------

# Command-line forms: argv can hold neither NUL nor lone surrogates, so those come
# as raw bytes (Python decodes undecodable argv bytes to lone surrogates).
CLI_CASES = {
    "empty": ([""], 2),
    "whitespace": ([" \t\u3000 "], 2),
    "no_question": ([], 2),
    "100k_ascii": (["a" * 100_000], 2),                     # one argument (< 128 KiB, the kernel's limit)
    "100k_chinese": (["经" * 10_000] * 10, 2),               # 100,000 characters over ten arguments
    "punctuation": (["？！。，、；：……"], 0),
    "emoji": (["😀🎉👍🏽"], 0),
    "control_chars": (["新材料\x07产业\x1b[31m产值是多少\x7f"], 0),
    "non_utf8_bytes": ([b"\xff\xfe\xb5"], 0),
    "non_utf8_in_question": ([b"\xe6\x96\xb0\xe6\x9d\x90\xe6\x96\x99\xff\xfe\xb5\xe4\xba\xa7\xe5\x80\xbc"], 0),
    "english_mixed": (["What", "is", "經開區", "2019年", "GDP?"], 0),
    "html_script": (["<script>alert('x')</script>新材料产值"], 0),
    "sql": (["'; DROP TABLE documents; --"], 0),
    "option_like": (["--", "--json"], 0),                   # a question that looks like an option
}


def _assert_clean_exit(r, expected_rc, json_out=False):
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == expected_rc, (r.returncode, r.stdout, r.stderr)
    if expected_rc == 2:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qa: "), r.stderr
    elif not json_out:
        assert "答案" in r.stdout or "可能是" in r.stdout     # an answer, sure or 「可能是…」


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_ask(case, qa_cli):
    argv, rc = CLI_CASES[case]
    r = qa_cli("ask", *argv)
    _assert_clean_exit(r, rc)


@pytest.mark.parametrize("question", [b"\xff\xfe\xb5", "新材料产业产值是多少".encode() + b"\xc0\x80",
                                      "<b>经开区</b> 2019年 GDP".encode()])
def test_cli_ask_json_citations_hold(question, qa_cli, seeds, check_citations):
    r = qa_cli("ask", "--json", question)
    _assert_clean_exit(r, 0, json_out=True)
    check_citations(Answer.from_dict(json.loads(r.stdout)), seeds.index.documents)


def test_cli_ask_in_the_c_locale(qa_cli):
    """A bare server or cron job: LC_ALL=C still prints Chinese (Python's UTF-8 mode)."""
    r = qa_cli("ask", "新材料产业产值是多少", env={"LC_ALL": "C", "LANG": "C"})
    _assert_clean_exit(r, 0)
    assert "604.5亿元" in r.stdout


# --- load: 16 threads at once ---------------------------------------------------

LOAD_QUESTIONS = [
    "新材料产业产值是多少", "經開區2019年經濟總量是多少", "衢州高新区什么时候升级为国家级",
    "2017年要确保实到外资多少", "三大产业链是什么", "城乡居民收入分别是多少",
    "經開區在全國國家級開發區中排名第幾", "杭州灣上虞經開區管委會副主任叫什麼名字?",
    "财政总收入是多少", "北京大学品牌价值研究平台的秘书长是谁?", "钟元在经开区担任什么职务?",
    "北大经济学院西南分院的执行副院长叫什么?", "上虞的GDP在2030年预计是多少", "火星上有多少个湖泊?",
    "经开区2019年经济总量达到多少", "新材料產業產值是多少",
]


def _key(a: Answer):
    return (a.text, a.no_answer, round(a.score, 6), [(c.doc_id, c.start, c.end) for c in a.citations],
            [(x.text, [(c.doc_id, c.start, c.end) for c in x.citations]) for x in a.alternatives])


def test_sixteen_threads_get_the_same_answers_as_one(seeds, check_citations):
    assert len(LOAD_QUESTIONS) == 16
    sequential = {q: _key(answer(q)) for q in LOAD_QUESTIONS}
    barrier = threading.Barrier(16)

    def ask(q):
        barrier.wait()           # all sixteen start together
        a = answer(q)
        return _key(a), a

    with ThreadPoolExecutor(16) as pool:
        results = dict(zip(LOAD_QUESTIONS, pool.map(ask, LOAD_QUESTIONS)))
    for q, (key, a) in results.items():
        assert key == sequential[q], q
        check_citations(a, seeds.index.documents)


def test_sixteen_threads_on_a_cold_pipeline(tiny_index, tiny_qa, tiny_pipeline, check_citations):
    """First use from 16 threads at once: the pipeline is loaded once and every answer is right."""
    from qa import api as pl
    with pl._LOCK:
        pl._PIPELINES.pop((str(tiny_index), None, "hybrid", None), None)
    barrier = threading.Barrier(16)
    work = [tiny_qa[i % len(tiny_qa)] for i in range(16)]

    def ask(item):
        barrier.wait()
        return answer(item[0], index=str(tiny_index))

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, work))
    assert len({id(p) for k, p in pl._PIPELINES.items() if k[0] == str(tiny_index)}) == 1
    for (question, expected), a in zip(work, answers):
        assert a.text == expected, question
        check_citations(a, tiny_pipeline.index.documents)
