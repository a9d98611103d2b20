"""Page images for the document viewer: a page of a PDF or an image, rendered on the server.

A citation of a PDF or an image names its page and the quote's box there
(:class:`~qa.types.Citation` ``page`` and ``box``, fractions of the page from the top left).
When the user opens the viewer, the page asks for that page (``ui/chat.js`` →
:func:`ui.chat.page_view` → :func:`page_image`), and gets it back as a PNG ``data:`` URI —
never a server path or a served file. The box is drawn by the page's HTML over the image
(:func:`ui.render.box_percent`), so it lines up at any size as long as the image shows the
page exactly as OCR saw it:

* PDF pages are rendered by pypdfium2, as :mod:`qa.ingest.pdf_text` renders them for OCR
  (the page's own rotation applied the same way);
* images are read by PIL as :mod:`qa.ingest.images` reads them: page *n* is the *n*-th frame of
  a multi-page TIFF, and the EXIF orientation is applied.

Pages are scaled to :data:`PAGE_WIDTH` pixels wide (never up), and the last few are kept
(:data:`CACHE_PAGES`, keyed by the file's path, size and modification time, so a changed file
is rendered again). Rendering runs only when asked, outside the answering queue; pdfium is
used by one thread at a time. A file that is gone or unreadable raises :class:`PageUnavailable`
with a Chinese note, and the viewer shows the text version only.
"""
from __future__ import annotations

import base64
import io
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from qa.types import Document

PAGE_WIDTH = 900              # pixels: the viewer's width on a desktop, sharp enough for 9 pt print
MAX_HEIGHT = 6 * PAGE_WIDTH   # a very tall page is rendered narrower rather than taller than this
CACHE_PAGES = 12              # rendered pages kept (≈ 50–400 KB each)
MAX_RENDERS = 2               # pages rendered at once (a busy page never starves answering)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_PIXELS = 400_000_000      # as qa.ingest.images: what was indexed can be shown

NOTE_GONE = "找不到原文件（可能已移动或删除），这里只显示文字版。"
NOTE_UNREADABLE = "原文件无法读取，这里只显示文字版。"
NOTE_NO_PAGE = "原文件里没有这一页（文件可能已经改动），这里只显示文字版。"
NOTE_NOT_A_PAGE = "这篇文档没有页面图像，这里只显示文字版。"
NOTE_CHANGED = "原文件在建立索引之后改动过，框出的位置可能不准。"


class PageUnavailable(Exception):
    """The page cannot be shown; ``str(e)`` is the Chinese note the viewer shows instead."""


@dataclass(frozen=True)
class PageImage:
    png: bytes
    width: int
    height: int

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


_pdfium_lock = threading.Lock()       # pdfium is not thread-safe
_pil_lock = threading.Lock()          # Image.MAX_IMAGE_PIXELS is process-wide
_renders = threading.BoundedSemaphore(MAX_RENDERS)
_cache_lock = threading.Lock()
_cache: "OrderedDict[tuple, PageImage]" = OrderedDict()


def source_path(document: Document) -> Path | None:
    """The file a PDF or image document was read from (its ``source``, else its id, which is
    the resolved path of a file of a collection), or None when it names no file of a page
    format."""
    for cand in (document.source, document.doc_id):
        if not cand or not isinstance(cand, str) or cand.startswith(("http://", "https://")):
            continue
        p = Path(cand)
        if p.is_absolute() and p.suffix.lower() in (".pdf", *IMAGE_SUFFIXES):
            return p
    return None


def _scaled(im, width: int):
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.new("RGB", rgba.size, "white")
        im.paste(rgba, mask=rgba.getchannel("A"))
    elif im.mode not in ("RGB", "L"):
        im = im.convert("L" if im.mode in ("1", "I", "I;16", "F") else "RGB")
    w = min(width, im.width, max(1, int(MAX_HEIGHT * im.width / max(1, im.height))))
    if w != im.width:
        im = im.resize((w, max(1, round(im.height * w / im.width))), Image.Resampling.LANCZOS)
    return im


