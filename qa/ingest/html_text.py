"""HTML page → (title, main text).

Parsed with lxml's HTML parser (libxml2; lxml is already needed by
python-docx). The text is built here, one block per line:

* dropped: ``<script>``, ``<style>``, ``<noscript>``, ``<template>``, forms'
  controls, embedded objects, hidden elements, and navigation: ``<nav>``,
  ``<aside>``, ``<menu>``, ``<footer>``, ``<header>`` outside an article,
  ARIA navigation/banner/contentinfo/complementary/search roles, and elements
  whose class or id names them (``nav``, ``menu``, ``breadcrumb``, ``sidebar``,
  ``footer``, ``copyright``, ``share``, ``comment(s)``, ``related`` …);
* the main text is the longest ``<article>`` / ``<main>`` / ``role=main``
  holding at least a quarter of the page's remaining text, else the body;
* block elements (p, div, h1–h6, li, tr, …) and ``<br>`` end a line; a data table (no table
  inside it, no cell over 300 characters, ≥ 2 rows and ≥ 2 columns) becomes one line per row with
  each cell after its column header (``指标：港口吞吐量；数值：5600万吨``, see
  :mod:`qa.ingest.tables`; ``<th>``/``<thead>`` mark headers, ``colspan``/``rowspan`` are spread);
  in other tables the cells of a row are separated by a tab; ``<pre>`` keeps its whitespace;
  elsewhere whitespace collapses as a browser shows it, and a line break in the
  source between two Chinese characters disappears (CSS segment-break rule).

The title is ``<title>``, else ``og:title``, else the first ``<h1>``.
"""
from __future__ import annotations

import re

from qa.errors import InputError
from qa.ingest.encoding import decode_declared

_BLOCK = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
    "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "frameset", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav",
    "noframes", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
    "listing", "plaintext", "xmp",
}
_DROP = {
    "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "frame", "object",
    "embed", "applet", "audio", "video", "map", "button", "select", "option", "optgroup", "datalist",
    "textarea", "input", "head", "title", "meta", "link", "base",
}
_NAV_TAGS = {"nav", "aside", "menu", "footer"}
_NAV_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
              "toolbar", "dialog", "alert"}
_NAV_TOKENS = {
    "nav", "navbar", "navigation", "menu", "menubar", "submenu", "breadcrumb", "breadcrumbs", "crumb",
    "crumbs", "sidebar", "footer", "copyright", "share", "sharing", "social", "advert", "advertisement",
    "ads", "cookie", "cookies", "comment", "comments", "related", "recommend", "pagination", "pager",
    "toolbar", "topbar", "skip", "sitemap", "hidden", "popup", "modal",
}
_SECTIONING = {"article", "main", "section"}
_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f]*\n\s*(?=[{_CJK}])")
_SPACES = re.compile(r"[ \t\n\r\f\u200b]+")
_CELL = "\x1f"        # marks a cell boundary until the row is closed
_TOKENS = re.compile(r"[^a-z0-9]+")
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)


def declared_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:8192])
    if not m:
        return None
    return (m.group(1) or m.group(2)).decode("ascii", "ignore") or None


