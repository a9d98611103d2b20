"""Tables → lines that keep their structure: one line per row, each cell after its column header.

A table of .html/.htm, .docx, .pdf (text layer), .md files and of scans (OCR) becomes, in the stored text,
one line per data row in which every cell stands after its header::

    街道/镇：百官街道，工业总产值：57.6亿元，增长：20.4%，负责人：张伟

so a question about one cell finds the row, the column's name and the value side by side, and
the answer is cited with exact offsets into that line. Tables that lay out a form of labels
and values (``索引号 | 001 | 发布单位 | 杭州湾上虞经开区``) become ``索引号：001，发布单位：杭州湾上虞经开区``.

Cells are separated by "，" (:data:`CELL_SEP`), not "；": the chunker ends a sentence at "；",
which would cut the row into one sentence per cell and part each value from its row's name
(40 cell questions over a 10-row table: 28 answered right with "，", 11 with "；";
``docs/ingest.md``). A unit that a header gives in brackets moves onto a plain number
(``工业总产值（亿元）`` + ``57.6`` → ``工业总产值：57.6亿元``), so the cell reads as the amount it is.

Each reader builds a :class:`Grid` (cells with their spans already spread over the columns and
rows they cover) and calls :func:`table_lines`, or :func:`row_lines` to learn where each label
and value stands in a line (readers that know the cells' boxes place them on the page). How a table is read:

* **header rows**: the rows the format marks as headers (HTML ``<thead>``/all-``<th>`` rows, Word's
  "repeat as header row", the row above markdown's ``|---|``), else the first row when it looks
  like one (≥ 2 columns, every cell filled, short, not a number) and more rows follow; with several
  header rows a column's label is its header texts top-down (``产值`` over ``2020年`` → ``产值2020年``);
* **label–value rows** (a form): every row's cells alternate label, value — the labels short, without
  digits, or marked as headers in the source (``<th>``), or ending in a colon; then each row is
  ``label：value，label：value``;
* otherwise (one row, one column, or nothing that looks like a header) the row's cells are joined
  by :data:`PLAIN_SEP` (a tab), as before this module existed.

A value spread down by a row span is repeated in every row it covers (each line stands on its
own); a value spread across columns by a column span is written once. Rows with nothing in them
are dropped; a row with one filled cell only (a section title inside the table) is that cell.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

CELL_SEP = "，"      # between the cells of one row (not "；": the chunker ends a sentence there, see docs/ingest.md)
KEY_SEP = "："       # between a header and its cell
PLAIN_SEP = "\t"     # cells of a table without headers, as the readers always wrote them
MAX_LABEL = 16       # a header / label longer than this many characters is text, not a label
MAX_CELL = 300       # a cell longer than this: the "table" lays out a page, it holds no data

_SPACES = re.compile(r"\s+")
_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_NUMBER = re.compile(r"^[\s+\-−–—~～约近超过余多≈<>≥≤%‰％.,，·:：/()（）\d]*\d[\s\d.,，%‰％]*"
                     r"(万|亿|千|百|元|万元|亿元|美元|吨|万吨|个|家|人|户|项|次|倍|米|公里|平方米|亩|公顷|号)*$")
_DIGIT = re.compile(r"\d")
_COLON_END = re.compile(r"[:：]\s*$")


def clean_cell(text: str | None) -> str:
    """A cell's text on one line: whitespace runs become one space, and none is kept between
    two CJK characters (a line break inside a cell of Chinese text is only layout)."""
    if not text:
        return ""
    text = _CJK_GAP.sub("", text.strip())
    return _SPACES.sub(" ", text).strip()


@dataclass
class Cell:
    text: str
    header: bool = False        # marked as a header in the source (<th>, Word header row)
    spread: bool = False        # covered by a column span of the cell on its left (written once)


@dataclass
class Grid:
    """A table's cells, ``rows[r][c]``, spans spread; ``header_rows`` when the source says."""

    rows: list[list[Cell]] = field(default_factory=list)
    header_rows: int | None = None

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


