"""The chat page: ``qa serve`` → a Gradio page at http://127.0.0.1:7860.

A question (simplified or traditional) gets its answer in the question's
script with its score, the sources under it (title, date, source, the cited
sentence with the span highlighted, and the whole document folded, scrolled to
the span), and the other candidates folded. Each browser session keeps its own
conversation in ``gr.State``; nothing user-specific lives in module globals.
The HTML comes from :mod:`ui.render`, which escapes all document text.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from qa.errors import QAError, UsageError
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


def build_app(index=None, pipeline=None):
    """The page as a ``gr.Blocks`` (not launched; see :func:`launch_kwargs`).
    ``index``: an index directory, default the seeds collection; ``pipeline``:
    an already loaded :class:`~qa.pipeline.Pipeline` to use instead."""
    import gradio as gr
    from qa.pipeline import get_pipeline

    pipe = pipeline or get_pipeline(index)   # load now: a bad index fails at start, not on the first question

    def prepare(question, turns):
        chat, q, notice = prepare_turn(question, turns)
        if q is None:   # keep the conversation and what was typed
            return gr.skip(), None, gr.skip(), notice
        return chat, q, "", notice

    def respond(q, turns):
        if q is None:
            return gr.skip(), gr.skip(), gr.skip()
        return answer_turn(pipe, q, turns)

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
        gr.HTML(header_html(pipe), elem_id="qa-header", js_on_load=None)
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

        common = {"show_progress": "hidden", "api_visibility": "undocumented"}
        for trigger in (box.submit, ask.click):
            trigger(prepare, [box, turns], [chat, pending, box, notice], **common).then(
                respond, [pending, turns], [chat, turns, notice], **common)
        for b, q in zip(example_buttons, EXAMPLES):
            b.click(example(q), [turns], [chat, pending, box, notice], **common).then(
                respond, [pending, turns], [chat, turns, notice], **common)
        reset.click(clear, None, [chat, turns, notice, pending], **common)
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
