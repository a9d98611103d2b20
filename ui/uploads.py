"""The user's own documents, uploaded on the chat page.

On the page, uploads first go to the browser session's staging area
(``$QA_HOME/staging/<collection>/<session>/``, :func:`stage_uploads`), where they are read
and checked; only :func:`join_staged` (the 加入文档库 button) adds them to the collection.
A file never replaces another of the same name there: it is saved as 「名称 (2).txt」 and the
summary says so. Uploaded files are copied into ``$QA_HOME/uploads/<collection>/`` (that folder
becomes one of the collection's sources), the collection is updated
incrementally (only new or changed text is encoded), and the page then answers
from the updated index. No Gradio here: :func:`add_uploads` takes the files as
paths (or Gradio's file values) and any ``progress(value, desc=…)``.
"""
from __future__ import annotations

import errno
import filecmp
import hashlib
import json
import time
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


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def free_name(name: str, root: Path, src: Path | None = None, taken=()) -> tuple[str, bool]:
    """``(name to save under, already there)``: ``name`` if no file of that name is in ``root``
    (nor in ``taken``), else the first free 「名称 (2).txt」, 「名称 (3).txt」 …; a file already
    there under one of these names with the same bytes as ``src`` is that one
    (``already there``: nothing to copy). A symbolic link is no document: it is replaced."""
    base, n, candidate = Path(name), 2, name
    while True:
        dest = root / candidate
        in_use = dest in taken
        if not in_use and dest.is_file() and not dest.is_symlink():
            if src is not None and _same_bytes(src, dest):
                return candidate, True
            in_use = True
        if not in_use:
            return candidate, False
        candidate, n = f"{base.stem} ({n}){base.suffix}", n + 1