def extract_html(data: bytes) -> tuple[str, str]:
    """Raw bytes of a page → (title, text). :class:`InputError` if it holds no text."""
    try:
        import lxml.etree as etree
        import lxml.html
    except ImportError:
        raise InputError("reading HTML needs the lxml package (pip install lxml)") from None
    source = decode_declared(data, declared_charset(data)).text
    if not source.strip():
        raise InputError("empty file")
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, huge_tree=True)
    try:
        root = lxml.html.document_fromstring(source.encode("utf-8", "surrogatepass"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as e:
        raise InputError(f"cannot parse HTML ({e})") from None
    if root is None:
        raise InputError("cannot parse HTML (no document)")

    title = _title(root)
    _structure_tables(root)
    body = root.find("body")
    if body is None:
        body = root
    text = _blocks(etree, body, main=True)
    container = _main_container(etree, body, len(text))
    if container is not None:
        text = _blocks(etree, container, main=True)
    if not text.strip():
        text = _blocks(etree, body, main=False)      # everything was "navigation": keep it all
    if not text.strip():
        text = _strip_tags(source)                   # what libxml2 gave up on (nesting > 2048 …)
    if not text.strip():
        raise InputError("no text in HTML page")
    return title, text


_INVISIBLE = re.compile(r"<(script|style|noscript|template|head)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def _strip_tags(source: str) -> str:
    """Last resort for pages the parser could not build a tree of: tags out, entities in."""
    import html

    text = html.unescape(_TAG.sub("\n", _INVISIBLE.sub("\n", source)))
    lines = (_collapse(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line.strip())


def _clean(s: str | None) -> str:
    return _SPACES.sub(" ", s or "").strip()


def _title(root) -> str:
    for xpath in ("//title", "//meta[@property='og:title']/@content", "//meta[@name='title']/@content",
                  "//h1"):
        for hit in root.xpath(xpath):
            t = _clean(hit if isinstance(hit, str) else hit.text_content())
            if t:
                return t[:200]
    return ""


def _is_hidden(el) -> bool:
    if el.get("hidden") is not None or el.get("aria-hidden") == "true":
        return True
    style = (el.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def _is_nav(el, in_section: int) -> bool:
    tag = el.tag
    if tag in ("html", "body", "main", "article"):
        return False
    if tag in _NAV_TAGS or (tag == "header" and not in_section):
        return True
    if (el.get("role") or "").strip().lower() in _NAV_ROLES:
        return True
    names = " ".join(filter(None, (el.get("class"), el.get("id")))).lower()
    return bool(names) and not _NAV_TOKENS.isdisjoint(_TOKENS.split(names))


def _main_container(etree, body, body_len: int):
    best, best_len = None, 0
    for el in body.xpath(".//article | .//main | .//*[@role='main']"):
        n = len(_blocks(etree, el, main=True))
        if n > best_len:
            best, best_len = el, n
    if best is not None and best_len >= 0.25 * body_len:
        return best
    return None


class _Lines:
    """Collects inline text into lines; ``end()`` closes the current one."""

    def __init__(self):
        self.lines: list[str] = []
        self.buf: list[str] = []
        self.verbatim = False        # the open line comes from <pre>: keep its whitespace

    def add(self, s: str | None, pre: bool = False):
        if not s:
            return
        if not pre:
            self.buf.append(s)
            return
        for i, part in enumerate(s.split("\n")):
            if i:
                self.end()
            self.verbatim = True
            self.buf.append(part)

    def cell(self):
        if "".join(self.buf).strip():
            self.buf.append(_CELL)

    def end(self, soft: bool = False):
        raw = "".join(self.buf)
        if soft and _CELL in raw and not raw.rsplit(_CELL, 1)[1].strip():
            return                   # a block opening a table cell: the row goes on
        self.buf = []
        if self.verbatim:
            line = raw.rstrip("\r").replace(_CELL, "\t")
        elif _CELL in raw:           # table row: collapse each cell, tabs between them
            line = "\t".join(_collapse(c) for c in raw.split(_CELL)).rstrip("\t")
        else:
            line = _collapse(raw)
        self.verbatim = False
        if line.strip():
            self.lines.append(line)


def _collapse(s: str) -> str:
    s = _CJK_BREAK.sub("", s)
    return _SPACES.sub(" ", s).strip(" ")


def _blocks(etree, top, main: bool) -> str:
    """Text of ``top`` as lines; ``main`` drops navigation (see module doc), except an
    element holding over half of the text, which cannot be mere navigation."""
    out = _Lines()
    total = len(top.text_content()) if main else 0
    in_section = 0
    pre = 0
    skipped = None
    walker = etree.iterwalk(top, events=("start", "end"))
    for event, el in walker:
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower()
        if event == "start":
            skip = (not tag or tag in _DROP or _is_hidden(el)
                    or (main and el is not top and _is_nav(el, in_section)
                        and len(el.text_content()) <= total / 2))
            if skip:
                walker.skip_subtree()
                skipped = el          # its "end" comes next; the proxy stays the same object
                continue
            if tag in _SECTIONING:
                in_section += 1
            if tag in ("pre", "listing", "plaintext", "xmp", "textarea"):
                pre += 1
            if tag in ("td", "th"):
                out.cell()
            elif tag in _BLOCK or tag == "br":
                out.end(soft=tag != "tr")
            out.add(el.text, pre=bool(pre))
        else:
            if el is skipped:
                skipped = None
            else:
                if tag in _SECTIONING:
                    in_section -= 1
                if tag in ("pre", "listing", "plaintext", "xmp", "textarea"):
                    pre -= 1
                if tag in _BLOCK:
                    out.end()
            if el is not top:
                out.add(el.tail, pre=bool(pre))
    out.end()
    return "\n".join(out.lines)


_KEEP_ATTRS = ("class", "id", "role", "style", "hidden", "aria-hidden")


def _structure_tables(root) -> None:
    """Replace each data table by a ``<div>`` of one ``<p>`` per line of
    :func:`qa.ingest.tables.table_lines` (its caption first); layout tables stay."""
    from qa.ingest.tables import MAX_CELL, grid_from_spans, table_lines

    for table in list(root.iter("table")):
        if table.getparent() is None or table.find(".//table") is not None:
            continue                      # holds another table: lays out the page
        rows, header_rows, in_head = [], 0, True
        for tr in table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr"):
            if _is_hidden(tr):
                continue
            head = tr.getparent().tag == "thead"
            cells = []
            for td in tr:
                if not isinstance(td.tag, str) or td.tag.lower() not in ("td", "th") or _is_hidden(td):
                    continue
                cells.append((_cell_text(td), _span(td.get("colspan")), _span(td.get("rowspan")),
                              head or td.tag.lower() == "th"))
            if in_head and head:
                header_rows += 1
            else:
                in_head = False
            rows.append(cells)
        if any(len(t) > MAX_CELL for row in rows for t, *_ in row):
            continue
        grid = grid_from_spans(rows)
        if grid.width < 2 or sum(1 for r in grid.rows if any(c.text for c in r)) < 2:
            continue
        grid.header_rows = header_rows or None
        div = table.makeelement("div", {k: table.get(k) for k in _KEEP_ATTRS if table.get(k) is not None})
        caption = table.find("caption")
        lines = ([_clean(_cell_text(caption))] if caption is not None else []) + table_lines(grid)
        for line in lines:
            if line:
                p = div.makeelement("p", {})
                p.text = line
                div.append(p)
        div.tail = table.tail
        table.getparent().replace(table, div)


def _span(value) -> int:
    try:
        return max(1, int(str(value).strip() or 1))
    except (TypeError, ValueError):
        return 1


def _cell_text(el) -> str:
    """Visible text of a cell; ``<br>`` and blocks inside it become line breaks (no recursion:
    a cell may nest thousands of elements)."""
    parts: list[str] = [el.text or ""]
    stack = [(child, False) for child in reversed(list(el))]
    while stack:
        node, closing = stack.pop()
        tag = node.tag.lower() if isinstance(node.tag, str) else ""
        if closing:
            if tag in _BLOCK:
                parts.append("\n")
            parts.append(node.tail or "")
            continue
        if not tag or tag in _DROP or _is_hidden(node):
            parts.append(node.tail or "")
            continue
        if tag == "br" or tag in _BLOCK:
            parts.append("\n")
        parts.append(node.text or "")
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node)))
    return "".join(parts)
