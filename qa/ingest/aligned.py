"""Tables found by alignment alone: pieces of text whose boxes line up in columns over
consecutive rows, with no rule drawn. Two readers use it: the borderless tables of a PDF's
text layer (:mod:`qa.ingest.pdf_tables`, pieces from pdfplumber's words) and the tables of
scans and images (:mod:`qa.ingest.ocr`, pieces are OCR lines).

``find_tables(rows)`` takes rows of :class:`Piece` (or anything with ``text`` and ``box``, such
as :class:`qa.ingest.ocr.OcrLine`; top to bottom, each row left to right,
pieces already parted where a row has a gap of at least a character's height) and returns an
:class:`AlignedTable` for each run of rows that is a table: its :class:`~qa.ingest.tables.Grid`
(first row the header) and the box of every cell, so each cell of the lines written from it
(:func:`qa.ingest.tables.row_lines`) keeps its place on the page.

A run is a table only when all of this holds (a paragraph turned into a false "table" would
write wrong ``header：value`` lines into the stored text, which is worse than a table left as
text lines; ``docs/ingest.md`` has the false-table counts on prose pages):

* ≥ 3 consecutive rows of ≥ 2 pieces each, at most :data:`MAX_ROW_GAP` line heights apart;
* the columns, the union of the pieces' x-extents over the run, are ≥ 2, and no row has two
  pieces in one column (the pieces line up);
* the first row is a header: a piece over every column (the top-left corner may be empty),
  each ≤ :data:`~qa.ingest.tables.MAX_LABEL` characters, not a number, not ``label：value``;
* ≥ 2 data rows; every column filled in at least half of them;
* data cells are short (median ≤ :data:`MAX_MEDIAN_CELL` characters, none over
  :data:`MAX_CELL_CHARS`), and some column holds digits in at least half of its cells (the
  tables of reports and bulletins are statistics; two columns of prose are not);
* not every column is filled edge to edge by its cells (:data:`FULL_SHARE` of them): columns
  of justified text are, table columns (names, figures aligned one way) are not.

A run is cut where a row no longer lines up with the rows above it, or where the space above a
row is over twice the usual and a line height more (two tables one under the other); a part that fails is tried again without its first row, its last row, or both (a title row
above the header, ``表1 …  单位：亿元``, or a note row under the table breaks the columns).
A row much closer to the one above than rows usually are (under :data:`WRAP_GAP` of the
run's median gap) is the next line of the same cells (a wrapped header or cell) and joins it.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from qa.ingest.tables import MAX_LABEL, Cell, Grid, clean_cell, is_number

Box = tuple[float, float, float, float]

MIN_ROWS = 3              # header + 2 data rows
MAX_ROW_GAP = 2.5         # rows of a table are at most this many line heights apart
WRAP_GAP = 0.5            # a row closer than this share of the median gap continues the row above
MAX_MEDIAN_CELL = 16      # median characters of a data cell
MAX_CELL_CHARS = 60       # no data cell longer than this
PIECE_GAP = 1.0           # words at least this many line heights apart are different cells
FULL_SHARE = 0.8          # a column whose cells this often fill its width is a column of text

_LABEL_VALUE = re.compile(r"\S[:：]\s*\S")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Piece:
    """Text at a place: ``box`` is ``(x0, y0, x1, y1)``, y downwards, any unit (the same for
    every piece of a page)."""

    text: str
    box: Box


@dataclass
class AlignedTable:
    """A table of rows ``rows[first:last + 1]`` of :func:`find_tables`' input: ``grid`` with
    its header row first, ``boxes[r][c]`` the box of ``grid.rows[r][c]`` (None where the cell
    is empty), ``bbox`` around all of it."""

    first: int
    last: int
    grid: Grid
    boxes: list[list[Box | None]]
    bbox: Box


def _union(boxes) -> Box:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def rows_of(items: list[Piece]) -> list[list[Piece]]:
    """``items`` grouped into visual rows (vertical overlap ≥ half the smaller height), top to
    bottom, each row left to right."""
    rows: list[list[Piece]] = []
    for item in sorted(items, key=lambda p: (p.box[1] + p.box[3]) / 2):
        if rows:
            top = min(p.box[1] for p in rows[-1])
            bottom = max(p.box[3] for p in rows[-1])
            overlap = min(bottom, item.box[3]) - max(top, item.box[1])
            if overlap >= 0.5 * min(item.box[3] - item.box[1], bottom - top):
                rows[-1].append(item)
                continue
        rows.append([item])
    return [sorted(r, key=lambda p: p.box[0]) for r in rows]


def join_close(row: list[Piece], gap: float, sep: str = " ") -> list[Piece]:
    """Neighbours in ``row`` less than ``gap`` apart joined into one piece (the words of one
    cell): ``sep`` between them, nothing between two CJK characters."""
    out: list[Piece] = []
    for p in row:
        if out and p.box[0] - out[-1].box[2] < gap:
            prev = out[-1]
            text = clean_cell(prev.text + sep + p.text)
            out[-1] = Piece(text, _union([prev.box, p.box]))
        else:
            out.append(p)
    return out


def _columns(rows: list[list[Piece]]) -> list[tuple[float, float]]:
    """x-extents of the columns: the pieces' extents merged where they overlap."""
    spans = sorted((p.box[0], p.box[2]) for row in rows for p in row)
    cols: list[list[float]] = []
    for x0, x1 in spans:
        if cols and x0 <= cols[-1][1]:
            cols[-1][1] = max(cols[-1][1], x1)
        else:
            cols.append([x0, x1])
    return [(a, b) for a, b in cols]


