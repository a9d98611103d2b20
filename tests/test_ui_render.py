"""The chat page's HTML, without a browser: highlighting at the citation
offsets, escaping of document text, the "not found" note, folded alternatives,
and the two steps of a question (``ui.chat.prepare_turn`` / ``answer_turn``)."""
from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from qa.types import Answer, Citation, Document
from ui import render

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ALLOWED_TAGS = {"section", "div", "span", "mark", "blockquote", "details", "summary", "ol", "li", "b", "i"}


class Tree(HTMLParser):
    """Tags seen, and the text inside each ``class``-named element of interest."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[tuple[str, dict, list[str]]] = []
        self.texts: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.stack.append((tag, attrs, []))

    def handle_endtag(self, tag):
        t, attrs, buf = self.stack.pop()
        assert t == tag, f"unbalanced HTML: <{t}> closed by </{tag}>"
        text = "".join(buf)
        for cls in (attrs.get("class") or "").split():
            self.texts.setdefault(cls, []).append(text)
        if self.stack:
            self.stack[-1][2].append(text)

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


def parse(markup: str) -> Tree:
    t = Tree()
    t.feed(markup)
    t.close()
    assert not t.stack, "unclosed tags"
    return t


def make_doc(text: str, doc_id="d1", title="上虞:全面建设高水平“创新强区、品质名城”", date="2021-02-23",
             source="浙江日报") -> Document:
    return Document(doc_id=doc_id, title=title, text=text, source=source, date=date)


def cite(doc: Document, quote: str, sentence: str, nth: int = 0) -> Citation:
    s_start = doc.text.index(sentence)
    start = doc.text.index(quote, s_start)
    for _ in range(nth):
        start = doc.text.index(quote, start + 1)
    end = start + len(quote)
    s_end = s_start + len(sentence)
    return Citation(doc_id=doc.doc_id, title=doc.title, start=start, end=end, quote=quote, sentence=sentence,
                    sentence_start=s_start, sentence_end=s_end, passage_start=0, passage_end=len(doc.text),
                    source=doc.source, date=doc.date)


TEXT = ("浙江日报 数字报纸\n\n率先走出争创社会主义现代化先行省的区域发展之路。\n\n"
        "是的,这一年,上虞新材料产业交出了一份亮丽的“成绩单”:目前上虞区集聚规上新材料产业148家,"
        "2020年实现工业总产值604.5亿元,增长16.7%。产值规模占规上工业总产值超1/3。\n")
SENT = "是的,这一年,上虞新材料产业交出了一份亮丽的“成绩单”:目前上虞区集聚规上新材料产业148家,2020年实现工业总产值604.5亿元,增长16.7%。"


@pytest.fixture
def doc():
    return make_doc(TEXT)


@pytest.fixture
def answer(doc):
    main = cite(doc, "604.5亿元", SENT)
    alt1 = cite(doc, "148家", SENT)
    alt2 = cite(doc, "16.7%", SENT)
    return Answer(question="新材料产业产值是多少", text="604.5亿元", score=0.89, no_answer=False,
                  citations=[main], kind="amount", timings={"total_ms": 21.4},
                  alternatives=[Answer("新材料产业产值是多少", "148家", 0.81, False, [alt1]),
                                Answer("新材料产业产值是多少", "16.7%", 0.67, False, [alt2])])


def test_highlight_is_exactly_the_cited_span(doc, answer):
    out = render.render_answer(answer, {doc.doc_id: doc})
    t = parse(out)
    marks = t.texts["qa-hl"]
    # main sentence + main document panel + 2 alternatives × (sentence + panel)
    assert marks[:2] == ["604.5亿元", "604.5亿元"]
    assert sorted(marks[2:]) == sorted(["148家", "148家", "16.7%", "16.7%"])
    assert t.texts["qa-answer-text"] == ["604.5亿元"]


def test_document_panel_is_the_whole_text_with_the_span_at_its_offsets(doc, answer):
    c = answer.citations[0]
    body = render.render_document(doc.text, c)
    assert html.unescape(body.replace('<mark class="qa-hl">', "").replace("</mark>", "")
                         .replace('<span class="qa-hl-sentence">', "").replace("</span>", "")) == doc.text
    before, rest = body.split('<mark class="qa-hl">', 1)
    inside, after = rest.split("</mark>", 1)
    strip = lambda s: html.unescape(s.replace('<span class="qa-hl-sentence">', "").replace("</span>", ""))  # noqa: E731
    assert len(strip(before)) == c.start
    assert strip(inside) == doc.text[c.start:c.end] == "604.5亿元"
    assert len(strip(after)) == len(doc.text) - c.end
    # the sentence around it is tinted, exactly the cited sentence
    t = parse(body)
    assert t.texts["qa-hl-sentence"] == [SENT]


def test_the_same_quote_twice_highlights_the_cited_occurrence():
    text = "甲。产值是100亿元。后来产值还是100亿元,没有变。"
    d = make_doc(text)
    sent = "后来产值还是100亿元,没有变。"
    c = cite(d, "100亿元", sent)
    assert c.start == text.rindex("100亿元")
    body = render.render_document(text, c)
    before = html.unescape(body.split('<mark class="qa-hl">')[0].replace('<span class="qa-hl-sentence">', ""))
    assert before == text[:c.start]


def test_source_card_shows_title_date_source_and_sentence(doc, answer):
    out = render.render_citation(answer.citations[0], {doc.doc_id: doc})
    t = parse(out)
    assert t.texts["qa-doc-title"] == ["《上虞:全面建设高水平“创新强区、品质名城”》"]
    assert t.texts["qa-doc-date"] == ["2021-02-23"]
    assert t.texts["qa-doc-source"] == ["浙江日报"]
    assert t.texts["qa-cite-sentence"] == [SENT]
    assert any(tag == "details" and "qa-doc" in a.get("class", "") for tag, a in t.tags)
    assert "open" not in next(a for tag, a in t.tags if tag == "details")   # folded until asked


def test_without_the_document_the_card_has_no_panel(answer):
    out = render.render_citation(answer.citations[0], {})
    assert "qa-doc-body" not in out and "qa-doc-missing" in out
    out = render.render_citation(answer.citations[0], None)
    assert "qa-doc-body" not in out and "qa-doc-missing" not in out
    assert "604.5亿元" in out


def test_document_text_is_escaped_everywhere():
    text = EVIL + "\n2020年,测试园区实现工业总产值321亿元,增长9.9%。<b>粗</b> & \"引号\" 'x' {{value}} ${value}\n"
    d = make_doc(text, doc_id='evil"><img src=x onerror=alert(3)>', title=EVIL, source=EVIL, date=EVIL)
    sent = "2020年,测试园区实现工业总产值321亿元,增长9.9%。"
    c = cite(d, "321亿元", sent)
    a = Answer(question=EVIL + "产值是多少", text="321亿元", score=0.9, no_answer=False, citations=[c],
               alternatives=[Answer("q", EVIL, 0.5, False, [c])])
    out = render.render_turn(a, {d.doc_id: d})
    t = parse(out)
    assert {tag for tag, _ in t.tags} <= ALLOWED_TAGS
    for _, attrs in t.tags:
        assert not any(k.startswith("on") or k in ("src", "href", "style") for k in attrs)
    assert "<script" not in out and "<img" not in out and "<b>粗" not in out and "&lt;b&gt;粗" in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in out
    assert t.texts["qa-doc-title"] == [f"《{EVIL}》"] * 2
    assert t.texts["qa-doc-body"][0] == text          # shown as text, all of it
    assert t.texts["qa-bubble"] == [EVIL + "产值是多少"]


def test_not_found_is_a_calm_note_with_the_closest_content_folded(doc):
    c = cite(doc, "148家", SENT)
    a = Answer(question="火星上有多少个湖泊?", text="文档中没有找到这个问题的答案。", score=0.12, no_answer=True,
               alternatives=[Answer("火星上有多少个湖泊?", "148家", 0.12, False, [c])])
    out = render.render_answer(a, {doc.doc_id: doc})
    t = parse(out)
    assert 'data-no-answer="true"' in out
    assert t.texts["qa-none-text"] == ["文档中没有找到这个问题的答案。"]
    assert t.texts["qa-badge"] == ["未找到"]
    assert "qa-answer-text" not in t.texts       # no big "answer"
    assert "error" not in out.lower()
    alts = [attrs for tag, attrs in t.tags if tag == "details" and "qa-alts" in attrs.get("class", "")]
    assert len(alts) == 1 and "open" not in alts[0]
    assert "最接近的内容" in t.texts["qa-alts"][0]


def test_not_found_without_candidates():
    a = Answer(question="火星上有多少个湖泊?", text="文档中没有找到这个问题的答案。", score=0.0, no_answer=True)
    t = parse(render.render_answer(a))
    assert t.texts["qa-none-text"] == ["文档中没有找到这个问题的答案。"]
    assert "qa-alts" not in t.texts


def test_alternatives_are_folded_and_apart_from_the_answer(doc, answer):
    out = render.render_answer(answer, {doc.doc_id: doc})
    head, folded = out.split('<details class="qa-alts"', 1)
    assert "604.5亿元" in head and "qa-alt-text" not in head
    assert folded.startswith(">")                    # no "open": folded
    t = parse(out)
    assert t.texts["qa-alt-text"] == ["148家", "16.7%"]
    assert "其他可能的答案" in t.texts["qa-alts"][0]
    assert "2" in t.texts["qa-count"]


def test_no_alternatives_no_fold(doc, answer):
    answer.alternatives = []
    assert "qa-alts" not in render.render_answer(answer, {doc.doc_id: doc})


def test_score_is_shown_with_two_decimals(doc, answer):
    t = parse(render.render_answer(answer, {doc.doc_id: doc}))
    assert t.texts["qa-score"][0] == "置信度 0.89"
    assert render.score_level(0.89) == "high" and render.score_level(0.5) == "mid" and render.score_level(0.1) == "low"


def test_traditional_question_gets_traditional_labels():
    text = "國家級開發區實現整合,2019年經濟總量達到1350億,其中規上工業產值1044億。"
    d = make_doc(text, title="深化改革與創新驅動", date=None, source="環球網")
    c = cite(d, "1350億", text)
    a = Answer(question="經開區2019年經濟總量是多少", text="1350億", score=1.0, no_answer=False, citations=[c],
               script="traditional")
    t = parse(render.render_answer(a, {d.doc_id: d}))
    assert t.texts["qa-sources-title"] == ["來源"]
    assert t.texts["qa-answer-text"] == ["1350億"]
    assert "qa-doc-date" not in t.texts        # no date: nothing shown for it
    na = Answer(question="經開區有多少個湖泊", text="文件中沒有找到這個問題的答案。", score=0, no_answer=True,
                script="traditional")
    t = parse(render.render_answer(na))
    assert t.texts["qa-badge"] == ["未找到"]


def test_long_sentence_is_cut_around_the_span_in_the_card_but_whole_in_the_panel():
    sentence = "甲" * 300 + "答案在这里" + "乙" * 300 + "。"
    text = "标题\n" + sentence + "\n"
    d = make_doc(text)
    c = cite(d, "答案在这里", sentence)
    card = parse(render.render_citation(c, {d.doc_id: d}))
    shown = card.texts["qa-cite-sentence"][0]
    assert len(shown) < 200 and shown.startswith("…") and shown.endswith("…")
    assert "答案在这里" in card.texts["qa-hl"]
    assert sentence in card.texts["qa-doc-body"][0]


def test_huge_document_is_windowed_around_the_sentence():
    text = "前" * 50_000 + "产值是604.5亿元。" + "后" * 50_000
    d = make_doc(text)
    c = cite(d, "604.5亿元", "产值是604.5亿元。")
    body = render.render_document(text, c, max_chars=1000)
    t = parse(body)
    assert t.texts["qa-hl"] == ["604.5亿元"]
    assert len(body) < 1500
    assert len(t.texts["qa-omitted"]) == 2 and "省略" in t.texts["qa-omitted"][0]


def test_offsets_out_of_range_do_not_break_rendering(doc):
    bad = Citation(doc_id=doc.doc_id, title=doc.title, start=10_000, end=5, quote="x", sentence="别的句子",
                   sentence_start=-3, sentence_end=99_999, passage_start=0, passage_end=0)
    out = render.render_citation(bad, {doc.doc_id: doc})
    parse(out)
    assert "别的句子" in out


def test_conversation_notice_and_pending():
    assert "qa-empty" in render.render_conversation([])
    conv = render.render_conversation(["<section class=\"qa-turn\">a</section>", "<section class=\"qa-turn\">b</section>"])
    assert conv.count("qa-turn") == 2 and "qa-empty" not in conv
    assert render.render_notice("") == ""
    n = render.render_notice("问题为空 <b>")
    assert 'role="alert"' in n and "&lt;b&gt;" in n
    p = parse(render.render_pending("新材料<b>产值"))
    assert p.texts["qa-bubble"] == ["新材料<b>产值"]


# ---- the two steps of a question, as the page runs them (no Gradio needed) ----

class FakePipe:
    def __init__(self, doc, answer):
        self.index = type("I", (), {"documents": {doc.doc_id: doc}})()
        self._answer = answer
        self.asked = []

    def answer(self, q):
        self.asked.append(q)
        return self._answer


def test_prepare_turn_rejects_empty_and_too_long_questions():
    from ui.chat import prepare_turn
    chat, q, notice = prepare_turn("   ", [])
    assert chat is None and q is None and "问题为空" in notice
    chat, q, notice = prepare_turn("问" * 5000, [])
    assert chat is None and q is None and "问题太长" in notice
    chat, q, notice = prepare_turn("  新材料产业产值是多少 ", ["<section class=\"qa-turn\">old</section>"])
    assert q == "新材料产业产值是多少" and notice == ""
    assert "old" in chat and "qa-turn--pending" in chat


def test_answer_turn_appends_to_this_session_only(doc, answer):
    from ui.chat import MAX_TURNS, answer_turn
    pipe = FakePipe(doc, answer)
    mine: list[str] = []
    chat, turns, notice = answer_turn(pipe, "新材料产业产值是多少", mine)
    assert mine == [] and len(turns) == 1 and notice == ""      # a new list: no shared mutable state
    assert "604.5亿元" in chat and "qa-turn--pending" not in chat
    many = ["<section class=\"qa-turn\">x</section>"] * (MAX_TURNS + 5)
    _, turns, _ = answer_turn(pipe, "q", many)
    assert len(turns) == MAX_TURNS


def test_answer_turn_shows_errors_as_a_notice(doc, answer):
    from qa.errors import IndexError_
    from ui.chat import answer_turn

    class Broken(FakePipe):
        def answer(self, q):
            raise self.exc

    pipe = Broken(doc, answer)
    pipe.exc = IndexError_("索引已损坏 (run: qa index --rebuild)")
    chat, turns, notice = answer_turn(pipe, "q", [])
    assert turns == [] and "qa index --rebuild" in notice and "qa-empty" in chat
    pipe.exc = RuntimeError("boom <x>")
    chat, turns, notice = answer_turn(pipe, "q", [])
    assert parse(notice).texts["qa-notice"] == ["出错了，请稍后再试（内部错误：RuntimeError）"]   # no "<x>"


def test_build_app_queues_several_sessions_at_once(doc, answer):
    pytest.importorskip("gradio", reason="gradio is not installed")
    from ui.app import CONCURRENCY, build_app, launch_kwargs
    demo = build_app(pipeline=FakePipe(doc, answer))
    assert CONCURRENCY >= 4
    assert demo._queue.default_concurrency_limit == CONCURRENCY
    kw = launch_kwargs()
    assert "allowed_paths" not in kw and "mark.qa-hl" in kw["css"]
