"""The chat page: ``qa serve`` → a Gradio page at http://127.0.0.1:7860.

A question (simplified or traditional) gets its answer in the question's
script with its score, the sources under it (title, date, source, the cited
sentence with the span highlighted, and the whole document folded, scrolled to
the span), and the other candidates folded. Each browser session keeps its own
conversation in ``gr.State``; nothing user-specific lives in module globals.
The HTML comes from :mod:`ui.render`, which escapes all document text.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import unicodedata
from pathlib import Path

from qa.errors import InputError, QAError, UsageError
from ui import render

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

log = logging.getLogger(__name__)

TITLE = "中文文档问答"
EXAMPLES = [
    "新材料产业产值是多少",
    "經開區2019年經濟總量是多少",
    "上虞区2020年的常住人口是多少?",
    "衢州高新区什么时候升级为国家级高新区",
]
#: Concurrent answers across all sessions (Gradio's queue).
CONCURRENCY = 4
#: Turns kept per session; older ones drop off the page.
MAX_TURNS = 40
CSS_PATH = Path(__file__).with_name("style.css")

# Runs once when the conversation component mounts (``element`` is its root):
# opening a document panel scrolls it to the highlighted span, and a new answer
# is scrolled into view.
CHAT_JS = r"""
const toMark = (details) => {
  const body = details.querySelector('.qa-doc-body');
  const mark = body && body.querySelector('mark.qa-hl');
  if (!mark) return;
  body.scrollTop = Math.max(0, mark.offsetTop - body.clientHeight / 3);
};
element.addEventListener('toggle', (e) => {
  const d = e.target;
  if (d && d.matches && d.matches('details.qa-doc') && d.open) toMark(d);
}, true);
watch('value', () => {
  const turns = element.querySelectorAll('.qa-turn');
  const last = turns[turns.length - 1];
  if (!last) return;
  // keep the new turn clear of the question box stuck to the bottom of the window
  const dock = document.querySelector('#qa-dock');
  const covered = dock ? dock.getBoundingClientRect().height : 0;
  last.style.scrollMarginBottom = (covered + 12) + 'px';
  const fits = last.getBoundingClientRect().height + covered + 40 < window.innerHeight;
  last.scrollIntoView({block: fits ? 'end' : 'start', behavior: 'smooth'});
});
"""


def load_css() -> str:
    return CSS_PATH.read_text(encoding="utf-8")


def make_theme():
    import gradio as gr
    # System fonts only: the page must not fetch anything from the internet.
    font = ["Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "system-ui", "sans-serif"]
    mono = ["Noto Sans Mono CJK SC", "DejaVu Sans Mono", "monospace"]
    return gr.themes.Soft(primary_hue="teal", neutral_hue="slate", font=font, font_mono=mono)


def launch_kwargs() -> dict:
    """What ``Blocks.launch`` needs for this page to look right (Gradio ≥ 6 takes
    theme and CSS at launch, not in the ``Blocks`` constructor)."""
    return {"css": load_css(), "theme": make_theme(), "footer_links": [], "run_history": False}


def header_html(pipeline) -> str:
    n = len(pipeline.index.documents)
    return (f'<div class="qa-title">{render.esc(TITLE)}</div>'
            '<div class="qa-subtitle">答案直接取自文档原文，每个答案都附出处，可展开原文核对。'
            f'<span class="qa-collection">{n} 篇文档</span></div>')


def prepare_turn(question, turns):
    """Step 1 of a question: check it and show it at once, with a "looking…" line.

    Returns ``(conversation_html, checked_question, notice_html)``; for an empty or
    too long question ``(None, None, notice)``: the conversation stays as it was
    and the notice says what is wrong."""
    from qa.pipeline import clean_question
    try:
        q = clean_question(question)
    except UsageError as e:
        return None, None, render.render_notice(str(e))
    return render.render_conversation(list(turns or []) + [render.render_pending(q)]), q, ""


def answer_turn(pipe, q, turns):
    """Step 2: answer ``q`` (checked by step 1) with ``pipe``.

    Returns ``(conversation_html, turns, notice_html)``; ``turns`` is a new list,
    the session's rendered turns with this one added (the last ``MAX_TURNS``)."""
    turns = list(turns or [])
    try:
        a = pipe.answer(q)
    except QAError as e:
        return render.render_conversation(turns), turns, render.render_notice(str(e))
    except Exception as e:  # never a traceback on the page
        log.exception("answering %r failed", q)
        msg = f"出错了，请稍后再试 (internal error: {e.__class__.__name__})"
        return render.render_conversation(turns), turns, render.render_notice(msg, "error")
    turns = (turns + [render.render_turn(a, pipe.index.documents)])[-MAX_TURNS:]
    return render.render_conversation(turns), turns, ""


