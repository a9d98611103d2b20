"""Images (.png, .jpg, .jpeg, .tif, .tiff) → text by OCR (:mod:`qa.ingest.ocr`).

Each frame of a multi-page TIFF is a page (pages joined by a line break, as a PDF's are);
the EXIF orientation is applied first (a phone photo stands upright). A page without any
text recognised contributes nothing; a page whose OCR runs past the time limit is left out with a
note naming it; an image with no text at all is refused.
"""
from __future__ import annotations

import io
import warnings

from qa.errors import InputError
from qa.types import LayoutSpan

MAX_PIXELS = 400_000_000      # refused above this (a decompression bomb, not a scan)
MAX_FRAMES = 2000


def read_image(data: bytes, max_chars: int | None = None) -> tuple[str, tuple[LayoutSpan, ...], str]:
    """Bytes of an image → (text, layout, note). :class:`InputError` on failure."""
    try:
        from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
    except ImportError:
        raise InputError("reading images needs the pillow package") from None
    from qa.ingest import ocr
    from qa.ingest.pdf_text import ocr_enabled

    if not ocr_enabled():
        raise InputError("an image is read by OCR, and OCR is off (QA_OCR)")
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(io.BytesIO(data))
                im.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise InputError(f"image too large (over {MAX_PIXELS // 1_000_000} million pixels)") from None
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
                raise InputError(f"not a readable image ({str(e)[:80] or e.__class__.__name__})") from None
            parts: list[str] = []
            layout: list[LayoutSpan] = []
            notes: list[str] = []
            pos, total = 0, 0
            bar = ocr.page_progress(min(getattr(im, "n_frames", 1) or 1, MAX_FRAMES))
            try:
                for number, frame in enumerate(ImageSequence.Iterator(im), 1):
                    if number > MAX_FRAMES:
                        break
                    try:
                        page = ImageOps.exif_transpose(frame.copy())
                    except Exception:   # noqa: BLE001 — a broken EXIF block: the frame as stored
                        page = frame.copy()
                    try:
                        text, spans = ocr.image_text(page, number)
                    except ocr.OcrTimeout as e:     # this page is left out, the others kept
                        notes.append(f"page {number} left out: {e}")
                        continue
                    finally:
                        bar.step()
                    if not text:
                        continue
                    if parts:
                        parts.append("\n")
                        pos += 1
                    layout.extend(LayoutSpan(pos + s.start, pos + s.end, s.page, s.box) for s in spans)
                    parts.append(text)
                    pos += len(text)
                    total += len(text) + 1
                    if max_chars is not None and total > max_chars:
                        break
            finally:
                bar.close()
    except ocr.OcrUnavailable as e:
        raise InputError(str(e)) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    text = "".join(parts)
    if not text.strip():
        if notes:
            raise InputError(f"no text read from the image: {'; '.join(notes)}")
        raise InputError("no text found in the image (OCR)")
    pages = len({s.page for s in layout})
    return text, tuple(layout), "; ".join([f"read by OCR ({pages} page{'s' if pages > 1 else ''})"] + notes)
