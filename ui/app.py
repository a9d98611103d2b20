"""The chat page: ``qa serve`` → a Gradio page at http://127.0.0.1:7860.

A question (simplified or traditional) gets its answer in the question's
script with its score, the sources under it (title, date, source, the cited
sentence with the span highlighted, and the whole document folded, scrolled to
the span; for a PDF or an image, its page number and, when opened, the page's image
with the quote's box, rendered then by :mod:`ui.pages`), and the other candidates folded. Below, the document library: the
collection's documents, uploading new ones and deleting uploaded ones. An upload waits, read and
checked, in the visitor's own staging area (per browser session) until 加入文档库 adds it to the
shared collection (never replacing a file of the same name), so a half-finished upload changes
nobody's answers.

The conversation is the browser's (``ui/chat.js``, in a ``gr.HTML``): questions
queue in the order they were sent and the turns persist in ``localStorage`` per
collection; the server answers one question per call (:mod:`ui.chat`) and keeps
nothing per user. The rest is Gradio-free: :mod:`ui.uploads` (the user's own
documents), :mod:`ui.render` (all HTML, escaping all document text),
:mod:`ui.messages` (errors in Chinese), :mod:`ui.i18n` (Gradio's words in Chinese).
"""
from __future__ import annotations

import ipaddress
import os
import sys
import threading
from pathlib import Path

from qa.errors import UsageError
from ui import render
from ui.chat import MAX_TURNS, ask_turn, empty_notice, page_view, restore_turns, too_long_notice
from ui.i18n import translations
from ui.uploads import (UPLOAD_TYPES, collection_name, delete_upload, discard_staged, join_staged, library_entries,
                        stage_uploads)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TITLE = "中文文档问答"
EXAMPLES = [
    "新材料产业产值是多少",
    "經開區2019年經濟總量是多少",
    "北京大学品牌价值研究平台的秘书长是谁?",
    "衢州高新区什么时候升级为国家级高新区",
]
#: Concurrent answers across all sessions.
CONCURRENCY = 4
CSS_PATH = Path(__file__).with_name("style.css")
CHAT_JS_PATH = Path(__file__).with_name("chat.js")
PLACEHOLDER = "输入问题，简体或繁體均可，按回车提问"
PLACEHOLDER_SHORT = "输入问题，按回车提问"

# Rules for Gradio's page frame, outside the part that launch(css=…) reaches (Gradio scopes
# that CSS to the content): on a phone the page's side margins shrink from 32 to 10 pixels.
PAGE_HEAD = """<style>
@media (max-width: 560px) {
  .gradio-container .main.app { padding-left: 10px !important; padding-right: 10px !important; }
}
</style>"""

# The library: 删除 asks first, in place; then the page deletes by the file's name.
LIBRARY_JS = r"""
element.addEventListener('click', (e) => {
  const del = e.target.closest('.qa-lib-delete');
  if (del && !del.disabled) {
    const item = del.closest('.qa-lib-item');
    const ask = document.createElement('span');
    ask.className = 'qa-lib-confirm';
    ask.setAttribute('role', 'group');
    ask.innerHTML = '<span class="qa-lib-ask"></span><button type="button" class="qa-lib-yes">删除</button>' +
                    '<button type="button" class="qa-lib-no">取消</button>';
    ask.querySelector('.qa-lib-ask').textContent = '删除《' + del.dataset.title + '》？';
    ask.dataset.key = del.dataset.key;
    del.replaceWith(ask);
    ask.querySelector('.qa-lib-no').focus();
    return;
  }
  const yes = e.target.closest('.qa-lib-yes');
  if (yes) {
    const ask = yes.closest('.qa-lib-confirm');
    ask.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    ask.querySelector('.qa-lib-ask').textContent = '正在删除…';
    trigger('click', {key: ask.dataset.key});
    return;
  }
  const no = e.target.closest('.qa-lib-no');
  if (no) {
    const ask = no.closest('.qa-lib-confirm');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'qa-lib-delete';
    b.dataset.key = ask.dataset.key;
    const title = ask.querySelector('.qa-lib-ask').textContent.replace(/^删除《/, '').replace(/》？$/, '');
    b.dataset.title = title;
    b.setAttribute('aria-label', '删除《' + title + '》');
    b.textContent = '删除';
    ask.replaceWith(b);
    b.focus();
  }
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
    theme and CSS at launch, not in the ``Blocks`` constructor), and Gradio's own
    words in Chinese whatever the browser's language."""
    import gradio as gr
    return {"css": load_css(), "theme": make_theme(), "footer_links": [], "run_history": False,
            "i18n": gr.I18n(**translations()), "head": PAGE_HEAD}


