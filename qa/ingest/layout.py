"""Where a span of a document's text stands on its pages.

PDFs and images keep, in :attr:`qa.types.Document.layout`, a :class:`~qa.types.LayoutSpan`
per OCR line (page and box) or per page of a text layer (page only). :func:`locate` turns
a citation's ``[start, end)`` into ``(page, box)``; :func:`place` fills a
:class:`~qa.types.Citation`'s ``page`` and ``box`` from its document.

Boxes are ``(x0, y0, x1, y1)`` in fractions (0–1) of the page's width and height, from the
top left, so they can be drawn over a rendering of the page at any size. Within one OCR line
the quote's box is narrowed to its characters (a CJK character counted as wide as two Latin
ones: PP-OCR lines are single-line runs of nearly even pitch); a quote over several lines of
one page gets the box around its pieces.
"""
from __future__ import annotations

import bisect
import dataclasses
import unicodedata

from qa.types import Citation, Document, LayoutSpan


def _weight(ch: str) -> float:
    """A character's share of a line's width: a wide (CJK) character 2, a narrow one 1.1
    (digits and Latin letters of CJK fonts are about 0.55 em wide, not half)."""
    return 2.0 if unicodedata.east_asian_width(ch) in "WF" else 1.1


def _narrow(text: str, span: LayoutSpan, start: int, end: int) -> tuple[float, float, float, float]:
    """The part of ``span``'s box under ``text[start:end]`` (both inside the span)."""
    x0, y0, x1, y1 = span.box
    line = text[span.start:span.end]
    weights = [_weight(ch) for ch in line]
    total = sum(weights) or 1.0
    a = sum(weights[:start - span.start]) / total
    b = sum(weights[:end - span.start]) / total
    w = x1 - x0
    return (round(x0 + a * w, 4), y0, round(x0 + b * w, 4), y1)


def locate(document: Document, start: int, end: int
           ) -> tuple[int | None, tuple[float, float, float, float] | None]:
    """``(page, box)`` of ``document.text[start:end]``: the page of its first character (from 1)
    and the box around its characters on that page; ``(None, None)`` for a document without
    layout (text, markdown, HTML, Word), ``(page, None)`` where the page is known but no box
    is (a PDF's text layer)."""
    layout = document.layout
    if not layout or end <= start:
        if layout and end == start:
            end = start + 1
        else:
            return None, None
    starts = [s.start for s in layout]
    i = max(0, bisect.bisect_right(starts, start) - 1)
    hits: list[LayoutSpan] = []
    for span in layout[i:]:
        if span.start >= end:
            break
        if span.end > start:
            hits.append(span)
    if not hits:
        # between two spans (a joining line break): take the next span's page
        j = bisect.bisect_left(starts, start)
        return (layout[j].page if j < len(layout) else layout[-1].page), None
    page = hits[0].page
    on_page = [s for s in hits if s.page == page]
    if any(s.box is None for s in on_page):
        return page, None
    boxes = [_narrow(document.text, s, max(start, s.start), min(end, s.end)) for s in on_page]
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return page, box


def place(citation: Citation, document: Document) -> Citation:
    """``citation`` with ``page`` and ``box`` from ``document``'s layout (itself when it has none)."""
    page, box = locate(document, citation.start, citation.end)
    if page is None:
        return citation
    return dataclasses.replace(citation, page=page, box=box)


def page_spans(page_texts: list[tuple[int, str]], sep: str = "\n") -> tuple[str, tuple[LayoutSpan, ...]]:
    """Texts of pages ``[(page number, text), …]`` joined by ``sep`` → (text, one span per page)."""
    parts, spans, pos = [], [], 0
    for k, (page, text) in enumerate(page_texts):
        if k:
            parts.append(sep)
            pos += len(sep)
        parts.append(text)
        spans.append(LayoutSpan(pos, pos + len(text), page))
        pos += len(text)
    return "".join(parts), tuple(spans)