def grid_from_spans(rows: list[list[tuple[str, int, int, bool]]]) -> Grid:
    """Rows of ``(text, colspan, rowspan, is_header)`` as they stand in the source → a
    :class:`Grid`: a cell with ``colspan`` k covers k columns (written once), one with
    ``rowspan`` k repeats in the k−1 rows below; cells of later rows skip the covered slots."""
    grid: list[list[Cell | None]] = []
    pending: dict[tuple[int, int], Cell] = {}       # (row, col) → cell spread down into it
    for r, row in enumerate(rows):
        out: list[Cell | None] = []
        c = 0

        def fill_pending():
            nonlocal c
            while (r, c) in pending:
                src = pending.pop((r, c))
                out.append(Cell(src.text, src.header, src.spread))
                c += 1

        fill_pending()
        for text, colspan, rowspan, is_header in row:
            colspan = max(1, min(int(colspan or 1), 100))
            rowspan = max(1, min(int(rowspan or 1), 1000))
            text = clean_cell(text)
            for k in range(colspan):
                cell = Cell(text, is_header, spread=k > 0)
                out.append(cell)
                for down in range(1, rowspan):
                    pending[(r + down, c)] = cell
                c += 1
            fill_pending()
        grid.append(out)
    # rows spread into past the last source row are dropped; pad every row to the width
    width = max((len(r) for r in grid), default=0)
    return Grid([[c if c is not None else Cell("") for c in row] + [Cell("", spread=True)] * (width - len(row))
                 for row in grid])


def is_number(s: str) -> bool:
    """Whether a cell is a number or an amount (``57.6``, ``-4.1%``, ``42家``, ``1.2万元``)."""
    return bool(_NUMBER.match(s))


def _label_like(cell: Cell) -> bool:
    t = cell.text
    if not t or cell.spread:
        return False
    if cell.header or _COLON_END.search(t):
        return len(t) <= 2 * MAX_LABEL
    return len(t) <= MAX_LABEL and not _DIGIT.search(t)


def _header_like(row: list[Cell]) -> bool:
    """Every cell filled (the top-left corner may be empty), short, and not a number or amount
    (a year like 2020年 is a fine column name)."""
    cells = [c for c in row if not c.spread]
    if len(cells) < 2:
        return False
    rest = cells[1:] if not cells[0].text else cells
    return len(rest) >= 2 and all(c.text and len(c.text) <= MAX_LABEL * 2 and not is_number(c.text)
                                  for c in rest)


def _form_like(grid: Grid) -> bool:
    """Every row alternates label, value (the labels label-like; at least one value filled)."""
    if grid.width < 2 or grid.width % 2:
        return False
    rows = [r for r in grid.rows if any(c.text for c in r)]
    if not rows:
        return False
    for row in rows:
        cells = [c for c in row if not c.spread]
        if len(cells) % 2:
            return False
        labels, values = cells[0::2], cells[1::2]
        if not all(_label_like(c) for c in labels) or any(v.header for v in values):
            return False
    marked = all(c.header or _COLON_END.search(c.text) for row in rows for c in [x for x in row if not x.spread][0::2])
    if marked:
        return True
    # unmarked labels: a first row of labels over rows of values would also pass; only a
    # form when some value in the first row is plainly a value (has digits or is long)
    first_values = [c for c in rows[0] if not c.spread][1::2]
    return len(rows) == 1 and grid.width >= 4 or any(
        _DIGIT.search(v.text) or len(v.text) > MAX_LABEL for v in first_values)


def _column_labels(header: list[list[Cell]], width: int) -> list[str]:
    labels = []
    for c in range(width):
        parts: list[str] = []
        for row in header:
            t = row[c].text if c < len(row) else ""
            if t and (not parts or parts[-1] != t):
                parts.append(t)
        labels.append("".join(parts))
    return labels


def _strip_colon(label: str) -> str:
    return _COLON_END.sub("", label)