def header_html(pipeline) -> str:
    return render.render_header(TITLE, len(pipeline.index.documents))


def library_label(pipeline) -> str:
    return f"文档库（{len(pipeline.index.documents)} 篇）"


def storage_key(index=None) -> str:
    """The browser's localStorage key of a collection's conversation."""
    return f"qa-chat:v1:{collection_name(index)}"


def build_app(index=None, pipeline=None):
    """The page as a ``gr.Blocks`` (not launched; see :func:`launch_kwargs`).
    ``index``: an index directory, default the seeds collection; ``pipeline``:
    an already loaded :class:`~qa.pipeline.Pipeline` to use instead."""
    import gradio as gr
    from qa.api import get_pipeline

    pipe = pipeline or get_pipeline(index)   # load now: a bad index fails at start, not on the first question
    current = {"pipe": pipe}   # the collection is the server's, shared by all sessions: an upload swaps it
    answering = threading.BoundedSemaphore(CONCURRENCY)

    # called from ui/chat.js as server.ask({q, previous}) and server.restore({records}): one object each
    def ask(data):
        question = data.get("q") if isinstance(data, dict) else None
        previous = data.get("previous") if isinstance(data, dict) else None
        with answering:
            return ask_turn(current["pipe"], question, previous)

    def restore(data):
        records = data.get("records") if isinstance(data, dict) else None
        return restore_turns(current["pipe"], records)

    # server.page_image({doc, page, script}): a cited page's image, when the user opens its viewer
    # (rendered then, in Gradio's worker threads, never in the answering queue)
    def page_image(data):
        return page_view(current["pipe"], data)

    def library_html(p):
        return render.render_library(library_entries(p, index))

    def after_change(summary, new):
        if new is None:
            return summary, gr.skip(), gr.skip(), gr.skip()
        current["pipe"] = new
        return summary, header_html(new), library_html(new), gr.Accordion(label=library_label(new))

    # uploads wait in the visitor's own staging area, read and checked, until 加入文档库: one
    # visitor's half-finished upload never changes what the others are answered from
    def session_of(request) -> str:
        return getattr(request, "session_hash", None) or "anonymous"

    def upload(files, request, progress=gr.Progress()):
        summary, ready = stage_uploads(files, session_of(request), index, progress)
        return summary, gr.Row(visible=ready > 0), None

    def join(request, progress=gr.Progress()):
        summary, new = join_staged(session_of(request), index, progress)
        return (*after_change(summary, new), gr.Row(visible=False))

    def discard(request):
        return discard_staged(session_of(request), index), gr.Row(visible=False)

    for fn in (upload, join, discard):   # resolvable (this module's annotations are strings)
        fn.__annotations__["request"] = gr.Request

    def delete(evt: gr.EventData, progress=gr.Progress()):
        key = (evt._data or {}).get("key") if isinstance(getattr(evt, "_data", None), dict) else None
        summary, new = delete_upload(key, index, progress)
        out = after_change(summary, new)
        if new is None:   # nothing changed: show the list as it is (the confirm goes away)
            return out[0], out[1], library_html(current["pipe"]), out[3]
        return out

    delete.__annotations__["evt"] = gr.EventData   # resolvable (this module's annotations are strings)

    def refresh():   # a page opened after an upload shows the collection as it is now
        p = current["pipe"]
        return header_html(p), library_html(p), gr.Accordion(label=library_label(p))

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        header = gr.HTML(header_html(pipe), elem_id="qa-header", js_on_load=None)
        gr.HTML(render.render_app(EXAMPLES), elem_id="qa-app", js_on_load=CHAT_JS_PATH.read_text("utf-8"),
                apply_default_css=False, server_functions=[ask, restore, page_image],
                storage_key=storage_key(index),
                max_turns=MAX_TURNS, max_chars=_max_chars(), empty_notice=empty_notice(),
                too_long_notice=too_long_notice(), empty_html=render.render_conversation([]),
                placeholder=PLACEHOLDER, placeholder_short=PLACEHOLDER_SHORT)
        with gr.Accordion(library_label(pipe), open=False, elem_id="qa-library-panel") as panel:
            library = gr.HTML(library_html(pipe), elem_id="qa-library", js_on_load=LIBRARY_JS,
                              apply_default_css=False)
            # no file_types: the browser would refuse other files in English; the server refuses them in Chinese
            files = gr.File(label=f"添加文档（可以上传 {' '.join(UPLOAD_TYPES)}；GBK、Big5、UTF-8 等编码均可）",
                            file_count="multiple", elem_id="qa-upload-files")
            summary = gr.HTML("", elem_id="qa-upload-summary", js_on_load=None)
            with gr.Row(visible=False, elem_id="qa-staged-actions") as staged_actions:
                join_button = gr.Button("加入文档库", variant="primary", elem_id="qa-join", size="sm")
                discard_button = gr.Button("放弃", elem_id="qa-discard", size="sm")

        changed = [summary, header, library, panel]
        # one change of the collection at a time (they write the same index); progress shows over the summary
        files.upload(upload, [files], [summary, staged_actions, files], show_progress="full",
                     show_progress_on=[summary], api_visibility="undocumented", concurrency_limit=2,
                     concurrency_id="qa-stage")
        join_button.click(join, None, changed + [staged_actions], show_progress="full", show_progress_on=[summary],
                          api_visibility="undocumented", concurrency_limit=1, concurrency_id="qa-upload")
        discard_button.click(discard, None, [summary, staged_actions], api_visibility="undocumented")
        library.click(delete, None, changed, show_progress="full", show_progress_on=[summary],
                      api_visibility="undocumented", concurrency_limit=1, concurrency_id="qa-upload")
        demo.load(refresh, None, [header, library, panel], show_progress="hidden", api_visibility="undocumented")
    demo.queue(default_concurrency_limit=CONCURRENCY)
    return demo


