"""The chat page in a real browser, beyond answering (issue 18): turns never get lost, the
conversation persists per collection and clearing can be undone, follow-up questions,
Chinese in any browser, phones, contrast and axe-core, and the document library (upload,
delete, no server paths).

One ``qa serve`` for the module, with its own ``QA_HOME`` (the library test uploads into
it and deletes what it uploaded). Every check waits for what it checks; the one timed
step is the scenario "a second question 0.25 s after the first". The page's calls to
the server can be held (:class:`Hold`), to ask questions while one is surely loading.

axe-core is loaded from ``node_modules/axe-core`` (or ``.venv/node_modules``; set
``AXE_CORE_JS`` to a file elsewhere): ``npm install --prefix .venv axe-core@4``.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from ui.uploads import UPLOAD_TYPES
from test_ui_e2e import (ANSWER_TIMEOUT, ROOT, Server, _why, clear_conversation, open_page, shot, turns, wait_answered)

pytestmark = pytest.mark.skipif(_why is not None, reason=f"browser test skipped: {_why}")
if _why is None:
    from playwright.sync_api import expect
    expect.set_options(timeout=ANSWER_TIMEOUT)

Q1, A1 = "新材料产业产值是多少", "604.5亿元"
Q2, A2 = "經開區2019年經濟總量是多少", "1350億"
Q3 = "衢州高新区什么时候升级为国家级高新区"
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}
UPLOAD_TITLE = "测试镇概况"
UPLOAD_TEXT = f"{UPLOAD_TITLE}\n测试镇位于江南水乡，是一座历史悠久的古镇。2022年，测试镇全镇常住人口为48213人，比上年增加1.2%。\n"
UPLOAD_Q, UPLOAD_A = "测试镇2022年全镇常住人口是多少", "48213人"
UPLOAD_TYPES_SHOWN = " ".join(UPLOAD_TYPES)


def _axe_path() -> Path | None:
    for cand in (os.environ.get("AXE_CORE_JS"), ROOT / "node_modules" / "axe-core" / "axe.min.js",
                 ROOT / ".venv" / "node_modules" / "axe-core" / "axe.min.js"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    srv = Server(tmp)
    srv.home = tmp / "qa_home"
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser():
    from test_ui_e2e import chromium_browser
    with chromium_browser() as b:
        yield b


@pytest.fixture
def context_for(browser, server):
    """``context_for(**options) -> page`` opened on the server; every context is closed."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", DESKTOP)
        options.setdefault("locale", "zh-CN")
        ctx = browser.new_context(**options)
        contexts.append(ctx)
        pg = ctx.new_page()
        open_page(pg, server.url)
        return pg

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(context_for):
    return context_for()


class Hold:
    """Holds the page's questions to the server (``server.ask``) until :meth:`release`, and
    records every question asked, in order."""

    def __init__(self, pg):
        self.pg, self.held, self.asked, self.holding = pg, [], [], True
        pg.route(lambda url: "component_server" in url, self._handle)

    def _handle(self, route, request):
        body = request.post_data_json or {}
        if body.get("fn_name") != "ask":
            route.continue_()
            return
        self.asked.append((body.get("data") or {}).get("q"))
        if self.holding:
            self.held.append(route)
        else:
            route.continue_()

    def wait_asked(self, n: int, timeout: float = ANSWER_TIMEOUT / 1000):
        """Wait (serving the page's events) until ``n`` questions reached the server."""
        deadline = time.monotonic() + timeout
        while len(self.asked) < n:
            if time.monotonic() > deadline:
                pytest.fail(f"the page asked {self.asked}, expected {n} questions")
            self.pg.wait_for_timeout(50)     # lets Playwright deliver the route events

    def release(self):
        self.holding = False
        held, self.held = self.held, []
        for route in held:
            try:
                route.continue_()
            except Exception:   # noqa: BLE001 — the page went away meanwhile (a reload)
                pass


def box(pg):
    return pg.locator("#qa-question textarea")


def bubbles(pg):
    return pg.locator("#qa-chat .qa-bubble")


def answer_texts(pg):
    return pg.locator("#qa-chat .qa-turn .qa-answer-text")


