"""Read user files and folders into documents.

``read_document(path)`` → :class:`Document` or raises :class:`InputError` with a
one-line reason. ``load_paths(paths)`` walks files and folders, skipping what
cannot be read and reporting each skip; nothing it reads is altered.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import InputError
from qa.normalize import detect_script
from qa.types import Document

SUPPORTED_SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 200 * 1024 * 1024


def decode_text(data: bytes, name: str = "") -> str:
    """Bytes of a text file → str. UTF-8 with or without BOM, UTF-16 with BOM."""
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name}: binary file, not text")
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(enc)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def title_from_text(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:80]
    return fallback


def read_document(path: Path, doc_id: str | None = None) -> Document:
    """One file → :class:`Document`; :class:`InputError` if it cannot be read as text."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size // 2**20} MB is over the {MAX_FILE_BYTES // 2**20} MB limit")
        data = path.read_bytes()
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    text = decode_text(data, str(path))
    if not text.strip():
        raise InputError(f"{path}: empty file")
    return Document(doc_id=doc_id or str(path.resolve()), title=title_from_text(text, path.stem),
                    text=text, source=str(path), script=detect_script(text[:4000]),
                    mtime=path.stat().st_mtime)


@dataclass
class LoadReport:
    """What ``load_paths`` read and what it skipped (with the reason)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _walk(path: Path, report: LoadReport, seen: set):
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        report.skipped.append((str(path), f"cannot resolve path ({e.__class__.__name__})"))
        return
    if real in seen:
        return
    seen.add(real)
    if path.is_dir():
        try:
            entries = sorted(path.iterdir())
        except OSError as e:
            report.skipped.append((str(path), f"cannot list folder ({e.strerror})"))
            return
        for child in entries:
            if child.name.startswith("."):
                continue
            if child.is_dir() or child.suffix.lower() in SUPPORTED_SUFFIXES:
                _walk(child, report, seen)
        return
    yield_path = path
    if yield_path.suffix.lower() not in SUPPORTED_SUFFIXES:
        report.skipped.append((str(path), f"unsupported file type {path.suffix or '(none)'}"))
        return
    try:
        report.documents.append(read_document(path))
    except InputError as e:
        report.skipped.append((str(path), str(e).split(": ", 1)[-1]))


def load_paths(paths: list[str | os.PathLike]) -> LoadReport:
    """Files and folders (recursively) → documents, with a reason for every skip."""
    report = LoadReport()
    seen: set = set()
    for p in paths:
        p = Path(p)
        if not p.exists() and not p.is_symlink():
            report.skipped.append((str(p), "no such file or folder"))
            continue
        _walk(p, report, seen)
    return report
