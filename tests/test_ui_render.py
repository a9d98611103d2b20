"""The chat page's HTML, without a browser: highlighting at the citation
offsets, escaping of document text, the "not found" note, folded alternatives,
the server's side of a question (``ui.chat.ask_turn``) and of a reload (``restore_turns``:
saved answers rendered again, no server paths), the document library, errors in Chinese."""
from __future__ import annotations

import html
import re
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


def test_conversation_and_notice():
    assert "qa-empty" in render.render_conversation([])
    conv = render.render_conversation(["<section class=\"qa-turn\">a</section>", "<section class=\"qa-turn\">b</section>"])
    assert conv.count("qa-turn") == 2 and "qa-empty" not in conv
    assert render.render_notice("") == ""
    n = render.render_notice("问题为空 <b>")
    assert 'role="alert"' in n and "&lt;b&gt;" in n


# ---- the server's side of the conversation, as ui/chat.js calls it (no Gradio needed) ----

class FakePipe:
    def __init__(self, doc, answer):
        self.index = type("I", (), {"documents": {doc.doc_id: doc}, "chunks": []})()
        self._answer = answer
        self.asked = []

    def answer(self, q):
        self.asked.append(q)
        return self._answer


def test_ask_turn_refuses_empty_and_too_long_questions_in_chinese(doc, answer):
    from ui.chat import ask_turn, empty_notice, too_long_notice
    pipe = FakePipe(doc, answer)
    for q in ("   ", None, "问" * 5000):
        out = ask_turn(pipe, q)
        assert out["ok"] is False and "html" not in out
        assert parse(out["notice"]).texts["qa-notice"]
    assert "问题为空" in ask_turn(pipe, "  ")["notice"] and "问题太长" in ask_turn(pipe, "问" * 5000)["notice"]
    assert pipe.asked == []                                       # never reached the pipeline
    # the browser checks the same way, with the same words
    assert "问题为空" in empty_notice()
    assert too_long_notice().format(n=5000) == "问题太长：5000 个字符，上限 1000 个"
    out = ask_turn(pipe, "  新材料产业产值是多少 ")
    assert out["ok"] and pipe.asked == ["新材料产业产值是多少"]


def test_ask_turn_gives_the_turn_and_a_record_without_server_paths(doc, answer):
    from ui.chat import ask_turn
    path_doc = make_doc(TEXT, doc_id="/srv/qahome/uploads/default/测试镇概况.txt",
                        source="/srv/qahome/uploads/default/测试镇概况.txt")
    main = cite(path_doc, "604.5亿元", SENT)
    a = Answer(question="新材料产业产值是多少", text="604.5亿元", score=0.89, no_answer=False, citations=[main],
               timings={"total_ms": 21.4, "read_ms": 3.0},
               alternatives=[Answer("新材料产业产值是多少", "148家", 0.81, False, [cite(path_doc, "148家", SENT)])])
    out = ask_turn(FakePipe(path_doc, a), "新材料产业产值是多少")
    assert out["ok"] and "604.5亿元" in out["html"] and "qa-turn--pending" not in out["html"]
    import json
    everything = out["html"] + json.dumps(out["record"], ensure_ascii=False)
    assert "/srv/" not in everything and "qahome" not in everything and "uploads/default" not in everything
    assert "测试镇概况.txt" in out["html"]                            # the file's name is shown, not its folder
    rec = out["record"]
    assert rec["text"] == "604.5亿元" and rec["timings"] == {"total_ms": 21.4}
    assert rec["citations"][0]["doc_id"] == render.doc_key(path_doc.doc_id)
    assert rec["alternatives"][0]["citations"][0]["source"] == "测试镇概况.txt"