def reload(pg):
    pg.reload()
    pg.wait_for_selector("#qa-chat[data-ready] .qa-chat", timeout=ANSWER_TIMEOUT)


def open_library(pg):
    panel = pg.locator("#qa-library-panel")
    if not panel.locator(".qa-lib").is_visible():
        panel.locator("button.label-wrap").click()
    expect(panel.locator(".qa-lib")).to_be_visible()
    return panel


# ------------------------------------------------------------------ 1. turns never get lost

def test_a_second_question_a_quarter_second_later_keeps_both_turns_in_order(page):
    box(page).fill(Q1)
    box(page).press("Enter")
    expect(box(page)).to_have_value("")                 # taken, then cleared
    expect(bubbles(page)).to_have_text([Q1])           # shown at once
    page.wait_for_timeout(250)                          # the scenario: the next question 0.25 s later
    box(page).fill(Q2)
    page.click("#qa-ask")
    wait_answered(page, 2)
    expect(bubbles(page)).to_have_text([Q1, Q2])
    expect(answer_texts(page)).to_have_text([A1, A2])


def test_questions_sent_while_one_is_loading_queue_in_order_and_the_box_keeps_what_is_typed(page):
    hold = Hold(page)
    box(page).fill(Q1)
    box(page).press("Enter")
    hold.wait_asked(1)                                  # Q1 is loading, and stays loading
    pending = page.locator("#qa-chat .qa-turn--pending")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("正在文档中查找")
    expect(page.locator("#qa-clear")).to_be_disabled()  # nothing to clear while it answers
    box(page).fill(Q2)
    box(page).press("Enter")                            # while Q1 is loading
    expect(box(page)).to_have_value("")
    page.locator(".qa-example", has_text=Q3).click()    # and an example
    expect(pending).to_have_count(3)
    expect(bubbles(page)).to_have_text([Q1, Q2, Q3])
    expect(pending.nth(2)).to_contain_text("排队中")
    box(page).fill("还没发出的问题")                     # typed, not sent
    assert hold.asked == [Q1]                           # one question at a time
    hold.release()
    wait_answered(page, 3)
    expect(bubbles(page)).to_have_text([Q1, Q2, Q3])
    expect(answer_texts(page).nth(0)).to_have_text(A1)
    expect(answer_texts(page).nth(1)).to_have_text(A2)
    assert hold.asked == [Q1, Q2, Q3]
    expect(box(page)).to_have_value("还没发出的问题")     # answers arriving never clear the box
    expect(page.locator("#qa-clear")).to_be_enabled()


def test_a_refused_question_goes_back_to_the_box(page):
    hold = Hold(page)
    hold.holding = False
    box(page).fill("   ")
    page.click("#qa-ask")
    expect(page.locator("#qa-notice .qa-notice")).to_contain_text("问题为空")
    assert hold.asked == []                             # checked in the page: nothing sent
    long_q = "新材料产业产值是多少" * 120
    box(page).fill(long_q)
    box(page).press("Enter")
    expect(page.locator("#qa-notice .qa-notice")).to_contain_text("问题太长：1200 个字符，上限 1000 个")
    expect(box(page)).to_have_value(long_q)
    expect(page.locator("#qa-chat .qa-turn")).to_have_count(0)


def test_a_question_the_server_never_got_is_kept_and_asked_again(page):
    failed = []

    def drop_the_first_question(route, request):
        if (request.post_data_json or {}).get("fn_name") == "ask" and not failed:
            failed.append(request.post_data_json["data"]["q"])
            route.abort("connectionfailed")
        else:
            route.continue_()

    page.route(lambda url: "component_server" in url, drop_the_first_question)
    box(page).fill(Q1)
    box(page).press("Enter")
    notice = page.locator("#qa-notice .qa-notice")
    expect(notice).to_contain_text("连接不上服务器，问题已保留")
    expect(bubbles(page)).to_have_text([Q1])
    wait_answered(page, 1)                              # asked again a few seconds later
    expect(answer_texts(page)).to_have_text([A1])
    expect(notice).to_have_count(0)
    assert failed == [Q1]


# ------------------------------------------------------------------ 2. the conversation persists

