"""The chat page: ``qa serve`` → a Gradio page at http://127.0.0.1:7860.

A question (simplified or traditional) gets its answer in the question's
script with its score, the sources under it (title, date, source, the cited
sentence with the span highlighted, and the whole document folded, scrolled to
the span), and the other candidates folded. Each browser session keeps its own
conversation in ``gr.State``; nothing user-specific lives in module globals.

This module is the Gradio page and :func:`serve`; the rest is Gradio-free:
:mod:`ui.chat` (the two steps of a question), :mod:`ui.uploads` (the user's
own documents) and :mod:`ui.render` (all HTML, escaping all document text).
"""
from __future__ import annotations

import os
from pathlib import Path

from qa.errors import UsageError
from ui import render
from ui.chat import answer_turn, prepare_turn
from ui.uploads import UPLOAD_TYPES, add_uploads

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TITLE = "中文文档问答"
EXAMPLES = [
    "新材料产业产值是多少",
    "經開區2019年經濟總量是多少",
    "上虞区2020年的常住人口是多少?",
    "衢州高新区什么时候升级为国家级高新区",
]
#: Concurrent answers across all sessions (Gradio's queue).
CONCURRENCY = 4
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
    return render.render_header(TITLE, len(pipeline.index.documents))


def build_app(index=None, pipeline=None):
    """The page as a ``gr.Blocks`` (not launched; see :func:`launch_kwargs`).
    ``index``: an index directory, default the seeds collection; ``pipeline``:
    an already loaded :class:`~qa.pipeline.Pipeline` to use instead."""
    import gradio as gr
    from qa.api import get_pipeline

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
            files = gr.File(label=f"上传文件（{' '.join(UPLOAD_TYPES)}；GBK、Big5、UTF-8 等编码均可）",
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