def test_saved_records_render_again_with_todays_documents(doc, answer):
    from ui.chat import ask_turn, restore_turns
    pipe = FakePipe(doc, answer)
    first = ask_turn(pipe, "新材料产业产值是多少")
    again = restore_turns(pipe, [first["record"]])
    assert again == [first["html"]]                                # the same turn, document panel and all
    # the document gone from the collection: the answer stays, the panel goes
    gone = FakePipe(make_doc("别的文档。", doc_id="other"), answer)
    (html_gone,) = restore_turns(gone, [first["record"]])
    t = parse(html_gone)
    assert t.texts["qa-answer-text"] == ["604.5亿元"] and "qa-doc-body" not in t.texts
    assert "qa-doc-missing" in t.texts
    # the document changed under the citation: no panel highlighting the wrong text
    changed = FakePipe(make_doc(TEXT.replace("604.5", "999.9"), doc_id=doc.doc_id), answer)
    out = restore_turns(changed, [first["record"]])[0]
    main = out.split('<details class="qa-alts"')[0]
    assert "qa-doc-body" not in main and "qa-doc-missing" in main
    assert "999.9" not in "".join(parse(out).texts["qa-hl"])       # never the wrong span highlighted


@pytest.mark.parametrize("bad", [None, 3, "x", {}, {"question": 1}, {"question": "q", "text": "t"},
                                 {"question": "q", "text": "t", "score": "high", "no_answer": False},
                                 {"question": "q", "text": "t", "score": 1, "no_answer": False,
                                  "citations": [{"doc_id": "x", "start": "0"}]}])
def test_a_damaged_record_loses_only_itself(doc, answer, bad):
    from ui.chat import ask_turn, restore_turns
    pipe = FakePipe(doc, answer)
    good = ask_turn(pipe, "q")["record"]
    out = restore_turns(pipe, [good, bad, good])
    assert out[1] is None and out[0] == out[2] and "604.5亿元" in out[0]
    assert restore_turns(pipe, "not a list") == []


def test_restore_keeps_the_last_turns_only(doc, answer):
    from ui.chat import MAX_TURNS, ask_turn, restore_turns
    pipe = FakePipe(doc, answer)
    rec = ask_turn(pipe, "q")["record"]
    assert len(restore_turns(pipe, [rec] * (MAX_TURNS + 7))) == MAX_TURNS


def test_saved_record_html_is_escaped(doc, answer):
    from ui.chat import ask_turn, restore_turns
    rec = ask_turn(FakePipe(doc, answer), "q")["record"]
    rec = dict(rec, question=EVIL, text=EVIL)
    (out,) = restore_turns(FakePipe(doc, answer), [rec])
    assert "<script" not in out and "<img" not in out and "&lt;script&gt;" in out


def test_errors_are_a_chinese_notice_without_english_or_paths(doc, answer):
    from qa.errors import IndexError_
    from ui.chat import ask_turn
    from ui.messages import has_latin_words

    class Broken(FakePipe):
        def answer(self, q):
            raise self.exc

    pipe = Broken(doc, answer)
    pipe.exc = IndexError_("index file chunks.json in /srv/index is damaged (checksum mismatch); "
                           "rebuild it: qa index --rebuild")
    out = ask_turn(pipe, "q")
    text = parse(out["notice"]).texts["qa-notice"][0]
    assert out["ok"] is False and "索引" in text and "/srv" not in text and not has_latin_words(text)
    pipe.exc = RuntimeError("boom <x>")
    text = parse(ask_turn(pipe, "q")["notice"]).texts["qa-notice"][0]
    assert text == "回答时出错了，请稍后再试。"


def test_an_english_question_that_finds_nothing_gets_a_hint():
    none = dict(text="文档中没有找到这个问题的答案。", score=0.1, no_answer=True)
    for q in ("What is the GDP of Shangyu in 2020?", "上虞のGDPはいくらですか", "How much is 新材料产业 output?"):
        t = parse(render.render_answer(Answer(question=q, **none)))
        assert "请用中文提问" in t.texts["qa-hint"][0], q
    for q in ("火星上有多少个湖泊?", "GDP是多少", "2019年iPhone销量是多少"):
        assert "qa-hint" not in render.render_answer(Answer(question=q, **none)), q
    assert render.is_foreign("What is this?") and not render.is_foreign("新材料产业产值是多少")
    # answered anyway (a reader finds something in any question): warned that it may be wrong
    t = parse(render.render_answer(Answer(question="What is the GDP of Mars?", text="方圆", score=0.39,
                                          no_answer=False)))
    assert "请用中文再问一次" in t.texts["qa-hint"][0]
    assert "qa-hint" not in render.render_answer(Answer(question="新材料产业产值是多少", text="604.5亿元",
                                                        score=0.6, no_answer=False))