def test_the_conversation_survives_a_reload_even_with_a_question_loading(page, server):
    box(page).fill(Q1)
    box(page).press("Enter")
    wait_answered(page, 1)
    reload(page)
    wait_answered(page, 1)
    expect(bubbles(page)).to_have_text([Q1])
    expect(answer_texts(page)).to_have_text([A1])
    # kept per collection, and without any server path
    keys = page.evaluate("Object.keys(localStorage)")
    assert keys == ["qa-chat:v1:default"]
    stored = page.evaluate("localStorage.getItem('qa-chat:v1:default')")
    assert A1 in stored and str(server.home) not in stored and "/tmp" not in stored
    # a question still loading when the page goes away is asked again after the reload
    hold = Hold(page)
    box(page).fill(Q2)
    box(page).press("Enter")
    hold.wait_asked(1)
    hold.holding = False
    reload(page)
    hold.release()
    wait_answered(page, 2)
    expect(bubbles(page)).to_have_text([Q1, Q2])
    expect(answer_texts(page)).to_have_text([A1, A2])


def test_clearing_asks_first_and_can_be_undone(page):
    for i, q in enumerate((Q1, Q2)):
        box(page).fill(q)
        box(page).press("Enter")
        wait_answered(page, i + 1)
    bar = page.locator("#qa-bar")
    page.click("#qa-clear")
    expect(bar).to_contain_text("清空全部 2 轮对话？")
    bar.locator(".qa-bar-no").click()                   # 取消
    expect(bar).to_be_hidden()
    expect(turns(page)).to_have_count(2)
    clear_conversation(page, undo=True)                 # 清空, confirm, 撤销
    expect(bubbles(page)).to_have_text([Q1, Q2])
    expect(answer_texts(page)).to_have_text([A1, A2])
    reload(page)                                        # the undo was saved too
    wait_answered(page, 2)
    clear_conversation(page)
    expect(page.locator("#qa-chat .qa-empty")).to_be_visible()
    expect(bar).to_be_hidden(timeout=30_000)            # 撤销 is offered a few seconds only
    reload(page)
    expect(page.locator("#qa-chat .qa-empty")).to_be_visible()
    expect(page.locator("#qa-chat .qa-turn")).to_have_count(0)
    assert page.evaluate("Object.keys(localStorage)") == []


def test_a_follow_up_is_completed_from_the_question_before(page):
    box(page).fill("上虞区2020年的常住人口是多少?")
    box(page).press("Enter")
    box(page).fill("那2019年呢?")                          # sent while the first may still load
    box(page).press("Enter")
    wait_answered(page, 2)
    second = turns(page).nth(1)
    expect(second.locator(".qa-bubble")).to_have_text("那2019年呢?")
    expect(second.locator(".qa-followup")).to_have_text("按『上虞区2019年的常住人口是多少?』回答")
    box(page).fill("衢州的呢?")                            # a follow-up of the completed one
    box(page).press("Enter")
    wait_answered(page, 3)
    expect(turns(page).nth(2).locator(".qa-followup")).to_have_text("按『衢州2019年的常住人口是多少?』回答")
    reload(page)
    wait_answered(page, 3)
    expect(page.locator("#qa-chat .qa-followup")).to_have_text(
        ["按『上虞区2019年的常住人口是多少?』回答", "按『衢州2019年的常住人口是多少?』回答"])


# ------------------------------------------------------------------ 3. Chinese, whatever the browser

# file types and names, encodings: not words
_ALLOWED_LATIN = re.compile(r"\w*\.[a-z]{2,4}\b|GBK|Big5|UTF-8")


def _latin_words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{3,}", _ALLOWED_LATIN.sub(" ", text))


def test_an_english_browser_reads_only_chinese(context_for):
    pg = context_for(locale="en-US")
    assert pg.evaluate("navigator.language") == "en-US"
    open_library(pg)
    upload = pg.locator("#qa-upload-files")
    expect(upload).to_contain_text("把文件拖到这里")
    expect(upload).to_contain_text("点击选择文件")
    expect(upload).not_to_contain_text("Drop File Here")
    expect(upload).not_to_contain_text("Click to Upload")
    text = pg.locator("body").inner_text()
    names = pg.evaluate("""() => Array.from(document.querySelectorAll('[aria-label],[title],[placeholder],[alt]'))
        .flatMap(e => ['aria-label', 'title', 'placeholder', 'alt'].map(a => e.getAttribute(a) || ''))
        .join(' ')""")
    assert _latin_words(text) == [], text
    assert _latin_words(names) == [], names
    assert pg.evaluate("document.documentElement.lang") == "zh-CN"


