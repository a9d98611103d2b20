"""Word .docx → (title, text), with python-docx for the package and its own walk
over the body XML, so the order is the document's:

* each paragraph is a line (``w:tab`` → tab, ``w:br`` → newline); text in a
  text box follows its paragraph on lines of its own; deleted revisions and
  the fallback copy of drawings (``mc:Fallback``) are left out; content controls
  (``w:sdt``) are read through;
* a table row is one line, its cells separated by tabs — unless a cell holds
  several paragraphs or a nested table (a layout table), in which case each
  cell's lines follow one another;
* headers, footers, footnotes and comments are not part of the text.

The title is the core property ``title`` (when not a placeholder), else "".
"""
from __future__ import annotations

import io
import zipfile

from qa.errors import InputError
from qa.ingest.pdf_text import usable_title

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
MAX_UNZIPPED = 1024 * 2**20      # a zip bomb is refused before it is opened


def extract_docx(data: bytes) -> tuple[str, str]:
    """Bytes of a .docx → (title or "", text). :class:`InputError` on failure."""
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
        from lxml import etree
    except ImportError:
        raise InputError("reading .docx needs the python-docx package (pip install python-docx)") from None
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError("old Word .doc format or encrypted .docx (not supported; save as .docx)")
    if not data.startswith(b"PK"):
        raise InputError("not a .docx file (not a ZIP package)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNZIPPED:
                raise InputError(f"not read: over {MAX_UNZIPPED // 2**20} MB when unzipped")
        document = docx.Document(io.BytesIO(data))
        body = document.element.body
    except InputError:
        raise
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, etree.XMLSyntaxError,
            OSError, EOFError, NotImplementedError) as e:
        raise InputError(f"damaged or not a .docx file ({_short(e)})") from None

    try:
        lines = _blocks(etree, body)
    except RecursionError:
        raise InputError("damaged .docx (nesting too deep)") from None
    text = "\n".join(line for line in lines if line.strip())
    if not text.strip():
        raise InputError("no text in .docx")
    try:
        title = usable_title(document.core_properties.title)
    except Exception:   # noqa: BLE001 — broken core.xml: no title, text still good
        title = ""
    return title, text


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
    lines: list[str] = []
    for tr in tbl.iter(_W + "tr"):
        if _nearest_table(tr) is not tbl:
            continue          # a row of a nested table: read with its cell
        cells = [_blocks(etree, tc) for tc in _cells(tr)]
        cells = [[ln for ln in c if ln.strip()] for c in cells]
        if any(len(c) > 1 for c in cells):
            for c in cells:
                lines.extend(c)
        else:
            row = "\t".join(c[0] if c else "" for c in cells).strip("\t")
            if row.strip():
                lines.append(row)
    return lines


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