_UNIT_LABEL = re.compile(r"^(?P<name>.*?\S)\s*[（(]\s*(?:单位\s*[:：]\s*)?(?P<unit>[^()（）]{1,8}?)\s*[)）]$")
_UNITS = {
    "%", "％", "‰", "元", "万元", "亿元", "千元", "百万元", "美元", "万美元", "亿美元", "欧元", "港元",
    "吨", "万吨", "千克", "公斤", "克", "个", "家", "人", "万人", "人次", "万人次", "户", "万户", "项", "次",
    "件", "台", "辆", "套", "座", "所", "张", "篇", "本", "株", "头", "只", "亩", "万亩", "公顷", "平方米",
    "万平方米", "平方公里", "公里", "千米", "米", "厘米", "千瓦", "万千瓦", "千瓦时", "万千瓦时", "亿千瓦时",
    "立方米", "万立方米", "天", "小时", "分钟", "岁", "年", "个月", "倍", "元/吨", "元/平方米", "元/人",
}
_PLAIN_NUMBER = re.compile(r"^[+\-−]?\d[\d,，]*(\.\d+)?$")


def _with_unit(label: str, value: str) -> tuple[str, str]:
    """A unit that the header gives in brackets goes onto a plain number:
    ``工业总产值（亿元）`` / ``57.6`` → ``工业总产值`` / ``57.6亿元``, so the cell reads as
    the amount it is (``增长（%）`` / ``20.4`` → ``增长`` / ``20.4%``)."""
    m = _UNIT_LABEL.match(label)
    if m and m.group("unit").strip() in _UNITS and _PLAIN_NUMBER.match(value):
        return m.group("name"), value + m.group("unit").strip()
    return label, value


@dataclass(frozen=True)
class RowLine:
    """One line of a table's text: ``text`` made from ``grid.rows[row]``, and where each label
    and value stands in it: ``pieces`` of ``(start, end, cells)``, offsets into ``text`` and
    the ``(row, column)`` grid cells the piece was read from (a column's header label: its
    header cells; a value: its cell). Readers that know the cells' boxes place each piece."""

    row: int
    text: str
    pieces: tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...] = ()


def _pairs_line(pairs: list[tuple[str, str, tuple, tuple]]) -> tuple[str, list]:
    """``label：value，…`` from ``(label, value, label cells, value cells)``, and its pieces
    (see :class:`RowLine`); a value under the same label as the one before joins it."""
    merged: list[list] = []              # [label, label cells, [(value, value cells), …]]
    for label, value, label_cells, value_cells in pairs:
        if not value:
            continue
        label, value = _with_unit(label, value)
        if merged and label and merged[-1][0] == label:
            merged[-1][2].append((value, value_cells))
        else:
            merged.append([label, label_cells, [(value, value_cells)]])
    text: list[str] = []
    pieces: list = []
    pos = 0
    for k, (label, label_cells, values) in enumerate(merged):
        if k:
            text.append(CELL_SEP)
            pos += len(CELL_SEP)
        shown = _strip_colon(label)
        if label and label != " ".join(v for v, _ in values):
            pieces.append((pos, pos + len(shown), tuple(label_cells)))
            text.append(shown + KEY_SEP)
            pos += len(shown) + len(KEY_SEP)
        for j, (value, cells) in enumerate(values):
            if j:
                text.append(" ")
                pos += 1
            pieces.append((pos, pos + len(value), tuple(cells)))
            text.append(value)
            pos += len(value)
    return "".join(text), pieces


def table_lines(grid: Grid) -> list[str]:
    """The lines a table contributes to the text (see the module doc); [] for an empty one."""
    return [r.text for r in row_lines(grid)]


def table_rows(grid: Grid) -> list[tuple[int, str]]:
    """``(index of the row in grid.rows, line)`` for each line of :func:`table_lines`."""
    return [(r.row, r.text) for r in row_lines(grid)]


def has_header(grid: Grid) -> bool:
    """Whether :func:`row_lines` writes the table's rows as ``header：value`` (a header row
    found, or a form of labels and values), not as plain tab-separated cells."""
    return _read(grid)[0] != "plain"


def row_lines(grid: Grid) -> list[RowLine]:
    """Each line of :func:`table_lines` as a :class:`RowLine` (its grid row, text, pieces)."""
    return _read(grid)[1]


