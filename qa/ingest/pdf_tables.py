"""Tables of a PDF page's text layer, with pdfplumber: the page's text rebuilt with each table
as one line per row, every cell after its column header (:mod:`qa.ingest.tables`).

Two kinds of table are found:

* **ruled tables** (a grid of lines, as Word and WPS draw them): pdfplumber's ``lines``
  strategy; merged cells are spread (a cell over several rows repeats in each);
* **three-line tables** (只有顶线、栏目线、底线, the usual table of Chinese reports and
  statistical bulletins): ≥ 2 long horizontal rules of the same extent with no vertical line
  between them; the rows and columns between the first and the last rule are read from the
  text's alignment, and the rows above the second rule are the header.

* **borderless tables** (columns kept apart by whitespace only): pdfplumber's words, parted
  where a line has a gap of a character's height or more, lined up into columns by
  :mod:`qa.ingest.aligned`, which takes only runs with a header row, short cells and a column
  of figures. pdfplumber's own ``text`` strategy (and camelot's ``stream`` and ``network``)
  also turned paragraphs of plain report pages into "tables" (``docs/ingest.md``).

Every cell of a borderless table keeps its own box (the span of its value and of its header
label in the row's line); a ruled or three-line table's row keeps the row's box.

Only pages that draw at least a few lines, or whose pypdf text looks tabular
(:func:`may_hold_table`), are given to pdfplumber (pdfminer parses a page in ~0.1 s; pypdf's
text of a page without tables is kept as it is).
"""
from __future__ import annotations

import re
import statistics

from qa.ingest.aligned import PIECE_GAP, Piece, cell_spans, find_tables, join_close, rows_of
from qa.ingest.tables import Cell, Grid, clean_cell, row_lines
from qa.types import LayoutSpan

MIN_RULE = 0.3          # a three-line table's rules span ≥ 30 % of the page width
TEXT_SETTINGS = {"vertical_strategy": "text", "horizontal_strategy": "text", "snap_tolerance": 3,
                 "intersection_tolerance": 5}


def _box(bbox, page) -> tuple[float, float, float, float]:
    x0, top, x1, bottom = bbox
    w, h = float(page.width) or 1.0, float(page.height) or 1.0
    return (round(max(0.0, x0 / w), 4), round(max(0.0, top / h), 4),
            round(min(1.0, x1 / w), 4), round(min(1.0, bottom / h), 4))


def _ruled_grid(table) -> Grid:
    """pdfplumber's table → Grid; a None cell is covered by a merged cell to its left or above."""
    texts = table.extract()
    rows = table.rows
    ncols = max((len(r) for r in texts), default=0)
    col_x: dict[int, list[float]] = {}
    for row in rows:
        for c, bbox in enumerate(row.cells):
            if bbox is not None:
                col_x.setdefault(c, []).append(bbox[0])
    centers = {c: statistics.median(xs) for c, xs in col_x.items()}
    grid: list[list[Cell]] = []
    for r, row in enumerate(texts):
        out: list[Cell] = []
        for c in range(ncols):
            value = row[c] if c < len(row) else None
            if value is not None:
                out.append(Cell(clean_cell(value)))
                continue
            left = next((k for k in range(c - 1, -1, -1) if k < len(row) and row[k] is not None), None)
            lbox = rows[r].cells[left] if left is not None and left < len(rows[r].cells) else None
            x = centers.get(c)
            if lbox is not None and x is not None and lbox[2] > x + 1:
                out.append(Cell("", spread=True))            # a column span: written once
            elif r > 0 and c < len(grid[r - 1]):
                above = grid[r - 1][c]
                out.append(Cell(above.text, spread=above.spread))   # a row span: repeated
            else:
                out.append(Cell(""))
        grid.append(out)
    return Grid(grid, None)


def _three_line_tables(page, taken: list[tuple]) -> list[tuple[tuple, Grid, list[tuple]]]:
    """(bbox, grid, row boxes) of each three-line table on the page outside ``taken``."""
    width = float(page.width)
    rules = [e for e in page.edges if e["orientation"] == "h" and e["x1"] - e["x0"] >= MIN_RULE * width
             and not any(_inside((e["x0"], e["top"], e["x1"], e["bottom"]), b) for b in taken)]
    verticals = [e for e in page.edges if e["orientation"] == "v"]
    groups: list[list[dict]] = []
    for e in sorted(rules, key=lambda e: e["top"]):
        for g in groups:
            if abs(g[0]["x0"] - e["x0"]) <= 5 and abs(g[0]["x1"] - e["x1"]) <= 5 and e["top"] - g[-1]["top"] > 2:
                g.append(e)
                break
        else:
            groups.append([e])
    found = []
    for g in groups:
        if len(g) < 2:
            continue
        x0, x1 = min(e["x0"] for e in g), max(e["x1"] for e in g)
        top, bottom = g[0]["top"], g[-1]["bottom"]
        if bottom - top < 10:
            continue
        if any(v["x0"] > x0 + 2 and v["x0"] < x1 - 2 and v["bottom"] > top + 2 and v["top"] < bottom - 2
               for v in verticals):
            continue                      # vertical lines inside: a ruled table (or a drawing)
        bbox = (max(0, x0 - 1), max(0, top - 1), min(width, x1 + 1), min(float(page.height), bottom + 1))
        region = page.crop(bbox)
        tables = region.find_tables(TEXT_SETTINGS)
        if not tables:
            continue
        t = max(tables, key=lambda t: len(t.rows))
        texts = t.extract()
        keep = [(row, tr) for row, tr in zip(texts, t.rows) if any((c or "").strip() for c in row)]
        if len(keep) < 2 or max(len(r) for r, _ in keep) < 2:
            continue
        second = g[1]["top"]
        header_rows = sum(1 for _, tr in keep if tr.bbox[3] <= second + 2) if len(g) >= 3 else 1
        grid = Grid([[Cell(clean_cell(c)) for c in row] for row, _ in keep], header_rows or None)
        found.append((bbox, grid, [tr.bbox for _, tr in keep]))
    return found