def test_an_english_question_that_finds_nothing_says_the_documents_are_chinese(page):
    box(page).fill("How many lakes are on Mars?")
    box(page).press("Enter")
    wait_answered(page, 1)
    answer = turns(page).first.locator(".qa-answer")
    expect(answer).to_have_attribute("data-no-answer", "true")
    expect(answer.locator(".qa-hint")).to_contain_text("文档都是中文的，请用中文提问")
    box(page).fill("What is the GDP of Mars?")          # answered or not, it is warned
    box(page).press("Enter")
    wait_answered(page, 2)
    expect(turns(page).nth(1).locator(".qa-hint")).to_contain_text(re.compile("请用中文再问一次|请用中文提问"))
    box(page).fill("火星上有多少个湖泊?")                 # a Chinese question: no such hint
    box(page).press("Enter")
    wait_answered(page, 3)
    expect(turns(page).nth(2).locator(".qa-hint")).to_have_count(0)


# ------------------------------------------------------------------ 4. phones, contrast, axe-core

_PLACEHOLDER_LINES = """() => {
  const t = document.querySelector('#qa-question textarea');
  const s = getComputedStyle(t);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
  const room = t.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
  return ctx.measureText(t.placeholder).width / room;
}"""

_WRAPPED = """() => Array.from(document.querySelectorAll('.qa-doc-open'))
  .filter(e => e.offsetParent !== null)
  .filter(e => e.getClientRects().length !== 1 ||
               e.getBoundingClientRect().height > 1.6 * parseFloat(getComputedStyle(e).fontSize))
  .map(e => e.textContent)"""


def _no_sideways_scroll(pg):
    pg.wait_for_function("document.documentElement.scrollWidth <= document.documentElement.clientWidth",
                         timeout=ANSWER_TIMEOUT)