def _max_chars() -> int:
    from qa.question import MAX_QUESTION_CHARS
    return MAX_QUESTION_CHARS


# ---------------------------------------------------------------- serving

def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the page on this machine."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False     # "", 0.0.0.0, a host name: reachable from elsewhere


def auth_from_env(env=None) -> tuple[str, str] | None:
    """(user, password) from ``QA_PASSWORD`` or the file named by ``QA_PASSWORD_FILE`` (its first
    line), the user ``QA_USER`` or "qa"; None when neither is set. :class:`UsageError` for an
    empty or unreadable password, or both set."""
    env = os.environ if env is None else env
    user = (env.get("QA_USER") or "qa").strip() or "qa"
    password, path = env.get("QA_PASSWORD"), env.get("QA_PASSWORD_FILE")
    if password and path:
        raise UsageError("set QA_PASSWORD or QA_PASSWORD_FILE, not both")
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read QA_PASSWORD_FILE {path}: {getattr(e, 'strerror', None) or e}") from None
        password = text.splitlines()[0] if text.splitlines() else ""
        if not password.strip():
            raise UsageError(f"QA_PASSWORD_FILE {path} is empty")
    elif password is not None and not password.strip():
        raise UsageError("QA_PASSWORD is empty")
    return (user, password) if password else None


def exposure_warning(host: str, port: int, auth) -> str | None:
    """The loud warning ``qa serve`` prints when the page is reachable from other machines
    without a password (None when bound to loopback, or protected)."""
    if is_loopback(host) or auth:
        return None
    bar = "!" * 78
    where = host or "all interfaces"
    return "\n".join([
        bar,
        f"qa: WARNING: the chat page listens on {where}:{port} WITHOUT A PASSWORD.",
        "    Anyone who can reach this machine can read every document, ask questions,",
        "    upload files and delete uploaded ones.",
        "    Protect it: QA_PASSWORD=... qa serve ... (user \"qa\", or set QA_USER),",
        "    or QA_PASSWORD_FILE=/path/to/file; or bind 127.0.0.1 (the default).",
        bar,
    ])


def serve(host: str = "127.0.0.1", port: int = 7860, index=None):
    """Start the page and block until interrupted. Binds 127.0.0.1 unless told otherwise;
    asks for a password when ``QA_PASSWORD`` or ``QA_PASSWORD_FILE`` is set, and warns loudly
    when bound beyond loopback without one."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UsageError("the chat page needs Gradio: pip install 'qa-zh[ui]' (or pip install gradio)") from None
    auth = auth_from_env()
    warning = exposure_warning(host, port, auth)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    demo = build_app(index)
    extra = {"auth": auth, "auth_message": "请输入用户名和密码。"} if auth else {}
    try:
        demo.launch(server_name=host, server_port=int(port), show_error=False, inbrowser=False,
                    ssr_mode=False, quiet=True, prevent_thread_lock=True, **extra, **launch_kwargs())
    except OSError as e:
        why = "the port is in use" if "empty port" in str(e) else str(e)
        raise UsageError(f"cannot serve on {host}:{port}: {why} (choose another with --port)") from None
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    lock = f"  (password: user {auth[0]!r})" if auth else ""
    print(f"qa: the chat page is at http://{shown}:{port}{lock}  (Ctrl-C stops it)", flush=True)
    if warning:
        print(warning, file=sys.stderr, flush=True)   # again, below Gradio's start-up lines
    demo.block_thread()
    return 0
