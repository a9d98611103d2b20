"""The user's own documents, uploaded on the chat page.

Uploaded files are copied into ``$QA_HOME/uploads/<collection>/`` (that folder
becomes one of the collection's sources), the collection is updated
incrementally (only new or changed text is encoded), and the page then answers
from the updated index. No Gradio here: :func:`add_uploads` takes the files as
paths (or Gradio's file values) and any ``progress(value, desc=…)``.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import unicodedata
from pathlib import Path

from qa.errors import InputError, QAError
from qa.ingest.loaders import SUPPORTED_SUFFIXES
from qa.paths import default_index_dir, qa_home
from ui import render
from ui.messages import error_zh, reason_zh

log = logging.getLogger(__name__)

#: The file types the page accepts: the ones the loader reads.
UPLOAD_TYPES = list(SUPPORTED_SUFFIXES)
#: Longest file name kept, in UTF-8 bytes (file systems allow 255).
MAX_NAME_BYTES = 180
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_UNUSABLE_NAME = "文件名无法使用"
_SAVE_ERRORS = {errno.EACCES: "没有写入权限", errno.EPERM: "没有写入权限", errno.ENOSPC: "磁盘空间不足",
                errno.EROFS: "文件系统只读", errno.ENAMETOOLONG: "文件名太长"}


def collection_name(index=None) -> str:
    """The page's collection as a folder name: ``default`` for the default collection,
    else the index folder's name and a short hash of its full path."""
    from qa.index.collection import is_default
    if is_default(index):
        return "default"
    index_dir = Path(index).expanduser().resolve()
    stem = safe_filename(index_dir.name, suffix_required=False) or "index"
    return f"{stem}-{hashlib.sha1(str(index_dir).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def upload_dir(index=None) -> Path:
    """Where the uploads of the page's collection are kept."""
    return qa_home() / "uploads" / collection_name(index)