# ---------------------------------------------------------------- upload: the user's own documents
#
# Uploaded files are copied into ``$QA_HOME/uploads/<collection>/`` (that folder
# becomes one of the collection's sources), the collection is updated
# incrementally (only new or changed text is encoded), and the page then answers
# from the updated index.

UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx"]
#: Longest file name kept, in UTF-8 bytes (file systems allow 255).
MAX_NAME_BYTES = 180
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


def collection_name(index=None) -> str:
    """The page's collection as a folder name: ``default`` for the default collection,
    else the index folder's name and a short hash of its full path."""
    from qa.pipeline import default_index_dir
    index_dir = Path(index).expanduser().resolve() if index else None
    if index_dir is None or index_dir == default_index_dir().expanduser().resolve():
        return "default"
    stem = safe_filename(index_dir.name, suffix_required=False) or "index"
    return f"{stem}-{hashlib.sha1(str(index_dir).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def upload_dir(index=None) -> Path:
    from qa.pipeline import qa_home
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
            skipped.append((shown, "文件名无法使用 (unusable file name)"))
            continue
        if Path(name).suffix not in UPLOAD_TYPES:
            skipped.append((shown, f"不支持的文件类型 {Path(name).suffix or '(无扩展名)'} "
                                   f"(supported: {' '.join(UPLOAD_TYPES)})"))
            continue
        base, n = Path(name), 2
        while (root / name) in saved:         # two files of one name in one upload: keep both
            name, n = f"{base.stem} ({n}){base.suffix}", n + 1
        dest = root / name
        if dest.parent != root:               # never outside the upload folder
            skipped.append((shown, "文件名无法使用 (unusable file name)"))
            continue
        tmp = root / f".{name}.part"
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)             # replaces a link by a file: never writes through it
        except OSError as e:
            tmp.unlink(missing_ok=True)
            skipped.append((shown, f"无法保存 ({e.strerror or e.__class__.__name__})"))
            continue
        saved.append(dest)
    return saved, skipped


class PageProgress:
    """:func:`~qa.collection.update_collection`'s progress protocol shown by a
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


def _collection_seeds(index) -> bool:
    """Whether the page's collection holds the seeds (the default one always does)."""
    from qa.collection import SEEDS_SOURCE, previous_sources
    from qa.pipeline import default_index_dir
    if not index or Path(index).resolve() == default_index_dir().resolve():
        return True
    return SEEDS_SOURCE in previous_sources(Path(index))


