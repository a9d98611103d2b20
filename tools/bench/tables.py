"""Borderless tables in text-layer PDFs: how many real tables each detector reads, how many
false tables it makes of prose pages, and what the shipped reading costs a page.

    python -m tools.bench.tables [--only pdf,ocr] [--pdf FILE ...] [--out DIR]

Run by hand (never from the test suite); needs reportlab (the ``test`` extra) to draw the
pages. Pages drawn here with reportlab's STSong-Light (a CID font, so a real text layer):

* **tables** (borderless, no line drawn): the towns table of ``tests/test_ingest_tables.py``
  between two paragraphs; a 3-column indicators table with a title row (``表2 … 单位：亿元``)
  above its header and figures aligned right; a table placed with tab stops (drawString at
  fixed x, as Word's tabs lay one out); a table whose header cells wrap onto two lines;
* **prose** (no table): the five seed reports as paragraphs (12 pt, justified), the same in
  two columns, a government notice (its 索引号/发布机构 header block in two aligned columns,
  body, signature), a list of names in four columns, a contents page (titles and page
  numbers, no leaders), contacts (联系人：… 电话：… in two columns).

``--pdf`` adds real PDFs as prose pages (every page of them counted; the tables they may hold
are then counted as "false" too, so look at what is printed for them).

Detectors compared on the same pages in the same process: pdfplumber's ``text`` strategy
(``find_tables`` with text edges both ways), :func:`qa.ingest.pdf_tables.aligned_tables`
without its figures rule, and as shipped. "rows right" counts the expected data lines found
word for word in the text that :func:`qa.ingest.pdf_text.read_pdf` stores; time per page is
pypdf's ``extract_text`` alone, ``read_pdf`` without the borderless pass (pages whose pypdf
text looks tabular not given to pdfplumber) and ``read_pdf`` as shipped, interleaved, median
of 3 (CPU seconds of this process: wall time on a shared machine says more about the others).

``ocr``: A4 pages at 200 dpi drawn with PIL in Noto Sans CJK SC 12 pt (a title, a paragraph,
the indicators table and the towns table, a note): clean and borderless; "scan" (rotated 0.5°,
blurred, noised, greyed, JPEG quality 60) and borderless; scan with the tables ruled. For each:
character accuracy of OCR over the page (1 − edit distance / reference length, NFKC, no
whitespace, the lines in reading order, as in ``docs/ingest.md``'s engine measurement), the
table rows written word for word as the reference's header lines, and seconds of recognition.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

FONT = "STSong-Light"
ROOT = Path(__file__).resolve().parents[2]

TOWNS_HEADER = ("街道/镇", "工业总产值（亿元）", "增长（%）", "规上企业（家）", "负责人")
TOWNS = [("百官街道", "57.6", "20.4", "42", "张伟"), ("曹娥街道", "91.4", "9.9", "240", "王芳"),
         ("东关街道", "152.2", "6.4", "117", "李娜"), ("道墟街道", "46.3", "-4.1", "209", "刘洋"),
         ("梁湖街道", "141.2", "17.9", "11", "陈静")]
INDICATORS_HEADER = ("指标", "2020年", "增长（%）")
INDICATORS = [("地区生产总值", "1087.6", "3.6"), ("一般公共预算收入", "86.1", "5.2"),
              ("规上工业增加值", "318.4", "7.9"), ("固定资产投资", "412.0", "6.1"),
              ("社会消费品零售总额", "402.3", "-1.2"), ("进出口总额", "408.2", "10.4"),
              ("城镇居民人均可支配收入", "6.67", "4.9"), ("农村居民人均可支配收入", "3.95", "7.1")]
PROJECTS_HEADER = ("项目名称", "总投资（万元）", "开工时间", "责任单位")
PROJECTS = [("曹娥江大桥改建", "36500", "2021年3月", "区交通局"), ("滨江新城学校", "18200", "2021年5月", "区教体局"),
            ("e游小镇二期", "52000", "2021年6月", "曹娥街道"), ("新材料产业园", "120000", "2021年9月", "经开区"),
            ("城北污水处理厂", "24800", "2021年10月", "区住建局")]
WRAPPED_HEADER = ("年份", "工业总产值\n（亿元）", "利润总额\n（亿元）")
WRAPPED = [("2018年", "1450.2", "98.6"), ("2019年", "1532.8", "104.1"), ("2020年", "1604.5", "112.9")]


def _register():
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _styles():
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.styles import ParagraphStyle
    body = ParagraphStyle("b", fontName=FONT, fontSize=12, leading=20, firstLineIndent=24,
                          alignment=TA_JUSTIFY, wordWrap="CJK")
    return body


def _doc(flow) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate
    b = io.BytesIO()
    SimpleDocTemplate(b, pagesize=A4).build(flow)
    return b.getvalue()


def _table_flow(header, rows, right=(), title=None):
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle
    body = _styles()
    data = ([list(title)] if title else []) + [list(header)] + [list(r) for r in rows]
    t = Table(data)
    st = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 10)]
    for c in right:
        st.append(("ALIGN", (c, 1 if title else 0), (c, -1), "RIGHT"))
    if title:
        st.append(("SPAN", (0, 0), (len(header) - 2, 0)))
    t.setStyle(TableStyle(st))
    para = Paragraph("2020年，全区经济运行稳中有进，主要指标如下表所示，各项数据均为快报数。", body)
    return [para, Spacer(1, 12), t, Spacer(1, 12), para]


def _tab_stops_pdf(header, rows) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    b = io.BytesIO()
    c = canvas.Canvas(b, pagesize=A4)
    c.setFont(FONT, 11)
    c.drawString(72, 760, "附件：2021年重点建设项目计划表")
    xs = [72, 210, 320, 420]
    y = 730
    for row in [header, *rows]:
        for x, cell in zip(xs, row):
            c.drawString(x, y, cell)
        y -= 18
    c.drawString(72, y - 10, "以上项目如有调整，以区发改局最新通知为准。")
    c.showPage()
    c.save()
    return b.getvalue()


def _expected(header, rows) -> list[str]:
    from qa.ingest.tables import Cell, Grid, table_lines
    return table_lines(Grid([[Cell(h.replace("\n", "")) for h in header]] + [[Cell(c) for c in r] for r in rows], 1))


def table_pdfs() -> list[tuple[str, bytes, list[str]]]:
    """(name, PDF bytes, expected data lines) of the borderless tables."""
    _register()
    return [
        ("towns, 5 columns", _doc(_table_flow(TOWNS_HEADER, TOWNS)), _expected(TOWNS_HEADER, TOWNS)),
        ("indicators, title row, figures right", _doc(_table_flow(INDICATORS_HEADER, INDICATORS, right=(1, 2),
                                                                   title=("表2 2020年主要经济指标", "", "单位：亿元"))),
         _expected(INDICATORS_HEADER, INDICATORS)),
        ("projects, tab stops", _tab_stops_pdf(PROJECTS_HEADER, PROJECTS), _expected(PROJECTS_HEADER, PROJECTS)),
        ("header on two lines", _doc(_table_flow(WRAPPED_HEADER, WRAPPED, right=(1, 2))),
         _expected(WRAPPED_HEADER, WRAPPED)),
    ]


def _seed_paragraphs() -> list[list[str]]:
    out = []
    for p in sorted((ROOT / "seeds").glob("*.txt")):
        paras = [ln.strip() for ln in p.read_text(encoding="utf-8").split("\n") if len(ln.strip()) > 30]
        out.append(paras[:12])
    return out


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def prose_pdfs() -> list[tuple[str, bytes]]:
    """(name, PDF bytes) of pages without a table."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    _register()
    body = _styles()
    out = []
    seeds = _seed_paragraphs()
    for k, paras in enumerate(seeds):
        out.append((f"seed {k:03d}, one column", _doc([Paragraph(_escape(p), body) for p in paras])))
    b = io.BytesIO()
    w, h = A4
    doc = BaseDocTemplate(b, pagesize=A4)
    frames = [Frame(doc.leftMargin, doc.bottomMargin, doc.width / 2 - 6, doc.height, id="l"),
              Frame(doc.leftMargin + doc.width / 2 + 6, doc.bottomMargin, doc.width / 2 - 6, doc.height, id="r")]
    doc.addPageTemplates([PageTemplate(frames=frames)])
    doc.build([Paragraph(_escape(p), body) for paras in seeds[:2] for p in paras])
    out.append(("seeds 000–001, two columns", b.getvalue()))

    def canvas_pdf(draw) -> bytes:
        b = io.BytesIO()
        c = canvas.Canvas(b, pagesize=A4)
        draw(c)
        c.showPage()
        c.save()
        return b.getvalue()

    def notice(c):
        c.setFont(FONT, 10)
        form = [("索引号：11330604002590000X/2021-00012", "发布机构：杭州湾上虞经开区"),
                ("公开方式：主动公开", "发布日期：2021-02-23"),
                ("组配分类：通知公告", "文号：虞开委〔2021〕3号")]
        y = 790
        for a, bb in form:
            c.drawString(60, y, a)
            c.drawString(330, y, bb)
            y -= 16
        c.setFont(FONT, 16)
        c.drawCentredString(w / 2, y - 20, "关于做好2021年度企业安全生产工作的通知")
        c.setFont(FONT, 12)
        y -= 60
        text = seeds[2][0] + seeds[2][1]
        line = 34
        for i in range(0, min(len(text), line * 20), line):
            c.drawString(72, y, text[i:i + line])
            y -= 20
        c.drawString(360, y - 20, "杭州湾上虞经济技术开发区管委会")
        c.drawString(400, y - 40, "2021年2月23日")

    def names(c):
        c.setFont(FONT, 12)
        c.drawString(72, 780, "附件：区数字经济发展领导小组成员名单")
        c.drawString(72, 750, "组  长：朱银燕（区委副书记、区长）")
        c.drawString(72, 730, "副组长：倪贤方（副区长）")
        c.drawString(72, 710, "成  员：")
        people = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄勇", "周敏", "吴强", "徐丽", "孙杰"]
        for i, p in enumerate(people):
            c.drawString(130 + (i % 4) * 100, 690 - (i // 4) * 20, p)
        c.drawString(72, 600, "领导小组办公室设在区经信局，办公室主任由区经信局局长兼任。")

    def contents(c):
        c.setFont(FONT, 14)
        c.drawCentredString(w / 2, 790, "目  录")
        c.setFont(FONT, 12)
        items = ["一、2020年工作回顾", "二、2021年主要目标", "三、重点任务", "（一）做强数字经济",
                 "（二）培育新材料产业", "（三）推进城乡融合", "四、保障措施"]
        for i, t in enumerate(items):
            c.drawString(80, 750 - i * 24, t)
            c.drawRightString(520, 750 - i * 24, str(1 + i * 3))

    def contacts(c):
        c.setFont(FONT, 12)
        c.drawString(72, 780, "联系方式")
        rows = [("联系人：张伟", "电话：0575-82123456"), ("联系人：王芳", "电话：0575-82765432"),
                ("联系人：李娜", "电话：0575-82011223")]
        for i, (a, bb) in enumerate(rows):
            c.drawString(72, 750 - i * 20, a)
            c.drawString(300, 750 - i * 20, bb)
        c.drawString(72, 680, "如有疑问，请在工作日上午9:00至下午5:00之间联系。")

    for name, draw in (("notice with its header block", notice), ("list of names, 4 columns", names),
                       ("contents, page numbers", contents), ("contacts in two columns", contacts)):
        out.append((name, canvas_pdf(draw)))
    return out


def _plumber_text_tables(page) -> int:
    from qa.ingest.pdf_tables import TEXT_SETTINGS
    n = 0
    for t in page.find_tables(TEXT_SETTINGS):
        rows = [r for r in t.extract() if sum(1 for c in r if (c or "").strip()) >= 1]
        if len(rows) >= 2 and max((len(r) for r in rows), default=0) >= 2:
            n += 1
    return n


def _pages(data: bytes) -> int:
    import pypdf
    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


def _count(data: bytes) -> dict[str, int]:
    """Tables found on all pages of ``data`` by each detector."""
    import pdfplumber

    from qa.ingest.pdf_tables import aligned_tables
    out = {"plumber text": 0, "aligned, no figures rule": 0, "aligned (shipped)": 0}
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            out["plumber text"] += _plumber_text_tables(page)
            out["aligned, no figures rule"] += len(aligned_tables(page, figures=False))
            out["aligned (shipped)"] += len(aligned_tables(page))
            page.close()
    return out


def _clock() -> float:
    return time.process_time()


def _times(data: bytes) -> tuple[float, float, float]:
    """Median seconds, interleaved: pypdf's extract_text of every page; read_pdf (OCR off)
    without the borderless pass (no page given to pdfplumber for its looks); read_pdf."""
    import pypdf

    from qa.ingest import pdf_text
    a, b, c = [], [], []
    shipped = pdf_text.may_hold_table
    for _ in range(3):
        t = _clock()
        for p in pypdf.PdfReader(io.BytesIO(data)).pages:
            p.extract_text()
        a.append(_clock() - t)
        pdf_text.may_hold_table = lambda text: False
        try:
            t = _clock()
            pdf_text.read_pdf(data, ocr=False)
            b.append(_clock() - t)
        finally:
            pdf_text.may_hold_table = shipped
        t = _clock()
        pdf_text.read_pdf(data, ocr=False)
        c.append(_clock() - t)
    return statistics.median(a), statistics.median(b), statistics.median(c)


# ---------------------------------------------------------------- OCR

def _cjk_font() -> str:
    for p in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",):
        if Path(p).exists():
            return p
    sys.exit("needs fonts-noto-cjk (NotoSansCJK-Regular.ttc) to draw the pages")


def ocr_pages() -> list[tuple[str, object, str, list[str]]]:
    """(name, PIL image, reference text, expected table lines) of the OCR pages."""
    import random

    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(_cjk_font(), 33, index=2)           # 12 pt at 200 dpi
    W, H = 1654, 2339
    paragraph = ("2020年，全区经济运行稳中有进，主要指标如下表所示。全年实现地区生产总值1087.6亿元，"
                 "增长3.6%，各街道、镇工业经济保持平稳。")

    def draw_page(ruled: bool):
        im = Image.new("RGB", (W, H), "white")
        d = ImageDraw.Draw(im)
        y = 200
        ref = []
        d.text((160, y), "2020年上虞区国民经济和社会发展统计公报（摘要）", font=font, fill="black")
        ref.append("2020年上虞区国民经济和社会发展统计公报（摘要）")
        y += 90
        for i in range(0, len(paragraph), 38):
            d.text((160, y), paragraph[i:i + 38], font=font, fill="black")
            y += 55
        ref.append(paragraph)
        for header, rows, xs in ((INDICATORS_HEADER, INDICATORS, [160, 760, 1160]),
                                 (TOWNS_HEADER, TOWNS, [160, 420, 860, 1100, 1400])):
            y += 60
            top = y - 12
            for row in [header, *rows]:
                for x, cell in zip(xs, row):
                    d.text((x, y), cell, font=font, fill="black")
                    ref.append(cell)
                y += 62
            if ruled:                             # a grid: a rule above each row, one left of each column
                bottom = top + 62 * (len(rows) + 1)
                for k in range(len(rows) + 2):
                    d.line([(140, top + 62 * k), (W - 120, top + 62 * k)], fill="black", width=2)
                for x in [140] + [x - 20 for x in xs[1:]] + [W - 120]:
                    d.line([(x, top), (x, bottom)], fill="black", width=2)
        y += 40
        d.text((160, y), "注：规上企业指年主营业务收入2000万元及以上的工业企业。", font=font, fill="black")
        ref.append("注：规上企业指年主营业务收入2000万元及以上的工业企业。")
        return im, "".join(ref)

    def scanned(im):
        rng = random.Random(7)
        im = im.rotate(0.5, resample=Image.Resampling.BICUBIC, fillcolor="white").filter(ImageFilter.GaussianBlur(0.8))
        px = im.convert("L").load()
        for _ in range(W * H // 50):
            x, y = rng.randrange(W), rng.randrange(H)
            px[x, y] = max(0, min(255, px[x, y] + rng.randint(-90, 90)))
        b = io.BytesIO()
        im.convert("L").save(b, "JPEG", quality=60)
        return Image.open(io.BytesIO(b.getvalue())).convert("RGB")

    want = _expected(INDICATORS_HEADER, INDICATORS) + _expected(TOWNS_HEADER, TOWNS)
    clean, ref = draw_page(False)
    ruled, ref_ruled = draw_page(True)
    return [("clean, borderless", clean, ref, want), ("scan, borderless", scanned(clean), ref, want),
            ("scan, ruled", scanned(ruled), ref_ruled, want)]


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _norm(s: str) -> str:
    import unicodedata
    return "".join(ch for ch in unicodedata.normalize("NFKC", s) if not ch.isspace())


def ocr_section() -> None:
    from qa.ingest import ocr

    os.environ["QA_OCR_CACHE"] = "off"
    os.environ["QA_OCR_PAGE_SECONDS"] = "0"
    ocr._load()                                   # loading the engine is not a page's time
    print("\n| OCR page | characters | character accuracy | table rows right | s a page (wall / CPU) |")
    print("|---|---:|---:|---:|---|")
    walls, cpus = [], []
    for name, image, ref, want in ocr_pages():
        t, c = time.perf_counter(), _clock()
        lines = ocr.recognize(image)
        wall, cpu = time.perf_counter() - t, _clock() - c
        walls.append(wall)
        cpus.append(cpu)
        hyp = _norm("".join(ln.text for ln in lines))
        r = _norm(ref)
        accuracy = 1 - _edit_distance(r, hyp) / len(r)
        text, _ = ocr.page_text(lines, image.width, image.height, 1)
        got = text.split("\n")
        ok = sum(1 for line in want if line in got)
        print(f"| {name} | {len(r)} | {100 * accuracy:.1f} % | {ok}/{len(want)} | {wall:.1f} / {cpu:.1f} |")
        missed = [line for line in want if line not in got]
        for line in missed[:3]:
            print(f"    missed: {line}")
    print(f"\npages/s: {len(walls) / sum(walls):.3f} (wall), {len(cpus) / sum(cpus):.3f} (CPU)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pdf", nargs="*", default=[], help="real PDFs to count as prose pages")
    ap.add_argument("--out", help="write the drawn PDFs and pages into this folder")
    ap.add_argument("--only", default="pdf,ocr", help="sections: pdf, ocr (default both)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tools.bench.bench import cpu_model

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    sections = set(args.only.split(","))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    if "pdf" in sections:
        pdf_section(args)
    if "ocr" in sections:
        if args.out:
            for name, image, *_ in ocr_pages():
                image.save(Path(args.out) / (name.replace(", ", "_") + ".png"))
        ocr_section()
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def pdf_section(args) -> None:
    from qa.ingest.pdf_tables import may_hold_table
    from qa.ingest.pdf_text import read_pdf

    tables = table_pdfs()
    prose = prose_pdfs() + [(Path(p).name, Path(p).read_bytes()) for p in args.pdf]
    if args.out:
        for name, data, *_ in tables + prose:
            (Path(args.out) / (name.split(",")[0].replace(" ", "_") + ".pdf")).write_bytes(data)

    print("\n| borderless table | pages | tables found: plumber text / aligned, no figures rule / shipped "
          "| data rows right (read_pdf) | s a page: pypdf / read_pdf without the borderless pass / read_pdf |")
    print("|---|---:|---|---:|---|")
    right = total = 0
    for name, data, want in tables:
        n = _count(data)
        text = read_pdf(data, ocr=False).text.split("\n")
        ok = sum(1 for line in want if line in text)
        right += ok
        total += len(want)
        a, b, c = _times(data)
        pages = _pages(data)
        print(f"| {name} | {pages} | {' / '.join(str(v) for v in n.values())} | {ok}/{len(want)} "
              f"| {a / pages:.3f} / {b / pages:.3f} / {c / pages:.3f} |")
    print(f"\ndata rows right: {right}/{total}")

    print("\n| prose | pages | pypdf text looks tabular (pages) | false tables: plumber text / aligned, "
          "no figures rule / shipped | pages rewritten by read_pdf | s a page: pypdf / read_pdf without the borderless pass / read_pdf |")
    print("|---|---:|---:|---|---:|---|")
    sums = {"pages": 0, "flagged": 0, "changed": 0, "pypdf": 0.0, "before": 0.0, "read": 0.0}
    false = {}
    import pypdf
    for name, data in prose:
        pages = _pages(data)
        layer = [p.extract_text() or "" for p in pypdf.PdfReader(io.BytesIO(data)).pages]
        flagged = sum(1 for t in layer if may_hold_table(t))
        n = _count(data)
        for k, v in n.items():
            false[k] = false.get(k, 0) + v
        # a page read through a table keeps boxes; every other page keeps pypdf's text
        changed = len({s.page for s in read_pdf(data, ocr=False).layout if s.box is not None})
        a, b, c = _times(data)
        sums["pages"] += pages
        sums["flagged"] += flagged
        sums["changed"] += changed
        sums["pypdf"] += a
        sums["before"] += b
        sums["read"] += c
        print(f"| {name} | {pages} | {flagged} | {' / '.join(str(v) for v in n.values())} | {changed} "
              f"| {a / pages:.3f} / {b / pages:.3f} / {c / pages:.3f} |")
    p = sums["pages"]
    print(f"| **all prose** | {p} | {sums['flagged']} | {' / '.join(str(v) for v in false.values())} "
          f"| {sums['changed']} | {sums['pypdf'] / p:.3f} / {sums['before'] / p:.3f} / {sums['read'] / p:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