def safe_filename(name, suffix_required: bool = True) -> str | None:
    """A plain file name made from an uploaded file's name: no folders, no control or
    reserved characters, not hidden (the loader passes over ``.name`` and ``~$name``),
    at most :data:`MAX_NAME_BYTES`; None if nothing usable is left."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").split("/")[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cf", "Cs", "Co", "Zl", "Zp"))
    name = _BAD_NAME_CHARS.sub("_", name).strip()
    while name.startswith((".", "~$", "~", " ")):
        name = name.lstrip(". ").removeprefix("~$").lstrip("~")
    name = name.rstrip(". ")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = f".{suffix.lower()}" if suffix else ""
    if suffix_required and (not stem.strip("_ ") or not suffix):
        return None
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return (stem + suffix) or None


def _upload_path(f) -> tuple[Path | None, str]:
    """(where Gradio put it, the name the user gave it) for a ``gr.File`` value."""
    path = f if isinstance(f, (str, os.PathLike)) else (getattr(f, "path", None) or getattr(f, "name", None))
    try:
        path = Path(os.fspath(path))
    except TypeError:
        return None, str(f)
    return path, getattr(f, "orig_name", None) or path.name


def unsupported_reason(suffix: str) -> str:
    """Why a file of this type is refused, with the types that are accepted."""
    what = f" {suffix} 文件" if suffix else "没有扩展名的文件"
    return f"不支持{what}。可以上传的文件类型：{' '.join(UPLOAD_TYPES)}"


def save_uploads(files, folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Copy ``files`` into ``folder`` (a file of the same name is replaced: an
    upload of a new version updates the document). Returns (saved, [(name, reason)])."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    saved: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for f in files or []:
        src, shown = _upload_path(f)
        name = safe_filename(shown)
        if src is None or name is None:
            skipped.append((shown, _UNUSABLE_NAME))
            continue
        if Path(name).suffix not in UPLOAD_TYPES:
            skipped.append((shown, unsupported_reason(Path(name).suffix)))
            continue
        base, n = Path(name), 2
        while (root / name) in saved:         # two files of one name in one upload: keep both
            name, n = f"{base.stem} ({n}){base.suffix}", n + 1
        dest = root / name
        if dest.parent != root:               # never outside the upload folder
            skipped.append((shown, _UNUSABLE_NAME))
            continue
        tmp = root / f".{name}.part"
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)             # replaces a link by a file: never writes through it
        except OSError as e:
            tmp.unlink(missing_ok=True)
            log.warning("saving the upload %r failed: %s", shown, e)
            why = _SAVE_ERRORS.get(e.errno)
            skipped.append((shown, f"无法保存（{why}）" if why else "无法保存"))
            continue
        saved.append(dest)
    return saved, skipped


class PageProgress:
    """:func:`~qa.index.collection.update_collection`'s progress protocol shown by a
    ``gr.Progress`` (any ``fn(value, desc=…, unit=…)``): passages encoded, rate, time left."""

    def __init__(self, report, clock=None):
        import time
        self.report, self.clock = report, clock or time.monotonic
        self.total = self.done = self.documents = 0
        self.t0 = self.clock()

    def start(self, total: int, documents: int = 0) -> None:
        self.total, self.documents, self.done, self.t0 = int(total), int(documents), 0, self.clock()
        self._show()

    def __call__(self, n: int) -> None:
        self.done += int(n)
        self._show()

    def _show(self) -> None:
        from qa.progress import eta_seconds, format_duration, format_rate
        if not self.total:
            return
        elapsed = self.clock() - self.t0
        rate = self.done / elapsed if self.done and elapsed > 0 else None
        desc = (f"编码 {self.documents} 篇文档的 {self.total} 段文字：{format_rate(rate).replace('/s', ' 段/秒')}，"
                f"剩余约 {format_duration(eta_seconds(self.done, self.total, elapsed))}")
        self.report((self.done, self.total), desc=desc, unit="段")


def add_uploads(files, index=None, progress=None):
    """Copy the uploads into the collection's upload folder, update the collection
    (the page's ``--index``, else the default one) and reload the page's pipeline.

    Returns ``(summary_html, pipeline)``: ``pipeline`` is the refreshed one to answer
    from, None when the index did not change. ``progress(value, desc=…)`` is a
    ``gr.Progress`` or None."""
    from qa.api import get_pipeline, refresh_pipeline
    from qa.index.collection import holds_seeds, update_collection
    report_progress = progress or (lambda *a, **k: None)
    files = [f for f in (files or []) if f]
    if not files:
        return render.render_notice("没有收到文件"), None
    folder = upload_dir(index)
    report_progress(0.0, desc="保存上传的文件")
    saved, skipped = save_uploads(files, folder)
    if not saved:
        return render.render_upload_summary([], [], [], skipped), None
    index_dir = Path(index) if index else default_index_dir()
    report_progress(0.05, desc=f"读取 {len(saved)} 个文件")
    try:
        report, loaded = update_collection(index_dir, [str(folder)], seeds=holds_seeds(index),
                                           progress=PageProgress(report_progress))
    except QAError as e:
        if isinstance(e, InputError):     # nothing readable: the uploads do not stay in the folder
            for p in saved:
                p.unlink(missing_ok=True)
            reasons = {Path(p).name: reason_zh(r) for p, r in _skips_of(e, saved)}
            return render.render_upload_summary(
                [], [], [], skipped + [(p.name, reasons.get(p.name, reason_zh(str(e)))) for p in saved]), None
        log.warning("indexing the uploads failed: %s", e)
        return render.render_upload_summary([], [], [], skipped + [(p.name, error_zh(e, "加入文档"))
                                                                   for p in saved]), None
    bad = {Path(p).resolve(): r for p, r in loaded.skipped}
    indexed = []
    for p in saved:
        if p.resolve() in bad:
            skipped.append((p.name, reason_zh(bad[p.resolve()])))
            p.unlink(missing_ok=True)
        else:
            indexed.append(p)
    pipe = None
    if report.added or report.changed or report.removed:
        report_progress(1.0, desc="载入更新后的索引")
        try:
            pipe = refresh_pipeline(index) or get_pipeline(index)
        except QAError as e:
            log.exception("reloading %s after an upload failed", index_dir)
            return upload_summary(indexed, skipped, report, {}) + render.render_notice(
                error_zh(e, "载入文档库"), "error"), None
    try:
        documents = (pipe or get_pipeline(index)).index.documents
    except QAError:
        documents = {}
    return upload_summary(indexed, skipped, report, documents), pipe


def _skips_of(e: InputError, saved: list[Path]) -> list[tuple[str, str]]:
    """(file, reason) pairs named in "nothing to index (a: why; b: why)"."""
    out = []
    for p in saved:
        marker = f"{p}: "
        msg = str(e)
        if marker in msg:
            out.append((str(p), msg.split(marker, 1)[1].split(";")[0].rstrip(")")))
    return out


def upload_summary(indexed: list[Path], skipped: list[tuple[str, str]], report, documents) -> str:
    """The summary shown after an upload: the titles added, updated or already there, then
    the files skipped and why (in Chinese)."""
    added, updated, same = [], [], []
    new_ids = set(report.added) if report is not None else set()
    changed_ids = set(report.changed) if report is not None else set()
    for p in indexed:
        doc_id = str(p.resolve())
        doc = documents.get(doc_id)
        title = doc.title if doc is not None else p.stem
        (added if doc_id in new_ids else updated if doc_id in changed_ids else same).append(title)
    n = report.documents if report is not None else None
    return render.render_upload_summary(added, updated, same, skipped, n)


def is_upload(doc_id, index=None) -> bool:
    """Whether the document ``doc_id`` is a file of the page's upload folder."""
    try:
        return Path(str(doc_id)).parent == upload_dir(index).resolve()
    except (OSError, ValueError):
        return False


def library_entries(pipe, index=None) -> list[dict]:
    """The collection's documents for the library panel; an uploaded one has ``key``, its
    file name in the upload folder, by which the page may delete it. No paths."""
    from qa.index.collection import list_documents
    entries = []
    for e in list_documents(pipe.index):
        doc_id = e.pop("doc_id")
        if is_upload(doc_id, index):
            e["key"] = Path(doc_id).name
        entries.append(e)
    return entries


def delete_upload(key, index=None, progress=None):
    """Delete the uploaded document whose file in the upload folder is named ``key`` and
    update the collection incrementally. Returns ``(notice_html, pipeline)``: the refreshed
    pipeline, None when nothing changed."""
    from qa.api import get_pipeline, refresh_pipeline
    from qa.index.collection import delete_document_file, holds_seeds
    report_progress = progress or (lambda *a, **k: None)
    folder = upload_dir(index).resolve()
    name = safe_filename(key)
    path = folder / name if name else None
    if path is None or name != key or path.parent != folder:
        return render.render_notice("找不到这篇文档，可能已被删除。"), None
    pipe = get_pipeline(index)
    doc = pipe.index.documents.get(str(path))
    if doc is None and not path.exists():
        return render.render_notice("找不到这篇文档，可能已被删除。"), None
    title = doc.title if doc is not None else path.stem
    seeds = holds_seeds(index)
    if not seeds and len(pipe.index.documents) <= 1:
        return render.render_notice("这是文档库里唯一的文档，不能删除：文档库至少要有一篇文档。"), None
    index_dir = Path(index) if index else default_index_dir()
    report_progress(0.1, desc=f"删除《{title}》")
    try:
        delete_document_file(index_dir, path, seeds=seeds, progress=PageProgress(report_progress))
        report_progress(1.0, desc="载入更新后的索引")
        new = refresh_pipeline(index) or get_pipeline(index)
    except QAError as e:
        log.warning("deleting %s failed: %s", path, e)
        return render.render_notice(error_zh(e, "删除文档"), "error"), None
    return (f'<div class="qa-notice qa-upload-ok" role="status">已删除《{render.esc(title)}》，'
            f"不会再从它回答问题。文档库现有 {len(new.index.documents)} 篇文档。</div>"), new