def add_uploads(files, index=None, progress=None):
    """Copy the uploads into the collection's upload folder, update the collection
    (the page's ``--index``, else the default one) and reload the page's pipeline.

    Returns ``(summary_html, pipeline)``: ``pipeline`` is the refreshed one to answer
    from, None when the index did not change. ``progress(value, desc=…)`` is a
    ``gr.Progress`` or None."""
    from qa.collection import update_collection
    from qa.pipeline import default_index_dir, get_pipeline, refresh_pipeline
    report_progress = progress or (lambda *a, **k: None)
    files = [f for f in (files or []) if f]
    if not files:
        return render.render_notice("没有收到文件 (no files received)"), None
    folder = upload_dir(index)
    report_progress(0.0, desc="保存上传的文件")
    saved, skipped = save_uploads(files, folder)
    if not saved:
        return _upload_summary([], skipped, None), None
    index_dir = Path(index) if index else default_index_dir()
    report_progress(0.05, desc=f"读取 {len(saved)} 个文件")
    try:
        report, loaded = update_collection(index_dir, [str(folder)], seeds=_collection_seeds(index),
                                           progress=PageProgress(report_progress))
    except QAError as e:
        if isinstance(e, InputError):     # nothing readable: the uploads do not stay in the folder
            for p in saved:
                p.unlink(missing_ok=True)
        return _upload_summary([], skipped + [(p.name, str(e)) for p in saved], None), None
    bad = {Path(p).resolve(): r for p, r in loaded.skipped}
    indexed = []
    for p in saved:
        if p.resolve() in bad:
            skipped.append((p.name, bad[p.resolve()]))
            p.unlink(missing_ok=True)
        else:
            indexed.append(p)
    if not (report.added or report.changed or report.removed):   # same documents: the pipeline stays
        return _upload_summary(indexed, skipped, report), None
    report_progress(1.0, desc="载入更新后的索引")
    try:
        pipe = refresh_pipeline(index) or get_pipeline(index)
    except QAError as e:
        log.exception("reloading %s after an upload failed", index_dir)
        return _upload_summary(indexed, skipped, report) + render.render_notice(str(e), "error"), None
    return _upload_summary(indexed, skipped, report), pipe


def _upload_summary(indexed: list[Path], skipped: list[tuple[str, str]], report) -> str:
    parts = []
    if indexed:
        status = {}
        for ids, what in ((report.added, "新增"), (report.changed, "已更新")):
            status.update({d: what for d in ids})
        names = "、".join(f"{p.name}（{status.get(str(p.resolve()), '内容未变')}）" for p in indexed)
        parts.append(
            f'<div class="qa-notice qa-upload-ok" role="status">已加入 {len(indexed)} 个文件：{render.esc(names)}。'
            f"文档库现有 {report.documents} 篇文档（新增 {len(report.added)} 篇、更新 {len(report.changed)} 篇、"
            f"删除 {len(report.removed)} 篇）；编码 {report.texts_encoded} 段文字"
            f"（{report.texts_cached} 段取自缓存），用时 {report.seconds:.1f} 秒。现在可以就这些文件提问。</div>")
    if skipped:
        items = "".join(f"<li>{render.esc(n)}：{render.esc(r)}</li>" for n, r in skipped)
        parts.append(f'<div class="qa-notice qa-notice--warn qa-upload-skipped" role="alert">'
                     f"未能加入 {len(skipped)} 个文件：<ul>{items}</ul></div>")
    return "".join(parts)