def _runs(rows: list[list[Piece]], height: float) -> list[tuple[int, int]]:
    """``(first, last)`` of each run of consecutive rows with ≥ 2 pieces, close together."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, row in enumerate(rows):
        ok = len(row) >= 2
        if ok and start is not None:
            gap = min(p.box[1] for p in row) - max(p.box[3] for p in rows[i - 1])
            if gap > MAX_ROW_GAP * height:
                runs.append((start, i - 1))
                start = None
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(rows) - 1))
    return [(a, b) for a, b in runs if b - a + 1 >= MIN_ROWS]


def _fits(rows: list[list[Piece]]) -> bool:
    """Whether no row has two pieces in one of the columns of ``rows``."""
    cols = _columns(rows)
    for row in rows:
        seen = set()
        for p in row:
            c = next(k for k, (a, b) in enumerate(cols) if a <= p.box[0] <= b)
            if c in seen:
                return False
            seen.add(c)
    return True


def _header(texts: list[str]) -> bool:
    """Whether a row's cells (one a column, "" where empty) can be a header: every one filled
    but perhaps the first, short, not a number, not ``label：value``."""
    named = texts[1:] if not texts[0] else texts
    return len(named) >= 2 and all(h and len(h) <= MAX_LABEL and not is_number(h) and not _LABEL_VALUE.search(h)
                                   for h in named)


def _gap(rows: list[list[Piece]], i: int) -> float:
    """The space between row ``i - 1`` and row ``i``."""
    return min(p.box[1] for p in rows[i]) - max(p.box[3] for p in rows[i - 1])


def _segments(rows: list[list[Piece]], first: int, last: int, height: float) -> list[tuple[int, int]]:
    """``rows[first:last + 1]`` cut where a row's pieces no longer line up with the rows
    above, or where the space above a row is over twice the usual and a line height more
    (two tables one under the other): ``(first, last)`` of each part."""
    gaps = [_gap(rows, i) for i in range(first + 1, last + 1)]
    usual = statistics.median(gaps) if gaps else 0.0
    out = []
    start = first
    for i in range(first + 1, last + 1):
        wide = _gap(rows, i) > max(2 * usual, usual + height)
        if wide:
            out.append((start, i - 1))
            start = i
        elif not _fits(rows[start:i + 1]):
            # the row above may be the next table's header, which happened to line up
            cut = i - 1 if i - 1 > start and _fits(rows[i - 1:i + 1]) and _header([p.text for p in rows[i - 1]]) else i
            out.append((start, cut - 1))
            start = cut
    out.append((start, last))
    return [(a, b) for a, b in out if b - a + 1 >= MIN_ROWS]


def _table(rows: list[list[Piece]], first: int, height: float, figures: bool) -> AlignedTable | None:
    cols = _columns(rows)
    if len(cols) < 2:
        return None
    grid_rows: list[list[list[Piece]]] = []        # rows × columns × pieces (a wrapped cell: several)
    tops: list[float] = []
    bottoms: list[float] = []
    for row in rows:
        cells: list[list[Piece]] = [[] for _ in cols]
        for p in row:
            c = next(k for k, (a, b) in enumerate(cols) if a <= p.box[0] <= b)
            if cells[c]:
                return None                       # two pieces of one row in one column
            cells[c].append(p)
        grid_rows.append(cells)
        tops.append(min(p.box[1] for p in row))
        bottoms.append(max(p.box[3] for p in row))
    # a row much closer to the one above than rows usually are continues its cells
    gaps = [_gap(rows, i) for i in range(1, len(rows))]
    typical = statistics.median(gaps) if gaps else 0.0
    merged: list[list[list[Piece]]] = []
    for i, cells in enumerate(grid_rows):
        if i and typical > 0.2 * height and gaps[i - 1] < WRAP_GAP * typical:
            for c, ps in enumerate(cells):
                merged[-1][c].extend(ps)
        else:
            merged.append(cells)
    if len(merged) < MIN_ROWS:
        return None

    def text(ps: list[Piece]) -> str:
        return clean_cell("\n".join(p.text for p in ps))

    if not _header([text(ps) for ps in merged[0]]):
        return None
    data = merged[1:]
    for c in range(len(cols)):
        if sum(1 for r in data if r[c]) * 2 < len(data):
            return None                           # a column filled in under half of the rows
    values = [text(ps) for r in data for ps in r if ps]
    lengths = sorted(len(v) for v in values)
    if statistics.median(lengths) > MAX_MEDIAN_CELL or lengths[-1] > MAX_CELL_CHARS:
        return None
    # columns of prose (a page in two or more columns): every line fills its column's width
    full = 0
    for c, (a, b) in enumerate(cols):
        cells = [_union(p.box for p in r[c]) for r in data if r[c]]
        if sum(1 for x in cells if x[0] - a <= height / 2 and b - x[2] <= height / 2) >= FULL_SHARE * len(cells):
            full += 1
    if full == len(cols):
        return None
    digits = any(sum(1 for r in data if r[c] and _DIGIT.search(text(r[c]))) * 2 >= sum(1 for r in data if r[c])
                 for c in range(len(cols)) if any(r[c] for r in data))
    if figures and not digits:
        return None
    grid = Grid([[Cell(text(ps)) for ps in r] for r in merged], header_rows=1)
    boxes = [[_union(p.box for p in ps) if ps else None for ps in r] for r in merged]
    bbox = _union(p.box for row in rows for p in row)
    return AlignedTable(first, first + len(rows) - 1, grid, boxes, bbox)


def find_tables(rows: list[list[Piece]], figures: bool = True) -> list[AlignedTable]:
    """The tables among ``rows`` (see the module doc), top to bottom. ``figures=False`` drops
    the rule that some column holds digits (for the measurement in ``tools/bench/tables.py``)."""
    heights = [p.box[3] - p.box[1] for row in rows for p in row]
    if not heights:
        return []
    height = statistics.median(heights)
    found = []
    for a, b in (seg for run in _runs(rows, height) for seg in _segments(rows, *run, height)):
        # a title row above the header (表1 … 单位：亿元) or a note row below the table breaks
        # the columns: the run is tried without them too
        for x, y in ((a, b), (a + 1, b), (a, b - 1), (a + 1, b - 1)):
            table = _table(rows[x:y + 1], x, height, figures) if y - x + 1 >= MIN_ROWS else None
            if table is not None:
                found.append(table)
                break
    return found


def cell_spans(row, boxes: list[list[Box | None]]) -> list[tuple[int, int, Box]]:
    """``(start, end, box)`` in ``row.text`` (a :class:`~qa.ingest.tables.RowLine`) of each
    label and value whose cells have a box in ``boxes[r][c]`` (the union of its cells')."""
    out = []
    for s, e, cells in row.pieces:
        found = [boxes[r][c] for r, c in cells if r < len(boxes) and c < len(boxes[r]) and boxes[r][c] is not None]
        if found and e > s:
            out.append((s, e, _union(found)))
    return out
