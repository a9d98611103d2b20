"""PDF → (title, text) from its text layer, with pypdf (pure Python).

Pages are extracted in order and joined with "\\n"; a page that fails to
extract is left out (the others still count). Within a page, a line that the
layout wrapped is joined to the next one (see :func:`unwrap_lines`), so a
sentence is not cut in two by the page width: "其中高新技术企业占比" + newline +
"超过三成" becomes one line. The title is the document
information ``/Title`` unless it is a placeholder ("untitled", "Microsoft Word -
x.doc" …); the caller falls back to the first line. A PDF without a text layer
(a scan) raises :class:`InputError` saying so; so does an encrypted one that
opens only with a password.
"""
from __future__ import annotations

import io
import logging
import re
import unicodedata

from qa.errors import InputError

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


def extract_pdf(data: bytes, max_chars: int | None = None) -> tuple[str, str]:
    """Bytes of a PDF → (metadata title or "", text). :class:`InputError` on failure.
    With ``max_chars``, pages stop being read once their text passes it (the caller
    refuses such a document: it holds more than ``max_chars`` characters)."""
    try:
        import pypdf
        from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
    except ImportError:
        raise InputError("reading PDF needs the pypdf package (pip install pypdf)") from None
    if b"%PDF-" not in data[:1024]:
        raise InputError("not a PDF file (no %PDF header)")

    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)      # damaged-but-readable files make pypdf chatty
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

        texts, failed, total = [], 0, 0
        for page in pages:
            try:
                texts.append(page.extract_text() or "")
            except Exception:   # noqa: BLE001 — one bad page must not lose the others
                failed += 1
                continue
            total += len(texts[-1]) + 1
            if max_chars is not None and total > max_chars:
                break          # over the cap: enough to say so, no need to read the rest
        title = ""
        try:
            meta = reader.metadata
            title = usable_title(meta.title if meta is not None else None)
        except Exception:   # noqa: BLE001 — broken info dictionary: no title, text still good
            pass
    finally:
        log.setLevel(level)

    text = "\n".join(unwrap_lines(t.rstrip("\n")) for t in texts).replace("\x00", "")
    if not text.strip():
        if failed:
            raise InputError(f"damaged PDF (text of {failed} page{'s' if failed > 1 else ''} unreadable)")
        if not pages:
            raise InputError("PDF has no pages")
        raise InputError("PDF has no text layer (scanned? run OCR first)")
    return title, text


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