def build_app(index=None, pipeline=None):
    """The page as a ``gr.Blocks`` (not launched; see :func:`launch_kwargs`).
    ``index``: an index directory, default the seeds collection; ``pipeline``:
    an already loaded :class:`~qa.pipeline.Pipeline` to use instead."""
    import gradio as gr
    from qa.pipeline import get_pipeline

    pipe = pipeline or get_pipeline(index)   # load now: a bad index fails at start, not on the first question
    current = {"pipe": pipe}   # the collection is the server's, shared by all sessions: an upload swaps it

    def prepare(question, turns):
        chat, q, notice = prepare_turn(question, turns)
        if q is None:   # keep the conversation and what was typed
            return gr.skip(), None, gr.skip(), notice
        return chat, q, "", notice

    def respond(q, turns):
        if q is None:
            return gr.skip(), gr.skip(), gr.skip()
        return answer_turn(current["pipe"], q, turns)

    def upload(files, progress=gr.Progress()):
        summary, new = add_uploads(files, index, progress)
        if new is None:
            return summary, gr.skip(), None
        current["pipe"] = new
        return summary, header_html(new), None

    def example(question):
        def handler(turns):   # like prepare, but what the user was typing stays in the box
            chat, q, _, notice = prepare(question, turns)
            return chat, q, gr.skip(), notice
        return handler

    def clear():
        return render.render_conversation([]), [], "", None

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        turns = gr.State([])       # this session's rendered turns
        pending = gr.State(None)   # the question between step 1 and step 2
        header = gr.HTML(header_html(pipe), elem_id="qa-header", js_on_load=None)
        chat = gr.HTML(render.render_conversation([]), elem_id="qa-chat", js_on_load=CHAT_JS,
                       apply_default_css=False)
        with gr.Column(elem_id="qa-dock"):   # stays at the bottom of the window while the chat scrolls
            notice = gr.HTML("", elem_id="qa-notice", js_on_load=None)
            with gr.Group(elem_id="qa-input"):
                with gr.Row(equal_height=True):
                    box = gr.Textbox(show_label=False, container=False, lines=1, max_lines=6, scale=8,
                                     autofocus=True, placeholder="输入问题，简体或繁體均可，按回车提问",
                                     elem_id="qa-question")
                    ask = gr.Button("提问", variant="primary", scale=1, min_width=88, elem_id="qa-ask")
                    reset = gr.Button("清空", variant="secondary", scale=0, min_width=72, elem_id="qa-clear")
        with gr.Row(elem_id="qa-examples"):   # "试试：" comes from the CSS
            example_buttons = [gr.Button(q, size="sm", variant="secondary", scale=0, min_width=0,
                                         elem_classes=["qa-example"]) for q in EXAMPLES]
        with gr.Accordion("添加文档", open=False, elem_id="qa-upload"):   # the user's own files
            files = gr.File(label="上传文件（.txt .md .html .htm .pdf .docx；GBK、Big5、UTF-8 等编码均可）",
                            file_count="multiple", file_types=UPLOAD_TYPES, elem_id="qa-upload-files")
            upload_summary = gr.HTML("", elem_id="qa-upload-summary")

        common = {"show_progress": "hidden", "api_visibility": "undocumented"}
        for trigger in (box.submit, ask.click):
            trigger(prepare, [box, turns], [chat, pending, box, notice], **common).then(
                respond, [pending, turns], [chat, turns, notice], **common)
        for b, q in zip(example_buttons, EXAMPLES):
            b.click(example(q), [turns], [chat, pending, box, notice], **common).then(
                respond, [pending, turns], [chat, turns, notice], **common)
        reset.click(clear, None, [chat, turns, notice, pending], **common)
        # one upload at a time (they write the same index); progress shows over the summary
        files.upload(upload, [files], [upload_summary, header, files], show_progress="full",
                     show_progress_on=[upload_summary], api_visibility="undocumented",
                     concurrency_limit=1, concurrency_id="qa-upload")
        # a page opened after an upload shows the collection as it is now
        demo.load(lambda: header_html(current["pipe"]), None, header, **common)
    # several people at once: up to CONCURRENCY answers in parallel, each session its own State
    demo.queue(default_concurrency_limit=CONCURRENCY)
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, index=None):
    """Start the page and block until interrupted. Binds 127.0.0.1 unless told otherwise."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UsageError("the chat page needs Gradio: pip install 'qa-zh[ui]' (or pip install gradio)") from None
    demo = build_app(index)
    try:
        demo.launch(server_name=host, server_port=int(port), show_error=False, inbrowser=False,
                    ssr_mode=False, quiet=True, prevent_thread_lock=True, **launch_kwargs())
    except OSError as e:
        why = "the port is in use" if "empty port" in str(e) else str(e)
        raise UsageError(f"cannot serve on {host}:{port}: {why} (choose another with --port)") from None
    print(f"qa: the chat page is at http://{host}:{port}  (Ctrl-C stops it)", flush=True)
    demo.block_thread()
    return 0
