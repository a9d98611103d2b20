"""Tables keep their structure (issue 19): in .html/.htm, .docx, .pdf (text layer) and .md
each data row becomes one line of the stored text with every cell after its column header,
and a question about a cell is answered and cited inside that line with exact offsets.
.txt files are never touched."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from qa.ingest.loaders import read_document
from qa.ingest.tables import Grid, grid_from_spans, markdown_tables, table_lines

TOWNS = [("百官街道", "57.6", "20.4", "42", "张伟"), ("曹娥街道", "91.4", "9.9", "240", "王芳"),
         ("东关街道", "152.2", "6.4", "117", "李娜"), ("道墟街道", "46.3", "-4.1", "209", "刘洋"),
         ("梁湖街道", "141.2", "17.9", "11", "陈静")]
HEADER = ("街道/镇", "工业总产值（亿元）", "增长（%）", "规上企业（家）", "负责人")
# what each row must become (units move from the header onto the number)
ROW_LINE = "街道/镇：{0}，工业总产值：{1}亿元，增长：{2}%，规上企业：{3}家，负责人：{4}"
FORM = [("索引号", "11330604002590000X/2021-00012", "发布单位", "杭州湾上虞经开区"),
        ("公开方式", "主动公开", "发文日期", "2021-02-23")]
FORM_LINES = ["索引号：11330604002590000X/2021-00012，发布单位：杭州湾上虞经开区",
              "公开方式：主动公开，发文日期：2021-02-23"]


def _grid(rows, header_rows=None) -> Grid:
    g = grid_from_spans([[c if isinstance(c, tuple) else (c, 1, 1, False) for c in r] for r in rows])
    g.header_rows = header_rows
    return g


# ---------------------------------------------------------------- the rules, on grids

def test_header_row_found_and_units_moved_onto_numbers():
    lines = table_lines(_grid([HEADER, *TOWNS]))
    assert lines == [ROW_LINE.format(*t) for t in TOWNS]


def test_each_label_and_value_of_a_row_line_names_the_cells_it_came_from():
    from qa.ingest.tables import row_lines

    row = row_lines(_grid([HEADER, *TOWNS]))[2]               # 东关街道
    pieces = {row.text[s:e]: cells for s, e, cells in row.pieces}
    assert row.row == 3 and row.text == ROW_LINE.format(*TOWNS[2])
    assert pieces["东关街道"] == ((3, 0),) and pieces["街道/镇"] == ((0, 0),)
    assert pieces["152.2亿元"] == ((3, 1),) and pieces["工业总产值"] == ((0, 1),)   # the unit went with the value
    assert len(pieces) == 2 * len(HEADER)
    form = row_lines(_grid(FORM))[0]
    assert [(form.text[s:e], cells) for s, e, cells in form.pieces][:2] == [
        ("索引号", ((0, 0),)), ("11330604002590000X/2021-00012", ((0, 1),))]


def test_label_value_form():
    assert table_lines(_grid(FORM)) == FORM_LINES


def test_row_span_repeats_column_span_written_once_section_row_kept():
    rows = [["类别", "项目", "投资（亿元）"],
            [("新材料", 1, 2, False), "圆金新材料项目", "12.5"], ["先进高分子材料平台", "30.0"],
            [("二、数字经济", 3, 1, False)],
            [("合并", 2, 1, False), "8.2"]]
    assert table_lines(_grid(rows)) == [
        "类别：新材料，项目：圆金新材料项目，投资：12.5亿元",
        "类别：新材料，项目：先进高分子材料平台，投资：30.0亿元",
        "二、数字经济",
        "类别：合并，投资：8.2亿元"]


def test_two_header_rows_and_an_empty_corner():
    rows = [[("", 1, 2, True), ("产值", 2, 1, True)], [("2019年", 1, 1, True), ("2020年", 1, 1, True)],
            ["工业", "1200亿", "1350亿"]]
    assert table_lines(_grid(rows)) == ["工业，产值2019年：1200亿，产值2020年：1350亿"]


def test_tables_without_a_header_stay_tab_separated_rows():
    assert table_lines(_grid([["12.5", "30.0", "8.2"], ["1", "2", "3"]])) == ["12.5\t30.0\t8.2", "1\t2\t3"]
    assert table_lines(_grid([["只有一行", "两个格子"]])) == ["只有一行\t两个格子"]


# ---------------------------------------------------------------- markdown and .txt

MD_TABLE = "| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER) + "\n" + \
    "".join("| " + " | ".join(t) + " |\n" for t in TOWNS)


def test_markdown_table_rows_become_header_lines_and_the_rest_is_untouched(tmp_path):
    prose = "# 2020年上虞区各街道工业经济\n\n全区工业平稳增长。\n\n"
    code = "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```\n"
    (tmp_path / "t.md").write_text(prose + MD_TABLE + "\n结尾。\n" + code, encoding="utf-8")
    doc = read_document(tmp_path / "t.md")
    assert doc.text == prose + "\n".join(ROW_LINE.format(*t) for t in TOWNS) + "\n\n结尾。\n" + code
    header_only = "| 指标 | 数值 |\n|---|---|\n正文。\n"
    assert markdown_tables(header_only) == header_only        # no rows: nothing to structure


def test_txt_with_the_same_table_is_read_exactly_as_it_was(tmp_path):
    text = "表格\n" + MD_TABLE
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    assert read_document(tmp_path / "t.txt").text == text
    assert read_document(tmp_path / "t.txt").layout == ()


# ---------------------------------------------------------------- HTML

def test_html_data_table_form_table_and_layout_table(tmp_path):
    head = "".join(f"<th>{h}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in t) + "</tr>" for t in TOWNS)
    form = "".join(f"<tr><th>{a}</th><td>{b}</td><th>{c}</th><td>{d}</td></tr>" for a, b, c, d in FORM)
    page = (f"<html><head><title>工业经济</title></head><body><article><h1>工业经济运行</h1>"
            f"<table class='xxgk'>{form}</table><p>正文第一段。</p>"
            f"<table><caption>表1 各街道</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<table><tr><td><table><tr><td>甲</td><td>乙</td></tr></table></td><td>布局</td></tr></table>"
            f"</article></body></html>")
    (tmp_path / "p.html").write_text(page, encoding="utf-8")
    lines = read_document(tmp_path / "p.html").text.split("\n")
    assert lines == ["工业经济运行", *FORM_LINES, "正文第一段。", "表1 各街道",
                     *[ROW_LINE.format(*t) for t in TOWNS], "甲\t乙", "布局"]


# ---------------------------------------------------------------- Word

def _docx_bytes(rows, header_repeat: bool = False, merge=()) -> bytes:
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    d = docx.Document()
    d.add_paragraph("2020年各街道工业经济运行情况")
    t = d.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v:
                t.cell(r, c).text = v
    for a, b in merge:
        t.cell(*a).merge(t.cell(*b))
    if header_repeat:
        tr_pr = t.rows[0]._tr.get_or_add_trPr()
        tr_pr.append(OxmlElement("w:tblHeader"))
        assert tr_pr.find(qn("w:tblHeader")) is not None
    d.add_paragraph("以上数据为快报数。")
    b = io.BytesIO()
    d.save(b)
    return b.getvalue()


def test_docx_header_row_and_merged_cells(tmp_path):
    (tmp_path / "t.docx").write_bytes(_docx_bytes([HEADER, *TOWNS], header_repeat=True))
    assert read_document(tmp_path / "t.docx").text.split("\n") == [
        "2020年各街道工业经济运行情况", *[ROW_LINE.format(*t) for t in TOWNS], "以上数据为快报数。"]
    rows = [["类别", "项目", "投资（亿元）"], ["新材料", "圆金新材料项目", "12.5"], ["", "先进高分子材料平台", "30.0"]]
    (tmp_path / "m.docx").write_bytes(_docx_bytes(rows, merge=[((1, 0), (2, 0))]))
    assert read_document(tmp_path / "m.docx").text.split("\n")[1:3] == [
        "类别：新材料，项目：圆金新材料项目，投资：12.5亿元", "类别：新材料，项目：先进高分子材料平台，投资：30.0亿元"]


def test_docx_form_table(tmp_path):
    (tmp_path / "f.docx").write_bytes(_docx_bytes(FORM))
    assert read_document(tmp_path / "f.docx").text.split("\n")[1:3] == FORM_LINES


# ---------------------------------------------------------------- PDF (text layer)

def _table_pdf(path: Path, rows, style: str) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = ParagraphStyle("b", fontName="STSong-Light", fontSize=11, leading=16)
    t = Table([list(r) for r in rows])
    st = [("FONTNAME", (0, 0), (-1, -1), "STSong-Light"), ("FONTSIZE", (0, 0), (-1, -1), 10)]
    if style == "grid":
        st.append(("GRID", (0, 0), (-1, -1), 0.5, colors.black))
    elif style == "three-line":          # 三线表: top rule, rule under the header, bottom rule
        st += [("LINEABOVE", (0, 0), (-1, 0), 1, colors.black), ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
               ("LINEBELOW", (0, -1), (-1, -1), 1, colors.black)]
    t.setStyle(TableStyle(st))
    para = Paragraph("2020年，上虞区各街道、镇工业经济运行情况如下表所示。", body)
    SimpleDocTemplate(str(path), pagesize=A4).build([para, Spacer(1, 12), t, Spacer(1, 12), para])


@pytest.mark.parametrize("style", ["grid", "three-line"])
def test_pdf_ruled_and_three_line_tables(tmp_path, style):
    p = tmp_path / f"{style}.pdf"
    _table_pdf(p, [HEADER, *TOWNS], style)
    doc = read_document(p)
    lines = doc.text.split("\n")
    assert lines == ["2020年，上虞区各街道、镇工业经济运行情况如下表所示。", *[ROW_LINE.format(*t) for t in TOWNS],
                     "2020年，上虞区各街道、镇工业经济运行情况如下表所示。"]
    from qa.ingest.layout import locate
    i = doc.text.index("152.2亿元")
    page, box = locate(doc, i, i + len("152.2亿元"))
    assert page == 1 and box is not None
    row_top = [s.box for s in doc.layout if s.start <= i < s.end][0][1]
    first_row_top = [s.box for s in doc.layout if doc.text[s.start:s.end].startswith("街道/镇：百官")][0][1]
    assert row_top > first_row_top         # the third row's box lies below the first row's


def test_pdf_form_table(tmp_path):
    p = tmp_path / "form.pdf"
    _table_pdf(p, FORM, "grid")
    assert read_document(p).text.split("\n")[1:3] == FORM_LINES


def test_pdf_borderless_table_rows_carry_headers_and_each_cell_keeps_its_box(tmp_path):
    p = tmp_path / "borderless.pdf"
    _table_pdf(p, [HEADER, *TOWNS], "none")      # no rule drawn: columns by alignment only
    doc = read_document(p)
    assert doc.text.split("\n") == ["2020年，上虞区各街道、镇工业经济运行情况如下表所示。",
                                    *[ROW_LINE.format(*t) for t in TOWNS],
                                    "2020年，上虞区各街道、镇工业经济运行情况如下表所示。"]
    from qa.ingest.layout import locate

    def box_of(quote, after=0):
        i = doc.text.index(quote, after)
        page, box = locate(doc, i, i + len(quote))
        assert page == 1 and box is not None
        return box

    row = doc.text.index("东关街道")
    value, town, label = box_of("152.2亿元", row), box_of("东关街道", row), box_of("工业总产值", row)
    assert value[0] > town[2]                            # the value's cell right of the town's
    assert abs(value[1] - town[1]) < 0.005               # on the same row
    assert abs(label[0] - value[0]) < 0.01 and label[3] <= value[1]   # its header above it
    assert box_of("152.2亿元", row)[1] > box_of("57.6亿元")[1]         # the third row below the first
    for s in doc.layout:
        assert doc.text[s.start:s.end].strip() == doc.text[s.start:s.end] != ""


def _prose_pdf(path: Path) -> None:
    """A page of paragraphs (with figures), a government notice's header block in two aligned
    columns (索引号：… 发布机构：…), a list of names in four columns, names and telephone
    numbers in two: no table among them."""
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas
    from reportlab.platypus import Frame, Paragraph

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = ParagraphStyle("b", fontName="STSong-Light", fontSize=12, leading=20, firstLineIndent=24,
                          alignment=TA_JUSTIFY, wordWrap="CJK")
    paragraphs = ["2020年，上虞区实现地区生产总值1087.6亿元，增长3.6%。其中第一产业增加值42.3亿元，增长1.9%；"
                  "第二产业增加值553.2亿元，增长3.1%；第三产业增加值492.1亿元，增长4.3%。三次产业结构为3.9:50.9:45.2。",
                  "全年新增规上工业企业126家，规上工业总产值突破2000亿元，达到2033.5亿元，增长8.1%。"
                  "新材料、高端装备、现代医药三大主导产业产值分别为604.5亿元、388.7亿元和215.2亿元，"
                  "合计占规上工业的59.7%。",
                  "e游小镇全面推进以数字游戏、动漫影视为重点的2.0版建设，全年引进项目86个，总投资120亿元，"
                  "营业收入增长35.2%，入选省级特色小镇。"]
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("STSong-Light", 10)
    for k, (a, b) in enumerate([("索引号：11330604002590000X/2021-00012", "发布机构：杭州湾上虞经开区"),
                                ("公开方式：主动公开", "发布日期：2021-02-23"),
                                ("组配分类：通知公告", "文号：虞开委〔2021〕3号")]):
        c.drawString(60, 790 - 16 * k, a)
        c.drawString(330, 790 - 16 * k, b)
    Frame(60, 420, 470, 300).addFromList([Paragraph(t, body) for t in paragraphs], c)
    c.setFont("STSong-Light", 12)
    c.drawString(72, 380, "附件：区数字经济发展领导小组成员名单")
    for k, name in enumerate(["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄勇", "周敏", "吴强", "徐丽", "孙杰"]):
        c.drawString(130 + (k % 4) * 100, 350 - (k // 4) * 20, name)
    c.drawString(72, 290, "联系人及电话：")
    for k, (name, phone) in enumerate([("张伟", "0575-82123456"), ("王芳", "0575-82765432"),
                                       ("李娜", "0575-82011223"), ("刘洋", "0575-82334455")]):
        c.drawString(130, 270 - 18 * k, name)
        c.drawString(230, 270 - 18 * k, phone)
    c.showPage()
    c.save()


def test_prose_pages_make_no_table(tmp_path):
    import pdfplumber
    import pypdf

    from qa.ingest.pdf_tables import aligned_tables, may_hold_table
    from qa.ingest.pdf_text import unwrap_lines

    p = tmp_path / "prose.pdf"
    _prose_pdf(p)
    with pdfplumber.open(p) as pdf:
        assert aligned_tables(pdf.pages[0]) == []
    layer = unwrap_lines(pypdf.PdfReader(p).pages[0].extract_text().rstrip("\n"))
    assert may_hold_table(layer)                 # short lines with figures: pdfplumber looks at it
    doc = read_document(p)
    assert doc.text == layer                     # and pypdf's text is kept, untouched
    assert all(s.box is None for s in doc.layout)
    assert "，增长：" not in doc.text and "发布机构：杭州湾上虞经开区，" not in doc.text


# ---------------------------------------------------------------- asked and cited

def test_a_cell_is_answered_and_cited_inside_its_header_line(tmp_path, build_index, check_citations):
    from qa import answer
    from qa.index.store import load_index

    folder = tmp_path / "docs"
    folder.mkdir()
    head = "".join(f"<th>{h}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in t) + "</tr>" for t in TOWNS)
    (folder / "towns.html").write_text(f"<html><head><title>各街道工业经济</title></head><body>"
                                       f"<p>2020年各街道工业经济运行情况如下。</p><table><tr>{head}</tr>{body}"
                                       f"</table></body></html>", encoding="utf-8")
    (folder / "form.docx").write_bytes(_docx_bytes(FORM))
    towns2 = [("丰惠镇", "36.6", "14.6", "124", "杨帆"), ("永和镇", "196.6", "15.0", "41", "赵磊")]
    (folder / "towns.md").write_text("# 各镇统计\n\n| " + " | ".join(HEADER) + " |\n|" + "---|" * 5 + "\n"
                                     + "".join("| " + " | ".join(t) + " |\n" for t in towns2), encoding="utf-8")
    index = build_index([folder], tmp_path / "index")
    docs = load_index(index).documents
    for question, want, line in [
        ("东关街道的工业总产值是多少亿元", "152.2亿元", ROW_LINE.format(*TOWNS[2])),
        ("梁湖街道的增长率是多少", "17.9%", ROW_LINE.format(*TOWNS[4])),
        ("丰惠镇有多少家规上企业", "124家", ROW_LINE.format(*towns2[0])),
    ]:
        a = answer(question, index=str(index))
        check_citations(a, docs)
        assert not a.no_answer and a.text == want, (question, a.text)
        c = a.citations[0]
        text = docs[c.doc_id].text
        assert text[c.start:c.end] == c.quote == want
        row = text[text.rindex("\n", 0, c.start) + 1:text.index("\n", c.end) if "\n" in text[c.end:] else len(text)]
        assert row == line                  # the quote stands in its row, after its header


def test_a_cell_of_a_borderless_pdf_table_is_answered_with_its_header_page_and_box(tmp_path, build_index,
                                                                                  check_citations):
    from qa import answer
    from qa.index.store import load_index

    folder = tmp_path / "docs"
    folder.mkdir()
    _table_pdf(folder / "towns.pdf", [HEADER, *TOWNS], "none")
    index = build_index([folder], tmp_path / "index")
    docs = load_index(index).documents
    a = answer("东关街道的工业总产值是多少亿元", index=str(index))
    check_citations(a, docs)
    assert not a.no_answer and a.text == "152.2亿元"
    c = a.citations[0]
    assert "街道/镇：东关街道，工业总产值：152.2亿元" in c.sentence      # the header beside the value
    assert c.page == 1
    doc = docs[c.doc_id]
    cell = [s.box for s in doc.layout if s.start <= c.start and c.end <= s.end][0]
    assert c.box == cell                         # the box of the cell the value was read from