@pytest.mark.parametrize("source, shown", [
    ("/home/u/.cache/qa-zh/uploads/default/测试镇概况.txt", "测试镇概况.txt"),
    ("C:\\Users\\u\\uploads\\报告.docx", "报告.docx"),
    ("uploads/default/a.md", "a.md"),
    ("浙江日报 第00011版 专版（朱银燕 倪贤方）", "浙江日报 第00011版 专版（朱银燕 倪贤方）"),
    ("https://example.com/a/b.html", "https://example.com/a/b.html"),
    ("", ""), (None, ""),
])
def test_sources_show_a_file_name_never_a_folder(source, shown):
    assert render.display_source(source) == shown


def test_library_lists_documents_and_offers_delete_for_uploads_only():
    entries = [{"title": "测试镇概况", "name": "测试镇概况.txt", "date": "2026-11-30", "chars": 12345,
                "passages": 3, "key": "测试镇概况.txt"},
               {"title": EVIL, "name": "001_x.txt", "date": "", "chars": 800, "passages": 5}]
    out = render.render_library(entries)
    t = parse(out)
    assert t.texts["qa-lib-title"] == ["《测试镇概况》", f"《{EVIL}》"]
    assert t.texts["qa-lib-name"] == ["测试镇概况.txt", "001_x.txt"]
    assert t.texts["qa-lib-date"] == ["2026-11-30"] and t.texts["qa-lib-size"] == ["1.2 万字", "800 字"]
    assert t.texts["qa-lib-passages"] == ["3 段", "5 段"]
    deletes = [a for tag, a in t.tags if tag == "button"]
    assert len(deletes) == 1 and deletes[0]["data-key"] == "测试镇概况.txt"
    assert "<script" not in out
    assert "文档库是空的" in render.render_library([])


def test_build_app_queues_several_sessions_at_once(doc, answer):
    pytest.importorskip("gradio", reason="gradio is not installed")
    from ui.app import CONCURRENCY, build_app, launch_kwargs
    demo = build_app(pipeline=FakePipe(doc, answer))
    assert CONCURRENCY >= 4
    assert demo._queue.default_concurrency_limit == CONCURRENCY
    kw = launch_kwargs()
    assert "allowed_paths" not in kw and "mark.qa-hl" in kw["css"]


def test_gradio_words_are_chinese_in_every_language():
    pytest.importorskip("gradio", reason="gradio is not installed")
    from ui.app import launch_kwargs
    from ui.i18n import GRADIO_LOCALES
    from ui.messages import has_latin_words
    tr = launch_kwargs()["i18n"].translations_dict
    assert {"en", "fr", "zh-CN"} <= set(tr) and set(GRADIO_LOCALES) <= set(tr)
    for words in tr.values():
        assert words["upload_text.drop_file"] == "把文件拖到这里"
        assert words["upload_text.click_to_upload"] == "点击选择文件"
        assert not any(has_latin_words(re.sub(r"\{\w+\}", "", w).replace("Cookie", "")) for w in words.values())


def test_each_collection_keeps_its_own_conversation(tmp_path):
    from ui.app import storage_key
    assert storage_key(None) == "qa-chat:v1:default"
    a, b = storage_key(tmp_path / "a" / "idx"), storage_key(tmp_path / "b" / "idx")
    assert a != b and a.startswith("qa-chat:v1:idx-")


def test_a_probable_answer_looks_less_certain_than_an_answer(doc, answer):
    """Between the abstain and the answer threshold: 「可能是…」, a note to check the source, and a
    mid-level score, never the plain 「答案」 badge; the citation is still there."""
    from dataclasses import replace
    sure = parse(render.render_answer(answer, {doc.doc_id: doc}))
    out = render.render_answer(replace(answer, score=0.45, state="probable"), {doc.doc_id: doc})
    t = parse(out)
    assert 'data-state="probable"' in out and "qa-answer--probable" in out
    assert t.texts["qa-badge"] == ["可能是…"] and t.texts["qa-badge"] != sure.texts["qa-badge"]
    assert t.texts["qa-probable-note"] == ["把握不大，请核对下面的出处。"]
    assert t.texts["qa-answer-text"] == ["604.5亿元"] and "qa-sources" in t.texts