def test_phone_layout(context_for):
    pg = context_for(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    bar = pg.locator("#qa-input").bounding_box()
    text = pg.locator("#qa-question textarea").bounding_box()
    assert bar["width"] >= PHONE["width"] - 2 * 16, bar           # the box gets the full width
    assert text["width"] >= bar["width"] - 2 * 44 - 16, (bar, text)  # all of it but two icon buttons
    assert bar["height"] <= 56, bar                                # a compact bar
    for sel, name in (("#qa-ask", "提问"), ("#qa-clear", "清空对话")):
        b = pg.locator(sel)
        expect(b).to_have_attribute("aria-label", name)            # icon buttons, named
        expect(b.locator("svg")).to_have_count(1)
        assert b.inner_text().strip() == ""
        assert b.bounding_box()["width"] <= 44
    ratio = pg.evaluate(_PLACEHOLDER_LINES)
    assert ratio <= 1.0, f"the placeholder needs {ratio:.2f} lines"
    assert pg.locator("#qa-dock").bounding_box()["height"] <= 80
    _no_sideways_scroll(pg)
    box(pg).fill(Q1)
    box(pg).press("Enter")
    wait_answered(pg, 1)
    turn = turns(pg).first
    turn.locator(".qa-sources details.qa-doc > summary").first.click()
    expect(turn.locator(".qa-doc-body").first).to_be_visible()
    alts = turn.locator("details.qa-alts > summary")
    if alts.count():
        alts.first.click()
    assert pg.evaluate(_WRAPPED) == []                             # 「查看原文」 on one line, always
    _no_sideways_scroll(pg)
    open_library(pg)
    _no_sideways_scroll(pg)
    shot(pg, "phone")


_CONTRAST = """(sel) => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => { const v = rgb(c).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
                       return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const s = getComputedStyle(document.querySelector(sel));
  const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
  return {ratio: (a + 0.05) / (b + 0.05), color: s.color, background: s.backgroundColor};
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_ask_button_has_enough_contrast_also_on_hover(context_for, scheme):
    pg = context_for(color_scheme=scheme)
    if scheme == "dark":
        expect(pg.locator("body.dark, .gradio-container.dark, .dark").first).to_be_attached()
    normal = pg.evaluate(_CONTRAST, "#qa-ask")
    assert normal["ratio"] >= 4.5, normal
    pg.hover("#qa-ask")
    pg.wait_for_function(f"() => getComputedStyle(document.querySelector('#qa-ask')).backgroundColor "
                         f"!== {normal['background']!r}", timeout=ANSWER_TIMEOUT)
    hover = pg.evaluate(_CONTRAST, "#qa-ask")
    assert hover["ratio"] >= 4.5, hover


@pytest.mark.parametrize("scheme, viewport", [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE)],
                         ids=["light", "dark", "phone"])
def test_axe_finds_no_serious_or_critical_violations(context_for, scheme, viewport):
    axe = _axe_path()
    if axe is None:
        pytest.skip("axe-core is not installed (npm install --prefix .venv axe-core@4; "
                    "or set AXE_CORE_JS to axe.min.js)")
    pg = context_for(color_scheme=scheme, viewport=viewport)
    for i, q in enumerate((Q1, "火星上有多少个湖泊?")):   # an answer and a "not found"
        box(pg).fill(q)
        box(pg).press("Enter")
        wait_answered(pg, i + 1)
    first = turns(pg).first
    first.locator(".qa-sources details.qa-doc > summary").first.click()
    expect(first.locator(".qa-doc-body").first).to_be_visible()
    for summary in first.locator("details.qa-alts > summary").all():
        summary.click()
    open_library(pg)
    page_axe = pg.add_script_tag(path=str(axe))
    assert page_axe is not None
    found = pg.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id} (${v.impact}): ` + v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' +
             (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '))""")
    assert found == [], "\n".join(found)


# ------------------------------------------------------------------ 5. the document library (last: it uploads)