def _render_pdf(path: Path, page: int, width: int):
    import pypdfium2 as pdfium

    with _pdfium_lock:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except Exception as e:   # noqa: BLE001 — damaged, encrypted, not a PDF
            raise PageUnavailable(NOTE_UNREADABLE) from e
        try:
            if not 1 <= page <= len(pdf):
                raise PageUnavailable(NOTE_NO_PAGE)
            p = pdf[page - 1]
            try:
                w, h = p.get_size()
                scale = min(width / max(w, 1.0), MAX_HEIGHT / max(h, 1.0))
                # as qa.ingest.pdf_text renders for OCR: page.render(scale=…), its rotation applied
                im = p.render(scale=scale).to_pil()
            finally:
                p.close()
        except PageUnavailable:
            raise
        except Exception as e:   # noqa: BLE001
            raise PageUnavailable(NOTE_UNREADABLE) from e
        finally:
            pdf.close()
    return _scaled(im, width)


def _render_image(path: Path, page: int, width: int):
    from PIL import Image, ImageOps, ImageSequence

    with _pil_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(path)
        except Exception as e:   # noqa: BLE001 — not an image, too large, truncated
            raise PageUnavailable(NOTE_UNREADABLE) from e
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    try:
        with im:
            if page > 1 and getattr(im, "n_frames", 1) < page:
                raise PageUnavailable(NOTE_NO_PAGE)
            if page == 1:
                im.draft("RGB", (width, width))     # JPEG: decode at a reduced size (both sides ≥ width)
            # as qa.ingest.images reads it: the page-th frame, EXIF orientation applied
            for number, frame in enumerate(ImageSequence.Iterator(im), 1):
                if number == page:
                    try:
                        shown = ImageOps.exif_transpose(frame.copy())
                    except Exception:   # noqa: BLE001 — a broken EXIF block: the frame as stored
                        shown = frame.copy()
                    return _scaled(shown, width)
    except PageUnavailable:
        raise
    except Exception as e:   # noqa: BLE001
        raise PageUnavailable(NOTE_UNREADABLE) from e
    raise PageUnavailable(NOTE_NO_PAGE)


def render_page(path, page: int, width: int = PAGE_WIDTH) -> PageImage:
    """Page ``page`` (from 1) of the PDF or image at ``path`` as a PNG at most ``width`` pixels
    wide, in the orientation OCR read it; cached. :class:`PageUnavailable` (a Chinese note)
    when the file is gone, unreadable, or has no such page."""
    path = Path(path)
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise PageUnavailable(NOTE_NO_PAGE)
    suffix = path.suffix.lower()
    if suffix != ".pdf" and suffix not in IMAGE_SUFFIXES:
        raise PageUnavailable(NOTE_NOT_A_PAGE)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise PageUnavailable(NOTE_GONE) from None
    except OSError as e:
        raise PageUnavailable(NOTE_UNREADABLE) from e
    if not os.path.isfile(path):
        raise PageUnavailable(NOTE_GONE)
    key = (str(path), st.st_mtime_ns, st.st_size, page, width)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    with _renders:
        im = _render_pdf(path, page, width) if suffix == ".pdf" else _render_image(path, page, width)
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=6)
    out = PageImage(buf.getvalue(), im.width, im.height)
    with _cache_lock:
        _cache[key] = out
        _cache.move_to_end(key)
        while len(_cache) > CACHE_PAGES:
            _cache.popitem(last=False)
    return out


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def page_image(document: Document, page: int, width: int = PAGE_WIDTH) -> dict:
    """What the viewer gets for ``page`` of ``document``: ``{"ok": True, "src": a PNG data URI,
    "width", "height"}`` (with ``"note"`` when the file changed since it was indexed), or
    ``{"ok": False, "note": why, in Chinese}``. Never a server path."""
    path = source_path(document)
    if path is None:
        return {"ok": False, "note": NOTE_NOT_A_PAGE}
    pages = {s.page for s in document.layout}
    if pages and page not in pages and page > max(pages):
        return {"ok": False, "note": NOTE_NO_PAGE}
    try:
        img = render_page(path, page, width)
    except PageUnavailable as e:
        return {"ok": False, "note": str(e)}
    except Exception:   # noqa: BLE001 — whatever a strange file does, the text version stays
        return {"ok": False, "note": NOTE_UNREADABLE}
    out = {"ok": True, "src": img.data_uri(), "width": img.width, "height": img.height}
    try:
        changed = document.mtime is not None and abs(path.stat().st_mtime - float(document.mtime)) > 1.0
    except (OSError, TypeError, ValueError):
        changed = False
    if changed:
        out["note"] = NOTE_CHANGED
    return out
