"""Follow-up questions on the chat page (issue 18, item 7): 「那2019年呢?」 and 「衢州的呢?」 are
completed from the question before (``qa.followup.complete``), answered as completed, and
the turn says how it was read: 「按『上虞区2019年的常住人口是多少?』回答」. Ordinary
questions are never rewritten."""
from __future__ import annotations

import pytest

from qa.followup import complete, is_followup
from qa.types import Answer

TEXTS = ["上虞区位于浙江省。衢州市高新区。经开区2019年经济总量达到1350亿。"]   # normalised texts


@pytest.mark.parametrize("question, previous, completed", [
    ("那2019年呢?", "上虞区2020年的常住人口是多少?", "上虞区2019年的常住人口是多少?"),
    ("2018年呢", "經開區2019年經濟總量是多少", "經開區2018年經濟總量是多少"),          # traditional kept
    ("那2019年呢？", "新材料产业产值是多少", "2019年新材料产业产值是多少"),             # no year: in front
    ("那么2017年度呢", "2020年新材料产业产值是多少", "2017年新材料产业产值是多少"),
    ("衢州的呢?", "上虞区2020年的常住人口是多少?", "衢州2020年的常住人口是多少?"),
    ("上虞的呢", "衢州市2020年的常住人口是多少", "上虞2020年的常住人口是多少"),         # 上虞区 is in the texts
    ("杭州市呢?", "新材料产业产值是多少", "杭州市的新材料产业产值是多少"),             # no place: in front
])
def test_followups_are_completed_from_the_question_before(question, previous, completed):
    assert is_followup(question)
    assert complete(question, previous, TEXTS) == completed


@pytest.mark.parametrize("question, previous", [
    ("新材料产业产值是多少", "上虞区2020年的常住人口是多少?"),       # a whole question
    ("那人口呢?", "上虞区2020年的常住人口是多少?"),                  # not a year or a place
    ("哪个区呢?", "上虞区2020年的常住人口是多少?"),                  # a question word of its own
    ("那2019年呢?", None), ("那2019年呢?", ""),                       # nothing before
    ("那2019年呢?", "那2018年呢?"),                                   # a follow-up is no base
    ("那上虞区2019年的常住人口和户籍人口分别是多少呢", "上虞区2020年的常住人口是多少?"),  # too long
])
def test_everything_else_is_left_as_it_is(question, previous):
    assert complete(question, previous, TEXTS) is None


def test_the_seed_questions_are_never_rewritten():
    import json
    from qa.paths import EVAL_SET
    questions = [json.loads(line)["question"] for line in EVAL_SET.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    assert questions
    for prev, q in zip(questions, questions[1:]):
        assert complete(q, prev, TEXTS) is None, q


class Pipe:
    def __init__(self):
        self.asked = []
        self.index = type("I", (), {"documents": {}, "chunks": [], "normalized": {"d": TEXTS[0]}})()

    def answer(self, q):
        self.asked.append(q)
        return Answer(question=q, text="83.4万人", score=0.8, no_answer=False)


def test_the_page_answers_the_completed_question_and_says_so():
    from ui.chat import ask_turn, restore_turns
    pipe = Pipe()
    out = ask_turn(pipe, "那2019年呢?", previous="上虞区2020年的常住人口是多少?")
    assert pipe.asked == ["上虞区2019年的常住人口是多少?"]
    assert "按『上虞区2019年的常住人口是多少?』回答" in out["html"]
    assert '<div class="qa-bubble">那2019年呢?</div>' in out["html"]            # what was typed
    assert out["record"]["question"] == "上虞区2019年的常住人口是多少?" and out["record"]["asked"] == "那2019年呢?"
    assert restore_turns(pipe, [out["record"]]) == [out["html"]]                # a reload shows it the same
    # not a follow-up, or nothing before: asked as typed, no note
    for q, prev in (("新材料产业产值是多少", "上虞区2020年的常住人口是多少?"), ("那2019年呢?", None)):
        out = ask_turn(pipe, q, previous=prev)
        assert pipe.asked[-1] == q and "qa-followup" not in out["html"] and "asked" not in out["record"]
