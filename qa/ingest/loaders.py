"""Read user files and folders into documents.

``read_document(path)`` → :class:`Document` or raises :class:`InputError` with a
one-line reason (``"<path>: <reason>"``). ``load_paths(paths)`` walks files and
folders, skipping what cannot be read and reporting each skip as
``(path, reason)``; it never raises.

Formats (``SUPPORTED_SUFFIXES``):

* ``.txt``, ``.md`` — text kept exactly as decoded (see :mod:`qa.ingest.encoding`
  for the encodings detected: UTF-8 with/without BOM, GB18030/GBK, Big5, UTF-16); in
  ``.md`` only, pipe tables become one line per row with the column headers
  (:mod:`qa.ingest.tables`);
* ``.html``, ``.htm`` — main text of the page (:mod:`qa.ingest.html_text`);
* ``.pdf`` — text layer, OCR for pages without one, tables by row (:mod:`qa.ingest.pdf_text`);
* ``.docx`` — paragraphs and tables in order (:mod:`qa.ingest.docx_text`);
* ``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff`` — OCR (:mod:`qa.ingest.images`), a
  multi-page TIFF page by page.

For all but .txt/.md the text is built here, one block per line, and that text is
what offsets refer to; PDFs and images also keep where each line stands on its page
(``Document.layout``, see :mod:`qa.ingest.layout`). Files over ``MAX_FILE_BYTES`` (200 MB) are refused.
Inside folders, hidden files and folders (and Office lock files ``~$…``) are
passed over silently, and so are files of other types; named explicitly, a file
of another type is reported as skipped.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import InputError
from qa.ingest.encoding import decode_bytes, decode_text
from qa.text.normalize import detect_script
from qa.types import Document

__all__ = ["SUPPORTED_SUFFIXES", "IMAGE_SUFFIXES", "MAX_FILE_BYTES", "LoadReport", "read_document", "load_paths",
           "decode_text", "title_from_text"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx") + IMAGE_SUFFIXES
MAX_FILE_BYTES = 200 * 1024 * 1024
# At most this many characters of text per document (≈ 15 MB of UTF-8 Chinese, ten long novels;
# encoding it takes hours on a CPU). A .txt/.md over 4 bytes a character cannot fit and is
# refused before it is read; a .docx or PDF stops being read once its text passes the cap.
MAX_TEXT_CHARS = 5_000_000
TEXT_SUFFIXES = (".txt", ".md")
TITLE_CHARS = 80
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")


def title_from_text(text: str, fallback: str) -> str:
    """First non-empty line (Markdown ``#`` marks and front-matter fences dropped), ≤ 80 chars."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":          # Markdown front matter: its title, if any
        for i, line in enumerate(lines[1:50], 1):
            if line.strip() == "---":
                lines = lines[i + 1:]
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip().strip("'\""):
                return value.strip().strip("'\"")[:TITLE_CHARS]
    for line in lines:
        line = _MD_IMAGE.sub("", line).strip().lstrip("#").strip()
        if any(ch.isalnum() for ch in line):      # not a rule, an image or punctuation
            return line[:TITLE_CHARS]
    return fallback


def size_mb(size: int, limit: int) -> str:
    """``size`` in MB with as many decimals as it takes to differ from ``limit`` (so a
    file one byte over 200 MB never reads "200 MB; the limit is 200 MB")."""
    for decimals in range(0, 7):
        shown = f"{size / 2**20:.{decimals}f}"
        if float(shown) != limit / 2**20:
            return f"{shown} MB"
    return f"{size:,} bytes"


class _Skip(InputError):
    """An :class:`InputError` that also carries the bare reason, for :class:`LoadReport`."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def _stat(path: Path) -> os.stat_result:
    """``stat`` of a regular file within the size limit; a reason for everything else."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise _Skip(path, "broken symlink (its target does not exist)") from None
        raise _Skip(path, "no such file") from None
    except PermissionError:
        raise _Skip(path, "permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _Skip(path, "symlink loop") from None
        raise _Skip(path, f"cannot read ({e.strerror or e.__class__.__name__})") from None
    except (RuntimeError, ValueError):           # symlink loop on older Pythons; NUL in the name
        raise _Skip(path, "symlink loop" if path.is_symlink() else "invalid path") from None
    if stat.S_ISDIR(st.st_mode):
        raise _Skip(path, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _Skip(path, "not a regular file (device, pipe or socket)")
    if st.st_size > MAX_FILE_BYTES:
        raise _Skip(path, f"too large ({size_mb(st.st_size, MAX_FILE_BYTES)}; the limit is {MAX_FILE_BYTES // 2**20} MB)")
    if path.suffix.lower() in TEXT_SUFFIXES and st.st_size > 4 * MAX_TEXT_CHARS:
        raise _Skip(path, _too_long(f"{st.st_size / 2**20:.1f} MB of text"))
    return st


def _too_long(what: str) -> str:
    return (f"too long for one document ({what}; the limit is {MAX_TEXT_CHARS:,} characters). "
            f"Split it into smaller files")


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise _Skip(path, "permission denied") from None
    except IsADirectoryError:
        raise _Skip(path, "is a folder, not a file") from None
    except MemoryError:
        raise _Skip(path, "not enough memory to read it") from None
    except OSError as e:
        raise _Skip(path, f"cannot read ({e.strerror or e.__class__.__name__})") from None
    if len(data) > MAX_FILE_BYTES:              # grew since stat
        raise _Skip(path, f"too large (over the {MAX_FILE_BYTES // 2**20} MB limit)")
    return data


def _extract(path: Path, data: bytes) -> tuple[str, str, str, tuple]:
    """(title or "", text, note, layout) for the file's type; :class:`InputError` (bare reason) if none."""
    suffix = path.suffix.lower()
    if len(data) < 2**20 and not data.strip():    # (a large file is not empty; no copy of it)
        raise InputError("empty file")
    if suffix in (".html", ".htm"):
        from qa.ingest.html_text import extract_html
        title, text = extract_html(data)
        return title, text, "", ()
    if suffix == ".pdf":
        from qa.ingest.pdf_text import read_pdf
        content = read_pdf(data, max_chars=MAX_TEXT_CHARS)
        return content.title, content.text, content.note, content.layout
    if suffix == ".docx":
        from qa.ingest.docx_text import TooLong, extract_docx
        try:
            title, text = extract_docx(data, max_chars=MAX_TEXT_CHARS)
        except TooLong:
            raise InputError(_too_long("its text goes on past the limit; stopped reading there")) from None
        return title, text, "", ()
    if suffix in IMAGE_SUFFIXES:
        from qa.ingest.images import read_image
        text, layout, note = read_image(data, max_chars=MAX_TEXT_CHARS)
        return "", text, note, layout
    decoded = decode_bytes(data)
    if not decoded.text.strip():
        raise InputError("empty file")
    if suffix == ".md":
        from qa.ingest.tables import markdown_tables
        return "", markdown_tables(decoded.text), decoded.note, ()
    return "", decoded.text, decoded.note, ()


def _read(path: Path, doc_id: str | None = None) -> tuple[Document, str]:
    """One file → (document, note); :class:`_Skip` on any failure."""
    path = Path(path)
    st = _stat(path)
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise _Skip(path, f"unsupported file type {path.suffix or '(no suffix)'}")
    data = _read_bytes(path)
    try:
        title, text, note, layout = _extract(path, data)
    except _Skip:
        raise
    except InputError as e:
        raise _Skip(path, str(e)) from None
    except MemoryError:
        raise _Skip(path, "not enough memory to read it") from None
    except RecursionError:
        raise _Skip(path, "nested too deeply to read") from None
    except Exception as e:   # noqa: BLE001 — a bad file must never escape as anything but InputError
        raise _Skip(path, f"cannot read ({_describe(e)})") from None
    if len(text) > MAX_TEXT_CHARS:
        raise _Skip(path, _too_long(f"{len(text):,} characters"))
    title = title or title_from_text(text, path.stem)
    try:
        resolved = str(path.resolve())
    except (OSError, RuntimeError):
        resolved = str(path.absolute())
    doc = Document(doc_id=doc_id or resolved, title=title, text=text, source=str(path),
                   script=detect_script(text[:4000]), mtime=st.st_mtime, layout=tuple(layout))
    return doc, note


def _describe(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0][:100] if str(e).strip() else ""
    return f"{e.__class__.__name__}: {msg}" if msg else e.__class__.__name__


def read_document(path: Path, doc_id: str | None = None) -> Document:
    """One file → :class:`Document`; :class:`InputError` ``"<path>: <reason>"`` if it cannot be read."""
    return _read(Path(path), doc_id)[0]


@dataclass
class LoadReport:
    """What ``load_paths`` read, what it skipped (with the reason), and notes on
    files read with a caveat (e.g. a few undecodable bytes replaced)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("~$")


LINK_OUT = "symlink to outside the folder, not followed (qa index --follow-links follows it)"


def _inside(real: Path, root: Path | None) -> bool:
    return root is not None and (real == root or root in real.parents)


def _walk_folder(root: Path, report: LoadReport, seen: set, follow_links: bool = False) -> int:
    """Read the supported files under ``root``; returns how many it tried. A symlink whose
    target lies outside ``root`` is not followed (a note says so) unless ``follow_links``."""
    tried = 0
    root_real = _real(root)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            report.skipped.append((str(folder), "cannot open folder (permission denied)"))
            continue
        except OSError as e:
            report.skipped.append((str(folder), f"cannot open folder ({e.strerror or e.__class__.__name__})"))
            continue
        subfolders = []
        for entry in entries:
            if _hidden(entry.name):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()          # follows symlinks; False for broken ones and loops
            except OSError:
                is_dir = False
            try:
                is_link = entry.is_symlink()
            except OSError:
                is_link = False
            if is_link and not follow_links and (is_dir or path.suffix.lower() in SUPPORTED_SUFFIXES):
                real = _real(path)
                if real is not None and not _inside(real, root_real):
                    report.notes.append((str(path), LINK_OUT))
                    continue
            if is_dir:
                real = _real(path)
                if real is not None and real not in seen:
                    seen.add(real)
                    subfolders.append(path)
                continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            tried += 1
            _read_into(path, report, seen)
        stack.extend(reversed(subfolders))
    return tried


def _real(path: Path):
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None


def _read_into(path: Path, report: LoadReport, seen: set) -> None:
    real = _real(path)
    if real is not None:
        if real in seen:
            return                               # the same file reached twice
        seen.add(real)
    try:
        doc, note = _read(path)
    except _Skip as e:
        report.skipped.append((str(path), e.reason))
        return
    except InputError as e:
        report.skipped.append((str(path), str(e)))
        return
    report.documents.append(doc)
    if note:
        report.notes.append((str(path), note))


def load_paths(paths: list[str | os.PathLike], follow_links: bool = False) -> LoadReport:
    """Files and folders (recursively) → documents, with a reason for every skip. Never raises.
    Inside folders, symlinks leading out of the folder are followed only with ``follow_links``
    (a file or folder named in ``paths`` is always read, symlink or not)."""
    report = LoadReport()
    seen: set = set()
    if isinstance(paths, (str, bytes, os.PathLike)):     # one path passed on its own
        paths = [paths]
    for p in paths:
        if isinstance(p, bytes):
            p = os.fsdecode(p)
        if not str(p).strip():
            report.skipped.append((str(p), "empty path"))
            continue
        try:
            _load_one(Path(p), report, seen, follow_links)
        except Exception as e:   # noqa: BLE001 — the last guard: report, never raise
            report.skipped.append((str(p), f"cannot read ({_describe(e)})"))
    return report


def _load_one(path: Path, report: LoadReport, seen: set, follow_links: bool = False) -> None:
    if "\x00" in str(path):
        report.skipped.append((str(path), "invalid path (contains a NUL character)"))
        return
    if path.is_symlink() and not path.exists():
        try:
            path.resolve(strict=True)
        except FileNotFoundError:
            report.skipped.append((str(path), "broken symlink (its target does not exist)"))
            return
        except (OSError, RuntimeError):
            report.skipped.append((str(path), "symlink loop"))
            return
    try:
        exists = path.exists()
    except PermissionError:
        report.skipped.append((str(path), "permission denied"))
        return
    if not exists:
        report.skipped.append((str(path), "no such file or folder"))
        return
    if path.is_dir():
        real = _real(path)
        if real is not None:
            if real in seen:
                return
            seen.add(real)
        tried = _walk_folder(path, report, seen, follow_links)
        if tried == 0:
            report.skipped.append((str(path), f"no documents in folder (looked for {' '.join(SUPPORTED_SUFFIXES)})"))
        return
    _read_into(path, report, seen)