def test_the_library_lists_uploads_in_plain_chinese_without_paths_and_deletes_them(context_for, server, tmp_path):
    doc = tmp_path / f"{UPLOAD_TITLE}.txt"
    doc.write_text(UPLOAD_TEXT, encoding="utf-8")
    csv = tmp_path / "数据.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    pg = context_for()
    panel = open_library(pg)
    items = panel.locator(".qa-lib-item")
    expect(items).to_have_count(5)                                   # the seeds
    expect(panel.locator(".qa-lib-delete")).to_have_count(0)         # the seeds cannot be deleted
    expect(items.first.locator(".qa-lib-meta")).to_contain_text("字")
    expect(items.first.locator(".qa-lib-passages")).to_contain_text("段")

    pg.set_input_files("#qa-upload-files input[type=file]", str(doc))
    summary = pg.locator("#qa-upload-summary")
    expect(summary).to_contain_text("已检查 1 个文件", timeout=300_000)      # staged, checked
    pg.locator("#qa-join").click()                                   # then joined, deliberately
    expect(summary).to_contain_text(f"已加入《{UPLOAD_TITLE}》，可以提问了", timeout=300_000)
    mine = items.filter(has_text=UPLOAD_TITLE)
    expect(items).to_have_count(6)
    expect(mine.locator(".qa-lib-name")).to_have_text(f"{UPLOAD_TITLE}.txt")
    expect(mine.locator(".qa-lib-date")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d$"))
    expect(mine.locator(".qa-lib-passages")).to_have_text(re.compile(r"^\d+ 段$"))
    expect(pg.locator("#qa-header .qa-collection")).to_have_text("6 篇文档")
    expect(panel.locator("button.label-wrap")).to_contain_text("文档库（6 篇）")

    box(pg).fill(UPLOAD_Q)
    box(pg).press("Enter")
    wait_answered(pg, 1)
    turn = turns(pg).first
    expect(turn.locator(".qa-answer-text")).to_have_text(UPLOAD_A)
    expect(turn.locator(".qa-doc-source").first).to_have_text(f"{UPLOAD_TITLE}.txt")
    shot(pg, "library_upload")
    # no server path anywhere: the page, its attributes, the saved conversation
    home = str(Path(server.home).resolve())
    for where in (pg.content(), pg.evaluate("JSON.stringify(localStorage)")):
        assert home not in where and str(server.home) not in where and "/uploads/" not in where

    # another type is refused, in Chinese, with the types accepted
    pg.set_input_files("#qa-upload-files input[type=file]", str(csv))
    expect(summary).to_contain_text(f"数据.csv：不支持 .csv 文件。可以上传的文件类型：{UPLOAD_TYPES_SHOWN}")
    expect(items).to_have_count(6)

    # delete it: asked first, then gone from the library and from the answers
    mine.locator(".qa-lib-delete").click()
    expect(mine.locator(".qa-lib-confirm")).to_contain_text(f"删除《{UPLOAD_TITLE}》？")
    mine.locator(".qa-lib-no").click()                               # 取消
    expect(mine.locator(".qa-lib-delete")).to_be_visible()
    mine.locator(".qa-lib-delete").click()
    mine.locator(".qa-lib-yes").click()
    expect(summary).to_contain_text(f"已删除《{UPLOAD_TITLE}》", timeout=300_000)
    expect(items).to_have_count(5)
    expect(pg.locator("#qa-header .qa-collection")).to_have_text("5 篇文档")
    box(pg).fill(UPLOAD_Q)
    box(pg).press("Enter")
    wait_answered(pg, 2)
    expect(turns(pg).nth(1)).not_to_contain_text(UPLOAD_A, use_inner_text=False)


STAGE_TITLE = "暂存镇概况"
STAGE_TEXT = f"{STAGE_TITLE}\n暂存镇位于山区，是一座以茶叶闻名的小镇。2022年，暂存镇全镇常住人口为37125人，比上年减少0.8%。\n"
STAGE_Q, STAGE_A = "暂存镇2022年全镇常住人口是多少", "37125人"


def test_an_upload_waits_in_the_visitors_staging_area_until_joined(context_for, tmp_path):
    """Issue 17.7: one visitor's upload changes nothing for the others until 加入文档库."""
    doc = tmp_path / f"{STAGE_TITLE}.txt"
    doc.write_text(STAGE_TEXT, encoding="utf-8")
    alice, bob = context_for(), context_for()
    panel = open_library(alice)
    items = panel.locator(".qa-lib-item")
    expect(items).to_have_count(5)
    expect(alice.locator("#qa-join")).to_be_hidden()

    alice.set_input_files("#qa-upload-files input[type=file]", str(doc))
    summary = alice.locator("#qa-upload-summary")
    expect(summary).to_contain_text("已检查 1 个文件", timeout=300_000)
    expect(summary).to_contain_text(f"《{STAGE_TITLE}》（{STAGE_TITLE}.txt）")
    expect(summary).to_contain_text("还没有加入文档库")
    join = alice.locator("#qa-join")
    expect(join).to_be_visible()
    expect(join).to_have_text("加入文档库")
    expect(items).to_have_count(5)                                   # checked, not joined
    expect(alice.locator("#qa-header .qa-collection")).to_have_text("5 篇文档")

    # meanwhile another visitor is not answered from it
    box(bob).fill(STAGE_Q)
    box(bob).press("Enter")
    wait_answered(bob, 1)
    expect(turns(bob).first).not_to_contain_text(STAGE_A, use_inner_text=False)

    join.click()
    expect(summary).to_contain_text(f"已加入《{STAGE_TITLE}》，可以提问了", timeout=300_000)
    expect(join).to_be_hidden()
    expect(items).to_have_count(6)
    # now everyone is
    box(bob).fill(STAGE_Q)
    box(bob).press("Enter")
    wait_answered(bob, 2)
    expect(turns(bob).nth(1).locator(".qa-answer-text")).to_have_text(STAGE_A)

    # leave the collection as it was
    mine = items.filter(has_text=STAGE_TITLE)
    mine.locator(".qa-lib-delete").click()
    mine.locator(".qa-lib-yes").click()
    expect(summary).to_contain_text(f"已删除《{STAGE_TITLE}》", timeout=300_000)
    expect(items).to_have_count(5)
