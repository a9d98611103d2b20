"""PDF → (title, text) from its text layer, with pypdf (pure Python).

Pages are extracted in order and joined with "\\n"; a page that fails to
extract is left out (the others still count). Pages without a usable text layer are read by
OCR, and tables keep their structure (see :func:`read_pdf`). Within a page, a line that the
layout wrapped is joined to the next one (see :func:`unwrap_lines`), so a
sentence is not cut in two by the page width: "其中高新技术企业占比" + newline +
"超过三成" becomes one line. The title is the document
information ``/Title`` unless it is a placeholder ("untitled", "Microsoft Word -
x.doc" …); the caller falls back to the first line. A PDF with no text on any page, even
after OCR, raises :class:`InputError` saying so; so does an encrypted one that opens only
with a password.
"""
from __future__ import annotations

import io
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field

from qa.errors import InputError
from qa.ingest.pdf_tables import may_hold_table
from qa.types import LayoutSpan

_JUNK_TITLE = re.compile(
    r"^\(?(untitled|anonymous|unknown|none|null|title|无标题|未命名|文档\d*|document\d*|"
    r"microsoft (word|powerpoint|excel) - .*|.*\.(docx?|pdf|pptx?|xlsx?|wps|txt|tmp|indd|tex|dvi))\)?$",
    re.IGNORECASE,
)


def usable_title(title: object) -> str:
    """A metadata title worth showing, or ""."""
    if not isinstance(title, str):
        return ""
    t = " ".join(title.replace("\x00", "").split())
    if not t or _JUNK_TITLE.match(t):
        return ""
    return t[:200]


@dataclass
class PdfContent:
    """What :func:`read_pdf` makes of a PDF: the text, its place on the pages, and which pages
    were read by OCR (from 1)."""

    title: str
    text: str
    layout: tuple[LayoutSpan, ...] = ()
    ocr_pages: list[int] = field(default_factory=list)
    note: str = ""


def extract_pdf(data: bytes, max_chars: int | None = None) -> tuple[str, str]:
    """Bytes of a PDF → (metadata title or "", text). :class:`InputError` on failure.
    With ``max_chars``, pages stop being read once their text passes it (the caller
    refuses such a document: it holds more than ``max_chars`` characters)."""
    content = read_pdf(data, max_chars)
    return content.title, content.text


def ocr_enabled() -> bool:
    """OCR runs unless ``QA_OCR`` is ``0``/``off``/``no``/``false``."""
    return os.environ.get("QA_OCR", "").strip().lower() not in ("0", "off", "no", "false")


def read_pdf(data: bytes, max_chars: int | None = None, ocr: bool | None = None) -> PdfContent:
    """Bytes of a PDF → :class:`PdfContent`. :class:`InputError` on failure.

    Each page's text layer is read with pypdf. A page whose text layer is missing or garbage
    (:func:`usable_text`) and that shows an image or a drawing, or that holds little text
    over a large image, is rendered (pypdfium2, 200 dpi) and read by OCR (:mod:`qa.ingest.ocr`)
    — unless ``ocr`` is False or ``QA_OCR=off``; the OCR text replaces the layer's when it is
    longer. A page that draws lines, or whose text looks tabular
    (:func:`qa.ingest.pdf_tables.may_hold_table`), is given to pdfplumber for its tables
    (:mod:`qa.ingest.pdf_tables`; ruled, three-line and borderless). ``layout`` has a span
    per OCR line, table row or cell, or text line of a table page (with a box), else one per
    page (page only)."""
    try:
        import pypdf
        from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
    except ImportError:
        raise InputError("reading PDF needs the pypdf package (pip install pypdf)") from None
    if b"%PDF-" not in data[:1024]:
        raise InputError("not a PDF file (no %PDF header)")
    if ocr is None:
        ocr = ocr_enabled()

    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)      # damaged-but-readable files make pypdf chatty
    pages_view = _Pages(data)
    try:
        try:
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    ok = reader.decrypt("")
                except DependencyError:
                    raise InputError("encrypted PDF (AES; needs the cryptography package)") from None
                if not ok:
                    raise InputError("encrypted PDF (needs a password)")
            pages = list(reader.pages)
        except InputError:
            raise
        except FileNotDecryptedError:
            raise InputError("encrypted PDF (needs a password)") from None
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                AssertionError, RecursionError, OSError) as e:
            raise InputError(f"damaged PDF ({_short(e)})") from None

        texts: list[tuple[int, str, list[LayoutSpan] | None]] = []
        failed, total = 0, 0
        ocr_pages: list[int] = []
        notes: list[str] = []
        # first the text layers, and which pages want OCR (so the progress knows how many)
        layers: list[tuple[int, str, bool]] = []
        for number, page in enumerate(pages, 1):
            try:
                raw = page.extract_text() or ""
            except Exception:   # noqa: BLE001 — one bad page must not lose the others
                failed += 1
                continue
            text = unwrap_lines(raw.rstrip("\n")).replace("\x00", "")
            layers.append((number, text, bool(ocr) and pages_view.wants_ocr(number - 1, text)))
            total += len(text) + 1
            if max_chars is not None and total > max_chars:
                break          # over the cap already (OCR only ever lengthens a page's text)
        from qa.ingest.ocr import page_progress
        bar = page_progress(sum(1 for _, _, want in layers if want)) if ocr else None
        total = 0
        try:
            for number, text, want in layers:
                spans = None
                if want and not pages_view.ocr_broken:
                    got = pages_view.ocr(number - 1, notes)
                    bar.step()
                    if got is not None and _weight(got[0]) and (not usable_text(text) or _weight(got[0]) > _weight(text)):
                        text, spans = got
                        ocr_pages.append(number)
                elif usable_text(text) and (pages_view.draws_lines(number - 1) or may_hold_table(text)):
                    got = pages_view.tables(number - 1, number)
                    if got is not None:
                        text, spans = got
                texts.append((number, text, spans))
                total += len(text) + 1
                if max_chars is not None and total > max_chars:
                    break          # over the cap: enough to say so, no need to read the rest
        finally:
            if bar is not None:
                bar.close()
        title = ""
        try:
            meta = reader.metadata
            title = usable_title(meta.title if meta is not None else None)
        except Exception:   # noqa: BLE001 — broken info dictionary: no title, text still good
            pass
    finally:
        log.setLevel(level)
        pages_view.close()

    text, layout = _assemble(texts)
    if not text.strip():
        if failed:
            raise InputError(f"damaged PDF (text of {failed} page{'s' if failed > 1 else ''} unreadable)")
        if not pages:
            raise InputError("PDF has no pages")
        if notes:
            raise InputError(f"PDF has no text layer, and {notes[0]}")
        if pages_view.ocr_tried:
            raise InputError("PDF has no text layer, and OCR found no text on its pages")
        if not ocr:
            raise InputError("PDF has no text layer (OCR is off: QA_OCR)")
        raise InputError("PDF has no text (no text layer, and no image for OCR to read)")
    # what was read by OCR, then every page that could not be (timed out, unreadable)
    note = "; ".join(([f"read by OCR: {_page_list(ocr_pages)}"] if ocr_pages else []) + notes)
    return PdfContent(title, text, layout, ocr_pages, note)


