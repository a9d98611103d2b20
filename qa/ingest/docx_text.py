"""Word .docx → (title, text): the package's relationships name the body part, which is
streamed with lxml's ``iterparse`` (memory stays small: each top-level block is dropped once
read, and reading stops at a cap on characters), walked in the document's order:

* each paragraph is a line (``w:tab`` → tab, ``w:br`` → newline); text in a
  text box follows its paragraph on lines of its own; deleted revisions and
  the fallback copy of drawings (``mc:Fallback``) are left out; content controls
  (``w:sdt``) are read through;
* a data table (no table nested in it, no cell over 300 characters) becomes one line per
  row with each cell after its column header (``项目：交通；说明：新建道路里程为47.3公里``, see
  :mod:`qa.ingest.tables`; rows marked "repeat as header row" are the header, else the first
  row when it looks like one; merged cells (``gridSpan``, ``vMerge``) are spread); a table
  without a header row keeps a row a line, its cells separated by tabs; a table that nests
  another (a layout table) has each cell's lines follow one another;
* headers, footers, footnotes and comments are not part of the text.

The title is the core property ``title`` (when not a placeholder), else "".
"""
from __future__ import annotations

import io
import zipfile
import zlib

from qa.errors import InputError
from qa.ingest.pdf_text import usable_title

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
MAX_UNZIPPED = 1024 * 2**20      # a zip bomb is refused before it is opened


_REL_OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_REL_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
MAX_SMALL_PART = 8 * 2**20       # .rels and core.xml are a few KB


class TooLong(InputError):
    """More text than one document may hold (the cap is in the message)."""


def extract_docx(data: bytes, max_chars: int | None = None) -> tuple[str, str]:
    """Bytes of a .docx → (title or "", text). :class:`InputError` on failure.

    The body XML is streamed (``iterparse``, each top-level paragraph or table dropped
    once read), so memory stays small whatever the file holds; with ``max_chars`` the
    reading stops as soon as the text (a line break per paragraph included) passes it,
    and :class:`TooLong` says so."""
    try:
        from lxml import etree
    except ImportError:
        raise InputError("reading .docx needs the lxml package (pip install lxml)") from None
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError("old Word .doc format or encrypted .docx (not supported; save as .docx)")
    if not data.startswith(b"PK"):
        raise InputError("not a .docx file (not a ZIP package)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNZIPPED:
                raise InputError(f"not read: over {MAX_UNZIPPED // 2**20} MB when unzipped")
            main, core = _parts(etree, z)
            lines = _stream_body(etree, z, main, max_chars)
            title = _title(etree, z, core)
    except InputError:
        raise
    except RecursionError:
        raise InputError("damaged .docx (nesting too deep)") from None
    except (zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError, OSError, EOFError,
            NotImplementedError, zlib.error) as e:
        raise InputError(f"damaged or not a .docx file ({_short(e)})") from None
    text = "\n".join(lines)
    if not text.strip():
        raise InputError("no text in .docx")
    return title, text


def _parser(etree):
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)


def _small_xml(etree, z: zipfile.ZipFile, name: str):
    info = z.getinfo(name)
    if info.file_size > MAX_SMALL_PART:
        raise ValueError(f"{name} is {info.file_size} bytes")
    return etree.fromstring(z.read(name), parser=_parser(etree))


def _parts(etree, z: zipfile.ZipFile) -> tuple[str, str | None]:
    """(the main document part, the core properties part or None), from the package's
    relationships (python-docx's way); a package without them is not a .docx."""
    if "[Content_Types].xml" not in z.namelist():
        raise ValueError("no [Content_Types].xml: not an Office package")
    try:
        rels = _small_xml(etree, z, "_rels/.rels")
    except KeyError:
        raise ValueError("no _rels/.rels: not an Office package") from None
    main = core = None
    for rel in rels.iter(_PKG_REL):
        target = (rel.get("Target") or "").lstrip("/")
        if rel.get("Type") == _REL_OFFICE_DOCUMENT and main is None:
            main = target
        elif rel.get("Type") == _REL_CORE and core is None:
            core = target
    if not main:
        raise ValueError("no main document part: not a Word document")
    return main, core


def _title(etree, z: zipfile.ZipFile, core: str | None) -> str:
    if not core:
        return ""
    try:
        el = _small_xml(etree, z, core).find(_DC_TITLE)
    except Exception:   # noqa: BLE001 — broken core.xml: no title, text still good
        return ""
    return usable_title(el.text if el is not None else None)


def _stream_body(etree, z: zipfile.ZipFile, part: str, max_chars: int | None) -> list[str]:
    """The non-blank lines of the body, block by block, in order."""
    lines: list[str] = []
    total = 0
    depth = 0           # elements open below <w:body>; a block is a direct child of it
    in_body = False
    with z.open(part) as stream:
        for event, el in etree.iterparse(stream, events=("start", "end"), resolve_entities=False,
                                         no_network=True, remove_comments=True, remove_pis=True):
            if event == "start":
                if in_body:
                    depth += 1
                elif el.tag == _W + "body":
                    in_body = True
                continue
            if not in_body:
                continue
            if el.tag == _W + "body" and depth == 0:
                in_body = False
                continue
            depth -= 1
            if depth:
                continue
            block = _blocks(etree, [el])
            total += max(1, sum(len(line) + 1 for line in block))   # an empty paragraph counts too
            lines.extend(line for line in block if line.strip())
            if max_chars is not None and total > max_chars:
                raise TooLong(f"too long: over {max_chars:,} characters of text (the limit per document; "
                              f"stopped reading there). Split it into smaller files")
            el.clear()
            parent = el.getparent()
            while parent is not None and el.getprevious() is not None:   # read blocks: free them
                del parent[0]
    return lines