def save_uploads(files, folder: Path, renamed: list | None = None, replace: bool = False
                 ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Copy ``files`` into ``folder``. A file of the same name already there is never replaced:
    the new one gets a free name (「名称 (2).txt」), and ``(name given, name saved)`` goes to
    ``renamed``; the same bytes under that name (or one of its free names) are the file already
    there (not copied again, not reported as renamed).
    ``replace``: a file of the same name is replaced (a visitor's own staging area).
    Returns (saved, [(name, reason)])."""
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
        if replace:
            base, n, given = Path(name), 2, name
            while (root / name) in saved:         # two files of one name in one upload: keep both
                name, n = f"{base.stem} ({n}){base.suffix}", n + 1
            there = False
        else:
            given = name
            name, there = free_name(name, root, src, taken=set(saved))
        dest = root / name
        if dest.parent != root:               # never outside the upload folder
            skipped.append((shown, _UNUSABLE_NAME))
            continue
        if there:                             # these bytes are there already, under this name
            saved.append(dest)
            continue
        if name != given and renamed is not None:
            renamed.append((given, name))
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


class OcrPageProgress(PageProgress):
    """The pages of a scan read by OCR (:func:`qa.ingest.ocr.reporting`'s protocol), shown by the
    same ``gr.Progress``: pages done, pages per second, time left."""

    def _show(self) -> None:
        from qa.progress import eta_seconds, format_duration, format_rate
        if not self.total:
            return
        elapsed = self.clock() - self.t0
        rate = self.done / elapsed if self.done and elapsed > 0 else None
        desc = (f"文字识别（OCR）：第 {min(self.done + 1, self.total)} 页，共 {self.total} 页，"
                f"{format_rate(rate).replace('/s', ' 页/秒')}，剩余约 {format_duration(eta_seconds(self.done, self.total, elapsed))}")
        self.report((self.done, self.total), desc=desc, unit="页")

    def close(self) -> None:
        self.total = 0


def add_uploads(files, index=None, progress=None):
    """Copy the uploads into the collection's upload folder, update the collection
    (the page's ``--index``, else the default one) and reload the page's pipeline.

    Returns ``(summary_html, pipeline)``: ``pipeline`` is the refreshed one to answer
    from, None when the index did not change. ``progress(value, desc=…)`` is a
    ``gr.Progress`` or None."""
    from qa.api import get_pipeline, refresh_pipeline
    from qa.index.collection import holds_seeds, update_collection
    from qa.ingest.ocr import reporting
    report_progress = progress or (lambda *a, **k: None)
    files = [f for f in (files or []) if f]
    if not files:
        return render.render_notice("没有收到文件"), None
    folder = upload_dir(index)
    report_progress(0.0, desc="保存上传的文件")
    renamed: list[tuple[str, str]] = []
    saved, skipped = save_uploads(files, folder, renamed)
    if not saved:
        return render.render_upload_summary([], [], [], skipped), None
    index_dir = Path(index) if index else default_index_dir()
    report_progress(0.05, desc=f"读取 {len(saved)} 个文件")
    try:
        with reporting(OcrPageProgress(report_progress)):      # scans: pages read by OCR
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
    kept = {p.name for p in indexed}
    renamed = [(a, b) for a, b in renamed if b in kept]
    pipe = None
    if report.added or report.changed or report.removed:
        report_progress(1.0, desc="载入更新后的索引")
        try:
            pipe = refresh_pipeline(index) or get_pipeline(index)
        except QAError as e:
            log.exception("reloading %s after an upload failed", index_dir)
            return upload_summary(indexed, skipped, report, {}, renamed) + render.render_notice(
                error_zh(e, "载入文档库"), "error"), None
    try:
        documents = (pipe or get_pipeline(index)).index.documents
    except QAError:
        documents = {}
    return upload_summary(indexed, skipped, report, documents, renamed), pipe


def _skips_of(e: InputError, saved: list[Path]) -> list[tuple[str, str]]:
    """(file, reason) pairs named in "nothing to index (a: why; b: why)"."""
    out = []
    for p in saved:
        marker = f"{p}: "
        msg = str(e)
        if marker in msg:
            out.append((str(p), msg.split(marker, 1)[1].split(";")[0].rstrip(")")))
    return out


def upload_summary(indexed: list[Path], skipped: list[tuple[str, str]], report, documents,
                   renamed: list[tuple[str, str]] = ()) -> str:
    """The summary shown after an upload: the titles added, updated or already there, the
    files saved under another name (a file of their name was there already), then the files
    skipped and why (in Chinese)."""
    added, updated, same = [], [], []
    new_ids = set(report.added) if report is not None else set()
    changed_ids = set(report.changed) if report is not None else set()
    for p in indexed:
        doc_id = str(p.resolve())
        doc = documents.get(doc_id)
        title = doc.title if doc is not None else p.stem
        (added if doc_id in new_ids else updated if doc_id in changed_ids else same).append(title)
    n = report.documents if report is not None else None
    return render.render_upload_summary(added, updated, same, skipped, n, renamed)


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


# ---------------------------------------------------------------- a visitor's staging area

#: Staged files nobody joined are removed after this many seconds.
STAGING_TTL = 24 * 3600


def staging_dir(session, index=None) -> Path:
    """A browser session's own staging area for the page's collection: its uploads wait here,
    read and checked, until the visitor adds them to the collection (:func:`join_staged`)."""
    key = hashlib.sha256(str(session or "").encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return qa_home() / "staging" / collection_name(index) / key


def staged_files(session, index=None) -> list[Path]:
    folder = staging_dir(session, index)
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError:
        return []


def _drop_stale_staging(index=None, now: float | None = None) -> None:
    """Remove the staging areas of this collection untouched for :data:`STAGING_TTL`."""
    root = qa_home() / "staging" / collection_name(index)
    now = time.time() if now is None else now
    try:
        folders = list(root.iterdir())
    except OSError:
        return
    for folder in folders:
        try:
            if now - folder.stat().st_mtime > STAGING_TTL:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def stage_uploads(files, session, index=None, progress=None) -> tuple[str, int]:
    """Save ``files`` into the session's staging area and read them as the collection would
    (scans by OCR, whose pages are then cached); files that cannot be read are dropped with the
    reason. Nothing of the collection changes. Returns ``(summary_html, files ready to join)``."""
    from qa.ingest import load_paths
    from qa.ingest.ocr import reporting
    report_progress = progress or (lambda *a, **k: None)
    files = [f for f in (files or []) if f]
    _drop_stale_staging(index)
    if not files:
        return render.render_notice("没有收到文件"), len(staged_files(session, index))
    folder = staging_dir(session, index)
    report_progress(0.0, desc="保存上传的文件")
    saved, skipped = save_uploads(files, folder, replace=True)
    if saved:
        report_progress(0.1, desc=f"检查 {len(saved)} 个文件")
        with reporting(OcrPageProgress(report_progress)):
            loaded = load_paths([str(p) for p in saved])
        bad = {Path(p).resolve(): r for p, r in loaded.skipped}
        for p in saved:
            if p.resolve() in bad:
                skipped.append((p.name, reason_zh(bad[p.resolve()])))
                p.unlink(missing_ok=True)
        titles = _staged_titles(folder)
        titles.update({Path(d.source).name: d.title for d in loaded.documents})
        _write_titles(folder, titles)
    return staged_summary(session, index, skipped), len(staged_files(session, index))


_TITLES = ".titles.json"        # a staging area's titles, by file name (hidden: never staged itself)


def _staged_titles(folder: Path) -> dict:
    try:
        data = json.loads((folder / _TITLES).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_titles(folder: Path, titles: dict) -> None:
    tmp = folder / f"{_TITLES}.part"
    try:
        tmp.write_text(json.dumps(titles, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, folder / _TITLES)
    except OSError:
        tmp.unlink(missing_ok=True)


def staged_summary(session, index=None, skipped=()) -> str:
    """What waits in the session's staging area, what joining will do with it, and what was
    left out and why."""
    ready = staged_files(session, index)
    parts = []
    if ready:
        target = upload_dir(index).resolve()
        titles = _staged_titles(staging_dir(session, index))
        items = []
        for p in ready:
            doc = titles.get(p.name) or p.stem
            name, there = free_name(p.name, target, p)
            what = f"《{render.esc(doc)}》（{render.esc(p.name)}）"
            if there:
                what += "：文档库里已有这份文件"
            elif name != p.name:
                what += f"：文档库里已有同名的文件，加入时{render.render_renamed(p.name, name)}"
            items.append(f"<li>{what}</li>")
        parts.append(f'<div class="qa-notice qa-upload-staged" role="status">已检查 {len(ready)} 个文件，'
                     f"还没有加入文档库（只有你看得到）：<ul>{''.join(items)}</ul>"
                     f"点「加入文档库」后，所有人的提问都会用到它们。</div>")
    if skipped:
        parts.append(render.render_upload_summary([], [], [], list(skipped)))
    return "".join(parts)


def join_staged(session, index=None, progress=None):
    """Add the session's staged files to the collection (never replacing a file of the same
    name: see :func:`save_uploads`) and empty the staging area. Returns what
    :func:`add_uploads` returns."""
    staged = staged_files(session, index)
    if not staged:
        return render.render_notice("没有等待加入的文件：请先上传。"), None
    try:
        return add_uploads([str(p) for p in staged], index, progress)
    finally:
        shutil.rmtree(staging_dir(session, index), ignore_errors=True)


def discard_staged(session, index=None) -> str:
    """Forget the session's staged files."""
    n = len(staged_files(session, index))
    shutil.rmtree(staging_dir(session, index), ignore_errors=True)
    return render.render_notice(f"已放弃 {n} 个没有加入的文件。" if n else "没有等待加入的文件。", "info")