def _page_list(pages: list[int]) -> str:
    if len(pages) == 1:
        return f"page {pages[0]}"
    return f"{len(pages)} pages ({', '.join(map(str, pages[:10]))}{', …' if len(pages) > 10 else ''})"


def _weight(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _assemble(texts: list[tuple[int, str, list[LayoutSpan] | None]]) -> tuple[str, tuple[LayoutSpan, ...]]:
    parts, layout, pos = [], [], 0
    for k, (number, text, spans) in enumerate(texts):
        if k:
            parts.append("\n")
            pos += 1
        if spans is None:
            if text:
                layout.append(LayoutSpan(pos, pos + len(text), number))
        else:
            layout.extend(LayoutSpan(pos + s.start, pos + s.end, number, s.box) for s in spans)
        parts.append(text)
        pos += len(text)
    return "".join(parts), tuple(layout)


MIN_TEXT = 10            # fewer non-space characters than this on a page: no usable text layer
MAX_BAD = 0.3            # more than this share of garbage characters: no usable text layer
_OK_LATIN1 = set("·°±×÷§©®µ¹²³¼½¾¥£€¢‰")


def _bad_char(ch: str) -> bool:
    o = ord(ch)
    if ch == "\ufffd" or 0xE000 <= o <= 0xF8FF or o >= 0xF0000:
        return True
    cat = unicodedata.category(ch)
    if cat in ("Co", "Cn", "Cs", "Cc"):
        return True
    return 0x80 <= o < 0x250 and ch not in _OK_LATIN1      # "Ã¤Â¸Â­": bytes read as Latin-1


def usable_text(text: str) -> bool:
    """Whether a page's text layer is worth keeping: ≥ 10 non-space characters, < 30 % of
    them garbage (private-use or unassigned code points, U+FFFD, control characters, or
    Latin-1 letters of bytes decoded in the wrong encoding)."""
    chars = [ch for ch in text if not ch.isspace()]
    if len(chars) < MIN_TEXT:
        return False
    return sum(1 for ch in chars if _bad_char(ch)) / len(chars) < MAX_BAD


SHORT_TEXT = 200          # a page with less text than this over a large image is OCR'd too
LARGE_IMAGE = 0.5         # … an image covering this share of the page
MANY_PATHS = 200          # a page drawn with this many paths may be text turned into outlines


class _Pages:
    """The same PDF opened with pypdfium2 (page objects, rendering) and pdfplumber (tables),
    each only when a page needs it."""

    def __init__(self, data: bytes):
        self.data = data
        self._pdfium = None
        self._plumber = None
        self.ocr_tried = False
        self._ocr_broken: str | None = None

    def _doc(self):
        if self._pdfium is None:
            import pypdfium2 as pdfium
            self._pdfium = pdfium.PdfDocument(self.data)
        return self._pdfium

    def _objects(self, index: int) -> tuple[int, float, int]:
        """(images, largest image's share of the page, paths) on page ``index``."""
        try:
            import pypdfium2.raw as pdfium_c
            page = self._doc()[index]
        except Exception:   # noqa: BLE001 — pdfium cannot open it: nothing to add to pypdf's text
            return 0, 0.0, 0
        try:
            w, h = page.get_size()
            area = max(w * h, 1.0)
            images, largest, paths = 0, 0.0, 0
            for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_PATH],
                                        max_depth=3):
                if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                    images += 1
                    try:
                        left, bottom, right, top = obj.get_pos()
                        largest = max(largest, abs(right - left) * abs(top - bottom) / area)
                    except Exception:   # noqa: BLE001
                        largest = max(largest, 1.0)
                else:
                    paths += 1
                    if paths > MANY_PATHS and images:
                        break
            return images, min(largest, 1.0), paths
        except Exception:   # noqa: BLE001
            return 0, 0.0, 0
        finally:
            page.close()

    @property
    def ocr_broken(self) -> bool:
        """OCR failed to load (not installed): no page is given to it any more."""
        return self._ocr_broken is not None

    def wants_ocr(self, index: int, text: str) -> bool:
        if self._ocr_broken is not None and self.ocr_tried:
            return False
        if usable_text(text) and _weight(text) >= SHORT_TEXT:
            return False
        images, largest, paths = self._objects(index)
        if not usable_text(text):
            return images > 0 or paths > MANY_PATHS
        return largest >= LARGE_IMAGE

    def draws_lines(self, index: int) -> bool:
        return self._objects(index)[2] >= 2

    def ocr(self, index: int, notes: list[str]):
        from qa.ingest import ocr as ocr_mod

        self.ocr_tried = True
        try:
            page = self._doc()[index]
            try:
                image = page.render(scale=ocr_mod.RENDER_DPI / 72).to_pil()
            finally:
                page.close()
            text, spans = ocr_mod.image_text(image, index + 1)
        except ocr_mod.OcrUnavailable as e:
            self._ocr_broken = str(e)
            if not notes:
                notes.append(f"OCR is not available ({e})")
            return None
        except ocr_mod.OcrTimeout as e:
            notes.append(f"page {index + 1} left out: {e}")
            return None
        except Exception as e:   # noqa: BLE001 — one page that cannot be rendered or read
            notes.append(f"page {index + 1} could not be read by OCR ({e.__class__.__name__})")
            return None
        return text, spans

    def tables(self, index: int, number: int):
        from qa.ingest.pdf_tables import page_with_tables

        try:
            if self._plumber is None:
                import pdfplumber
                self._plumber = pdfplumber.open(io.BytesIO(self.data))
            page = self._plumber.pages[index]
            try:
                return page_with_tables(page, number, unwrap_lines)
            finally:
                page.close()
        except Exception:   # noqa: BLE001 — tables are a bonus: pypdf's text stays
            return None

    def close(self):
        for doc in (self._plumber, self._pdfium):
            try:
                if doc is not None:
                    doc.close()
            except Exception:   # noqa: BLE001
                pass