def _blocks(etree, container) -> list[str]:
    lines: list[str] = []
    for child in container:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == _W + "p":
            text, boxed = _paragraph(etree, child)
            lines.append(text)
            lines.extend(boxed)
        elif tag == _W + "tbl":
            lines.extend(_table(etree, child))
        elif tag in (_W + "sdt",):
            content = child.find(_W + "sdtContent")
            if content is not None:
                lines.extend(_blocks(etree, content))
        elif tag in (_W + "customXml", _W + "sdtContent", _W + "ins", _W + "moveTo", _MC + "AlternateContent"):
            lines.extend(_blocks(etree, child))
        elif tag == _MC + "Choice":
            lines.extend(_blocks(etree, child))
    return lines


def _paragraph(etree, p) -> tuple[str, list[str]]:
    """Text of one paragraph, and the lines of any text boxes anchored in it."""
    parts: list[str] = []
    boxed: list[str] = []
    walker = etree.iterwalk(p, events=("start",))
    for _, el in walker:
        tag = el.tag if isinstance(el.tag, str) else ""
        if el is p:
            continue
        if tag in (_MC + "Fallback", _W + "del", _W + "moveFrom", _W + "instrText", _W + "delText"):
            walker.skip_subtree()
        elif tag == _W + "txbxContent":
            boxed.extend(_blocks(etree, el))
            walker.skip_subtree()
        elif tag == _W + "t":
            parts.append(el.text or "")
        elif tag == _W + "tab":
            parts.append("\t")
        elif tag in (_W + "br", _W + "cr"):
            parts.append("\n")
        elif tag == _W + "noBreakHyphen":
            parts.append("-")
    return "".join(parts), boxed


def _table(etree, tbl) -> list[str]:
    from qa.ingest.tables import MAX_CELL, grid_from_spans, table_lines

    trs = [tr for tr in tbl.iter(_W + "tr") if _nearest_table(tr) is tbl]
    nested = any(_nearest_table(t) is not None for t in tbl.iter(_W + "tbl") if t is not tbl)
    rows: list[list[tuple[str, int, int, bool]]] = []
    cell_lines: list[list[list[str]]] = []
    header_rows, in_head = 0, True
    for tr in trs:
        head = tr.find(f"{_W}trPr/{_W}tblHeader") is not None and \
            tr.find(f"{_W}trPr/{_W}tblHeader").get(_W + "val", "true") not in ("0", "false", "off")
        if in_head and head:
            header_rows += 1
        else:
            in_head = False
        row, lines_of_row = [], []
        for tc in _cells(tr):
            lines = [ln for ln in _blocks(etree, tc) if ln.strip()]
            lines_of_row.append(lines)
            span = tc.find(f"{_W}tcPr/{_W}gridSpan")
            vmerge = tc.find(f"{_W}tcPr/{_W}vMerge")
            colspan = _int(span.get(_W + "val")) if span is not None else 1
            if vmerge is not None and vmerge.get(_W + "val", "continue") == "continue":
                row.append(("", colspan, 1, head, True))       # continues the cell above
            else:
                row.append(("\n".join(lines), colspan, 1, head, False))
        rows.append(row)
        cell_lines.append(lines_of_row)
    too_long = any(len(text) > MAX_CELL for row in rows for text, *_ in row)
    if nested or too_long:
        out: list[str] = []
        for lines_of_row in cell_lines:          # a layout table: each cell's lines in turn
            if any(len(c) > 1 for c in lines_of_row):
                for c in lines_of_row:
                    out.extend(c)
            else:
                row = "\t".join(c[0] if c else "" for c in lines_of_row).strip("\t")
                if row.strip():
                    out.append(row)
        return out
    grid = grid_from_spans([[(t, cs, 1, h) for t, cs, _, h, _ in row] for row in rows])
    for r, row in enumerate(rows):               # vMerge: the cell above spreads down
        c = 0
        for _, colspan, _, _, cont in row:
            if cont and r > 0:
                for k in range(colspan):
                    if c + k < len(grid.rows[r]) and c + k < len(grid.rows[r - 1]):
                        above = grid.rows[r - 1][c + k]
                        grid.rows[r][c + k].text = above.text
                        grid.rows[r][c + k].spread = above.spread
            c += max(1, colspan)
    grid.header_rows = header_rows or None
    return table_lines(grid)


def _int(value) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def _cells(tr):
    for child in tr:
        if child.tag == _W + "tc":
            yield child
        elif child.tag in (_W + "sdt", _W + "customXml"):
            content = child.find(_W + "sdtContent") if child.tag == _W + "sdt" else child
            if content is not None:
                yield from (c for c in content if c.tag == _W + "tc")


def _nearest_table(el):
    parent = el.getparent()
    while parent is not None and parent.tag != _W + "tbl":
        parent = parent.getparent()
    return parent


def _short(e: Exception) -> str:
    msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
    return msg[:120]
