"""The chat page in a real browser: ``qa serve`` in a subprocess, driven by
headless Chromium through Playwright. Screenshots go to ``reports/ui/``.

Each browser context starts with empty storage, so each test starts with an empty
conversation (the page keeps it in localStorage). Skips (with the reason) where Gradio,
Playwright or a Chromium binary is missing; ``bash setup.sh --test`` installs them. The server is always stopped.

Every check waits for what it checks (``expect(locator)…`` and ``wait_for``, with
generous timeouts): the page renders and answers asynchronously, and a loaded
machine is slow. No fixed sleeps, and no count read before its elements can be there.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ui.app import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "reports" / "ui"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
NOT_FOUND = "文档中没有找到这个问题的答案。"
SOURCE_TITLE = "上虞:全面建设高水平“创新强区、品质名城”"
START_TIMEOUT = 180
ANSWER_TIMEOUT = 60_000  # ms


def _chromium() -> str | None:
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if cand and os.path.exists(cand):
            return cand
    return None


def _requirements() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        return "gradio is not installed (pip install gradio, or bash setup.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright, or bash setup.sh --test)"
    if _chromium() is None:
        return "no chromium binary (apt-get install chromium, or bash setup.sh --test)"
    return None


_why = _requirements()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"browser test skipped: {_why}")
if _why is None:
    from playwright.sync_api import expect
    expect.set_options(timeout=ANSWER_TIMEOUT)   # every expect(...) below waits this long


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m qa serve`` on a free port of 127.0.0.1; ``stop()`` always ends it."""

    def __init__(self, tmp: Path, index: Path | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = tmp / f"serve-{self.port}.log"
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
                   QA_HOME=str(tmp / "qa_home"))
        env.pop("QA_INDEX", None)
        cmd = [sys.executable, "-m", "qa", "serve", "--port", str(self.port)]
        if index is not None:
            cmd += ["--index", str(index)]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")[-3000:]

    def wait_ready(self, timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"qa serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"qa serve did not answer on {self.url} within {timeout} s:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def evil_server(tmp_path_factory):
    """A server on an index of one hostile document."""
    tmp = tmp_path_factory.mktemp("evil")
    (tmp / "docs").mkdir()
    (tmp / "docs" / "evil.txt").write_text(
        EVIL + "\n测试园区年度报告 {{value}} ${value}\n\n"
        "2020年,测试园区实现工业总产值321亿元,增长9.9%。<b>不该加粗</b> & 其他。\n", encoding="utf-8")
    env = dict(os.environ, QA_HOME=str(tmp / "qa_home"))
    r = subprocess.run([sys.executable, "-m", "qa", "index", str(tmp / "docs"), "--index", str(tmp / "index"),
                        "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    srv = Server(tmp, index=tmp / "index")
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@contextlib.contextmanager
def chromium_browser():
    """Debian's headless Chromium through Playwright, closed afterwards (every browser test uses it)."""
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    open_page(pg, server.url)
    try:
        yield pg
    finally:
        ctx.close()


def open_page(pg, url):
    """Open the page and wait until it is whole: question box, conversation, examples."""
    pg.goto(url)
    pg.wait_for_selector("#qa-question textarea", timeout=ANSWER_TIMEOUT)
    pg.wait_for_selector("#qa-chat[data-ready] .qa-chat", timeout=ANSWER_TIMEOUT)   # chat.js has started
    expect(pg.locator(".qa-example")).to_have_count(len(EXAMPLES))


def turns(pg):
    return pg.locator("#qa-chat .qa-turn:not(.qa-turn--pending)")


def wait_answered(pg, n: int):
    """Wait until the conversation shows ``n`` answered turns and nothing pending."""
    expect(turns(pg)).to_have_count(n)
    expect(pg.locator("#qa-chat .qa-turn--pending")).to_have_count(0)


def ask(pg, question: str, how: str = "click", before: int | None = None):
    """Ask through the page; returns the locator of the new answered turn.
    ``before``: the answered turns on the page now (default: counted, once the page is idle)."""
    if before is None:
        expect(pg.locator("#qa-chat .qa-turn--pending")).to_have_count(0)
        before = turns(pg).count()
    box = pg.locator("#qa-question textarea")
    box.fill(question)
    if how == "enter":
        box.press("Enter")
    else:
        pg.click("#qa-ask")
    wait_answered(pg, before + 1)
    return turns(pg).nth(before)


_SCROLL_STILL = """() => new Promise(done => {
  let last = null, still = 0;
  const tick = () => {
    const now = [window.scrollY, ...Array.from(document.querySelectorAll('.qa-doc-body'), e => e.scrollTop)].join();
    still = now === last ? still + 1 : 0;
    last = now;
    if (still >= 10) done(true); else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})"""


def shot(pg, name: str, full: bool = True):
    pg.wait_for_function(_SCROLL_STILL, timeout=ANSWER_TIMEOUT)   # smooth scrolling has settled
    # a full-page capture would paint the bottom-stuck question box mid-page: unstick it for the picture
    style = pg.add_style_tag(content="#qa-dock { position: static !important; }") if full else None
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)
    if style:
        style.evaluate("e => e.remove()")


def test_answer_with_its_source_and_the_document_scrolled_to_it(page):
    turn = ask(page, "新材料产业产值是多少", how="enter")
    expect(turn.locator(".qa-bubble")).to_have_text("新材料产业产值是多少")
    expect(turn).to_contain_text("604.5亿元", use_inner_text=False)    # alternatives included, folded or not
    expect(turn).to_contain_text(SOURCE_TITLE, use_inner_text=False)
    answer = turn.locator(".qa-answer")
    expect(answer).to_have_attribute("data-no-answer", "false")
    expect(answer.locator(".qa-answer-text")).to_be_visible()
    expect(answer.locator(".qa-score").first).to_contain_text("置信度")
    expect(answer.locator(".qa-sources .qa-doc-title").first).to_contain_text(SOURCE_TITLE)
    # 604.5亿元 scores 0.62, below the calibrated answer cut (qa/read/combined-states.json): the page
    # says 「可能是…」 and asks to check the source, unlike a sure answer's plain badge
    state = answer.get_attribute("data-state")
    assert state in ("answer", "probable")
    if state == "probable":
        expect(answer.locator(".qa-badge--probable")).to_have_text("可能是…")
        expect(answer.locator(".qa-probable-note")).to_be_visible()
    # the cited sentence shows the span highlighted
    cite = answer.locator(".qa-sources .qa-cite").first
    quote = cite.locator(".qa-cite-sentence mark.qa-hl").inner_text()
    expect(answer.locator(".qa-answer-text")).to_have_text(quote)     # simplified document, simplified question
    # the whole document opens scrolled to the highlighted span
    body = cite.locator(".qa-doc-body")
    expect(body).to_be_hidden()
    cite.locator("details.qa-doc > summary").click()
    expect(body).to_be_visible()
    mark = body.locator("mark.qa-hl")
    expect(mark).to_have_text(quote)
    try:   # the page scrolls the panel when it opens: wait for it
        page.wait_for_function(
            """([b, m]) => { const B = b.getBoundingClientRect(), M = m.getBoundingClientRect();
                              return M.top >= B.top && M.bottom <= B.bottom; }""",
            arg=[body.element_handle(), mark.element_handle()], timeout=ANSWER_TIMEOUT)
    except Exception:
        pytest.fail("the highlighted span is not scrolled into view in the document panel")
    assert len(body.inner_text()) > 1000      # the whole document, not just the sentence
    # alternatives are folded, apart from the answer (the turn is complete: a count is safe now)
    alts = answer.locator("details.qa-alts")
    if alts.count():
        expect(alts).not_to_have_attribute("open", "")
        expect(alts.locator(".qa-alt-list")).to_be_hidden()
        alts.locator("> summary").click()
        expect(alts.locator(".qa-alt-list")).to_be_visible()
    shot(page, "answer_with_document")
    cite.locator(".qa-doc-body").scroll_into_view_if_needed()
    shot(page, "answer_viewport", full=False)


def test_traditional_question_gets_a_traditional_answer(page):
    from qa.text.normalize import in_script
    turn = ask(page, "經開區2019年經濟總量是多少")
    answer = turn.locator(".qa-answer")
    expect(answer).to_have_attribute("data-no-answer", "false")
    text = answer.locator(".qa-answer-text").inner_text()
    assert text == in_script(text, "traditional")
    expect(turn).to_contain_text("1350億", use_inner_text=False)
    expect(answer.locator(".qa-sources-title")).to_have_text("來源")
    expect(answer).to_have_attribute("data-state", "answer")          # 0.999: a sure answer
    expect(answer.locator(".qa-badge--probable")).to_have_count(0)
    shot(page, "traditional")


def test_unanswerable_question_says_not_found_calmly(page):
    turn = ask(page, "火星上有多少个湖泊?", before=0)
    answer = turn.locator(".qa-answer")
    expect(answer).to_have_attribute("data-no-answer", "true")
    expect(answer.locator(".qa-none-text")).to_have_text(NOT_FOUND)
    expect(page.locator("#qa-notice .qa-notice")).to_have_count(0)     # not an error
    # a near miss (a year and a place the seeds do not cover): whatever the decision says,
    # it is one of the three states, never an error, and "not found" still names the nearest
    ask(page, "上虞区2020年的常住人口是多少?", before=1)
    last = turns(page).nth(1)
    expect(last.locator(".qa-bubble")).to_have_text("上虞区2020年的常住人口是多少?")
    expect(last.locator(".qa-answer-text, .qa-none-text")).to_have_count(1)
    expect(last.locator(".qa-answer")).to_have_attribute("data-state", re.compile("^(answer|probable|not_found)$"))
    expect(page.locator("#qa-notice .qa-notice")).to_have_count(0)
    shot(page, "not_found")


def test_empty_and_too_long_questions_get_a_clear_message(page):
    ask_button = page.locator("#qa-ask")
    ask_button.click()
    notice = page.locator("#qa-notice .qa-notice")
    expect(notice).to_contain_text("问题为空")
    expect(page.locator("#qa-chat .qa-turn")).to_have_count(0)
    shot(page, "empty_question", full=False)
    long_q = "新材料产业产值是多少" * 120
    page.locator("#qa-question textarea").fill(long_q)
    ask_button.click()
    expect(notice).to_contain_text("问题太长")
    expect(page.locator("#qa-chat .qa-turn")).to_have_count(0)
    expect(page.locator("#qa-question textarea")).to_have_value(long_q)     # kept, to shorten
    # and the page still works afterwards; the notice goes away
    turn = ask(page, "新材料产业产值是多少", before=0)
    expect(turn).to_contain_text("604.5亿元", use_inner_text=False)
    expect(notice).to_have_count(0)


def test_examples_and_clear(page):
    examples = page.locator(".qa-example")
    expect(examples).to_have_count(len(EXAMPLES))      # waits for the page to render them
    expect(examples).to_have_text(EXAMPLES)
    examples.filter(has_text="新材料产业产值是多少").click()
    wait_answered(page, 1)
    expect(turns(page).first).to_contain_text("604.5亿元", use_inner_text=False)
    examples.filter(has_text="經開區2019年經濟總量是多少").click()
    wait_answered(page, 2)
    expect(turns(page).nth(1).locator(".qa-bubble")).to_have_text("經開區2019年經濟總量是多少")
    shot(page, "conversation")
    clear_conversation(page)
    expect(page.locator("#qa-chat .qa-empty")).to_be_visible()
    expect(page.locator("#qa-chat .qa-turn")).to_have_count(0)


def clear_conversation(pg, undo: bool = False):
    """清空 → confirm (→ 撤销 while it is offered)."""
    pg.click("#qa-clear")
    bar = pg.locator("#qa-bar")
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("清空全部")
    bar.locator(".qa-bar-yes").click()
    expect(bar.locator(".qa-bar-yes")).to_have_text("撤销")
    if undo:
        bar.locator(".qa-bar-yes").click()
        expect(bar).to_be_hidden()


def test_each_session_keeps_its_own_conversation(browser, server):
    contexts = [browser.new_context(viewport={"width": 1000, "height": 800}) for _ in range(3)]
    try:
        pages = [c.new_page() for c in contexts]
        for pg in pages:
            open_page(pg, server.url)
        questions = ["新材料产业产值是多少", "經開區2019年經濟總量是多少", "火星上有多少个湖泊?"]
        for pg, q in zip(pages, questions):       # all three in flight at once
            pg.locator("#qa-question textarea").fill(q)
        for pg in pages:
            pg.click("#qa-ask")
        for pg, q in zip(pages, questions):
            wait_answered(pg, 1)
            expect(pg.locator("#qa-chat .qa-bubble")).to_have_text([q])
        expect(turns(pages[0])).to_contain_text("604.5亿元", use_inner_text=False)
        expect(turns(pages[1])).to_contain_text("1350億", use_inner_text=False)
        expect(pages[2].locator(".qa-answer")).to_have_attribute("data-no-answer", "true")
    finally:
        for c in contexts:
            c.close()


def test_document_html_shows_as_text_and_never_runs(browser, evil_server):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        pg = ctx.new_page()
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        open_page(pg, evil_server.url)
        turn = ask(pg, "测试园区2020年工业总产值是多少", before=0)
        expect(turn).to_contain_text("321亿元", use_inner_text=False)
        turn.locator(".qa-sources details.qa-doc > summary").first.click()
        body = turn.locator(".qa-doc-body").first
        expect(body).to_be_visible()
        expect(turn.locator(".qa-doc-title").first).to_contain_text(EVIL)
        for text in (EVIL, "<b>不该加粗</b>", "{{value}} ${value}"):
            expect(body).to_contain_text(text)
        expect(pg.locator("#qa-chat img")).to_have_count(0)
        expect(pg.locator("#qa-chat script")).to_have_count(0)
        expect(pg.locator("#qa-chat b", has_text="不该加粗")).to_have_count(0)
        assert dialogs == []
        shot(pg, "escaped_document")
    finally:
        ctx.close()


def test_the_page_fetches_nothing_from_outside(browser, server):
    ctx = browser.new_context()
    try:
        pg = ctx.new_page()
        urls: list[str] = []
        pg.on("request", lambda r: urls.append(r.url))
        open_page(pg, server.url)
        pg.locator(".qa-example").first.click()
        wait_answered(pg, 1)
        outside = [u for u in urls if not u.startswith((server.url, "data:", "blob:"))]
        assert urls and outside == []
    finally:
        ctx.close()


def test_server_binds_to_localhost_only(server):
    out = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True) \
        if shutil.which("ss") else None
    if out is None or not out.stdout.strip():
        pytest.skip("ss not available to list listening sockets")
    addrs = {line.split()[3].rsplit(":", 1)[0] for line in out.stdout.strip().splitlines()}
    assert addrs <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, addrs