_NO_JOIN_AFTER = set("。！？!?；;：:」』”》）)】…")
WRAP_FILL = 0.85          # a line this close to the page's widest line was wrapped by the layout
WRAP_MIN_WIDTH = 30       # … and at least this wide (a CJK character counts 2)


def _width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def _is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def unwrap_lines(page: str) -> str:
    """Join the lines of one page that the layout broke mid-sentence.

    A line is joined to the next when it is nearly as wide as a full line of the
    page (≥ 85 % of the 75th percentile of the widths of lines ≥ 30 columns, a
    CJK character counting 2; and itself ≥ 30 columns), does not end a sentence or clause
    (。！？；：and closing quotes/brackets), and the next line starts with text.
    Between two CJK characters nothing is inserted; between Latin text a space
    (after a trailing hyphen nothing). Headings and short lines are never joined.
    """
    lines = page.split("\n")
    if len(lines) < 2:
        return page
    widths = [_width(line.rstrip()) for line in lines]
    wide = sorted(w for w in widths if w >= WRAP_MIN_WIDTH)
    if not wide:
        return page
    full = wide[int(0.75 * (len(wide) - 1))]      # the page's full line width, robust to one long line
    out = [lines[0]]
    for prev_width, line in zip(widths, lines[1:]):
        prev = out[-1].rstrip()
        nxt = line.lstrip()
        wrapped = (prev_width >= WRAP_FILL * full and prev_width >= WRAP_MIN_WIDTH and prev and nxt
                   and prev[-1] not in _NO_JOIN_AFTER and (nxt[0].isalnum() or _is_cjk(nxt[0])))
        if not wrapped:
            out.append(line)
        elif _is_cjk(prev[-1]) or _is_cjk(nxt[0]) or prev.endswith("-"):
            out[-1] = prev + nxt
        else:
            out[-1] = prev + " " + nxt
    return "\n".join(out)


def _short(e: Exception) -> str:
    msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
    return msg[:120]