def _read(grid: Grid) -> tuple[str, list[RowLine]]:
    """("header" | "form" | "plain", the table's lines)."""
    indexed = [(i, r) for i, r in enumerate(grid.rows) if any(c.text for c in r)]
    if not indexed:
        return "plain", []
    rows = [r for _, r in indexed]
    width = grid.width
    n_header = grid.header_rows
    if n_header is None:
        n_header = 0
        while n_header < len(rows) - 1 and all(c.header or not c.text for c in rows[n_header]) \
                and any(c.header for c in rows[n_header]):
            n_header += 1                        # rows of <th> the parser did not put in <thead>
    if not n_header and _form_like(Grid(rows, None)):
        out = []
        for i, row in indexed:
            cells = [(c, x) for c, x in enumerate(row) if not x.spread]
            text, pieces = _pairs_line([(lab.text, val.text, ((i, a),), ((i, b),))
                                        for (a, lab), (b, val) in zip(cells[0::2], cells[1::2])])
            if text:
                out.append(RowLine(i, text, tuple(pieces)))
        return "form", out
    if not n_header and width >= 2 and len(rows) >= 2 and _header_like(rows[0]):
        n_header = 1
    n_header = min(n_header, len(rows))
    if not n_header or n_header == len(rows) or width < 2:
        return "plain", [_plain(i, row) for i, row in indexed if _plain(i, row).text]
    labels = _column_labels(rows[:n_header], width)
    header_cells = [tuple((h, c) for h, row in indexed[:n_header] if c < len(row) and row[c].text)
                    for c in range(width)]
    out = []
    for i, row in indexed[n_header:]:
        filled = [(c, x) for c, x in enumerate(row) if x.text and not x.spread]
        if len(filled) == 1 and width > 2:
            c, cell = filled[0]
            out.append(RowLine(i, cell.text, ((0, len(cell.text), ((i, c),)),)))   # a section title
            continue
        text, pieces = _pairs_line([(labels[c], cell.text, header_cells[c], ((i, c),))
                                    for c, cell in enumerate(row) if not cell.spread])
        if text:
            out.append(RowLine(i, text, tuple(pieces)))
    return "header", out


def _plain(i: int, row: list[Cell]) -> RowLine:
    parts, pieces, pos = [], [], 0
    for c, cell in enumerate(row):
        if cell.text and not cell.spread:
            if parts:
                pos += len(PLAIN_SEP)
            pieces.append((pos, pos + len(cell.text), ((i, c),)))
            parts.append(cell.text)
            pos += len(cell.text)
    return RowLine(i, PLAIN_SEP.join(parts), tuple(pieces))


# ---------------------------------------------------------------- markdown

_MD_DELIM = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_MD_CODE = re.compile(r"`([^`]*)`")


def _md_cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells, buf, i = [], [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            buf.append("|")
            i += 2
            continue
        if s[i] == "|":
            cells.append("".join(buf))
            buf = []
        else:
            buf.append(s[i])
        i += 1
    cells.append("".join(buf))
    return [_MD_CODE.sub(r"\1", _MD_EMPHASIS.sub(r"\2", c)).strip() for c in cells]


def markdown_tables(text: str) -> str:
    """``text`` with every pipe table (header row, ``|---|`` row, body rows) replaced by its
    :func:`table_lines`; everything else, code blocks included, is left exactly as it was."""
    lines = text.split("\n")
    out: list[str] = []
    i, fenced, changed = 0, False, False
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        if (not fenced and "|" in line and i + 1 < len(lines) and _MD_DELIM.match(lines[i + 1].rstrip("\r"))
                and "-" in lines[i + 1]):
            header = _md_cells(line.rstrip("\r"))
            n = len(_md_cells(lines[i + 1].rstrip("\r")))
            if len(header) == n and n >= 1:
                body = []
                j = i + 2
                while j < len(lines) and "|" in lines[j] and lines[j].strip():
                    body.append(_md_cells(lines[j].rstrip("\r")))
                    j += 1
                if not body:             # a header alone holds no row to structure: as it was
                    out.append(line)
                    i += 1
                    continue
                cr = "\r" if line.endswith("\r") else ""
                rows = [[(c, 1, 1, True) for c in header]] + \
                       [[(c, 1, 1, False) for c in (row + [""] * n)[:n]] for row in body]
                grid = grid_from_spans(rows)
                grid.header_rows = 1 if any(header) else None    # `| | |` header: find one
                out.extend(ln + cr for ln in table_lines(grid))
                i = j
                changed = True
                continue
        out.append(line)
        i += 1
    return "\n".join(out) if changed else text