def aligned_tables(page, taken: list[tuple] = (), figures: bool = True
                   ) -> list[tuple[tuple, Grid, list[list[tuple | None]]]]:
    """(bbox, grid, cell boxes) of each borderless table on the page outside ``taken``."""
    words = [w for w in page.extract_words(keep_blank_chars=False, use_text_flow=False)
             if not any(_inside((w["x0"], w["top"], w["x1"], w["bottom"]), b) for b in taken)]
    rows = rows_of([Piece(w["text"], (w["x0"], w["top"], w["x1"], w["bottom"])) for w in words])
    rows = [join_close(r, PIECE_GAP * statistics.median(p.box[3] - p.box[1] for p in r)) for r in rows]
    return [(t.bbox, t.grid, t.boxes) for t in find_tables(rows, figures)]


_SHORT_LINE = 20          # characters
_RUN_SHORT = 6            # this many short lines in a row: perhaps a table's cells, one a line
_RUN_SPACED = 3           # this many lines of 2–8 pieces parted by spaces: perhaps a table's rows
_MAX_CELLS = 8            # … (a line of English prose has more words)
_SPACED_LINE = 60         # … and a row no more characters than this


def may_hold_table(text: str) -> bool:
    """Whether pypdf's text of a page without drawn lines may hold a borderless table, so the
    page is worth pdfplumber's time: a run of ≥ 6 short lines (pypdf writes a cell a line)
    or of ≥ 3 lines of 2–8 space-parted pieces (≤ 60 characters), with digits in ≥ 2 of them."""
    short: list[str] = []
    spaced: list[str] = []
    for line in text.split("\n"):
        s = line.strip()
        short = short + [s] if s and len(s) <= _SHORT_LINE else []
        spaced = spaced + [s] if 2 <= len(s.split()) <= _MAX_CELLS and len(s) <= _SPACED_LINE else []
        for run, need in ((short, _RUN_SHORT), (spaced, _RUN_SPACED)):
            if len(run) >= need and sum(1 for x in run if _DIGIT.search(x)) >= 2:
                return True
    return False


_DIGIT = re.compile(r"\d")


def _inside(inner, outer) -> bool:
    return inner[0] >= outer[0] - 2 and inner[1] >= outer[1] - 2 and inner[2] <= outer[2] + 2 and inner[3] <= outer[3] + 2


def page_with_tables(page, page_no: int, unwrap) -> tuple[str, list[LayoutSpan]] | None:
    """The page's text with its tables as header lines, and a span per line (offsets from the
    start of the page's text, boxes in fractions of the page), or None when it has no table.
    ``unwrap`` joins lines the layout wrapped (:func:`qa.ingest.pdf_text.unwrap_lines`)."""
    items: list[tuple[float, str, object]] = []     # (top, kind, payload)
    bboxes: list[tuple] = []
    for t in page.find_tables():
        grid = _ruled_grid(t)
        if grid.width < 2 or sum(1 for r in grid.rows if any(c.text for c in r)) < 2:
            continue
        bboxes.append(t.bbox)
        items.append((t.bbox[1], "table", (grid, t.bbox, [r.bbox for r in t.rows], None)))
    for bbox, grid, row_boxes in _three_line_tables(page, bboxes):
        bboxes.append(bbox)
        items.append((bbox[1], "table", (grid, bbox, row_boxes, None)))
    for bbox, grid, cell_boxes in aligned_tables(page, bboxes):
        bboxes.append(bbox)
        items.append((bbox[1], "table", (grid, bbox, [None] * len(grid.rows), cell_boxes)))
    if not bboxes:
        return None
    outside = page
    for b in bboxes:
        outside = outside.outside_bbox(b)
    for line in outside.extract_text_lines(return_chars=False):
        if line["text"].strip():
            items.append((line["top"], "line", line))
    items.sort(key=lambda it: (it[0], it[1] == "table"))

    parts: list[str] = []
    spans: list[LayoutSpan] = []
    pos = 0

    def emit_block(block: list[dict]):
        nonlocal pos
        source = [ln["text"] for ln in block]
        joined = unwrap("\n".join(source))
        if parts:
            parts.append("\n")
            pos += 1
        cursor = 0
        for ln, text in zip(block, source):
            s = text.strip()
            i = joined.find(s, cursor)
            if i < 0:
                continue
            spans.append(LayoutSpan(pos + i, pos + i + len(s), page_no,
                                    _box((ln["x0"], ln["top"], ln["x1"], ln["bottom"]), page)))
            cursor = i + len(s)
        parts.append(joined)
        pos += len(joined)

    block: list[dict] = []
    for _, kind, payload in items:
        if kind == "line":
            block.append(payload)
            continue
        if block:
            emit_block(block)
            block = []
        grid, bbox, row_boxes, cell_boxes = payload
        for row in row_lines(grid):
            if parts:
                parts.append("\n")
                pos += 1
            if cell_boxes is None:
                row_box = row_boxes[row.row] if row.row < len(row_boxes) and row_boxes[row.row] else bbox
                spans.append(LayoutSpan(pos, pos + len(row.text), page_no, _box(row_box, page)))
            else:
                spans.extend(LayoutSpan(pos + s, pos + e, page_no, _box(box, page))
                             for s, e, box in cell_spans(row, cell_boxes))
            parts.append(row.text)
            pos += len(row.text)
    if block:
        emit_block(block)
    return "".join(parts), spans
