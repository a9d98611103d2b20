"""Answers → HTML for the chat page: pure functions, no Gradio, no browser.

Every piece of text that comes from a document or from the user (titles,
sources, sentences, quotes, whole documents, the question) goes through
:func:`esc` (``html.escape``), so a document holding ``<script>`` or any other
markup shows as text and never runs. Highlighting uses the
:class:`~qa.types.Citation` offsets, which index the original document text:
``text[start:end]`` is the answer span, ``text[sentence_start:sentence_end]``
the sentence around it.

The HTML leans on the class names styled in ``ui/style.css`` (``qa-…``).
"""
from __future__ import annotations

import hashlib
import html
import math
import re
from typing import Mapping

from qa.labels import label
from qa.types import Answer, Citation, Document

#: Cited sentences longer than this are shortened around the answer span in the
#: source card (the document panel always shows them whole).
SENTENCE_CONTEXT = 70
MAX_SENTENCE_CHARS = 2 * SENTENCE_CONTEXT + 40
#: The document panel shows the whole document up to this many characters;
#: beyond it, a window of this size around the cited sentence.
MAX_DOC_CHARS = 40_000


def doc_key(doc_id) -> str:
    """A short opaque name for a document in the page (``data-doc-id``, the browser's saved
    conversation): the document's id is a server path for uploaded files, never shown."""
    return "d" + hashlib.sha1(str(doc_id).encode("utf-8", "surrogatepass")).hexdigest()[:16]


_PATHLIKE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\|\.{1,2}/)|[\\/].*\.[A-Za-z0-9]{1,5}$")


def display_source(source) -> str:
    """Where a document came from, as the page shows it: a file's name, never its folder
    (uploaded files come from a folder of the server); a newspaper's name or a URL as is."""
    source = "" if source is None else str(source)
    if source.startswith(("http://", "https://")) or not _PATHLIKE.search(source):
        return source
    return source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def esc(text) -> str:
    """``text`` safe to put in HTML content or a quoted attribute."""
    return html.escape("" if text is None else str(text), quote=True)


def score_level(score: float) -> str:
    """``high`` / ``mid`` / ``low``: the colour of a score badge where no state says it (the
    answer's own badge takes its state's colour: ``answer`` high, ``probable`` mid)."""
    if score >= 0.7:
        return "high"
    if score >= 0.4:
        return "mid"
    return "low"


STATE_LEVEL = {"answer": "high", "probable": "mid", "not_found": "low"}


def render_score(score: float, script: str, level: str | None = None) -> str:
    s = float(score)
    return (f'<span class="qa-score qa-score--{level or score_level(s)}" title="{esc(label("score", script))}">'
            f'{esc(label("score", script))} <b>{s:.2f}</b></span>')


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(v)))


def _offsets(c: Citation, n: int) -> tuple[int, int, int, int]:
    """(sentence_start, start, end, sentence_end), clamped into ``[0, n]`` and nested."""
    start = _clamp(c.start, 0, n)
    end = _clamp(c.end, start, n)
    s_start = _clamp(c.sentence_start, 0, start)
    s_end = _clamp(c.sentence_end, end, n)
    return s_start, start, end, s_end


def highlight(text: str, start: int, end: int) -> str:
    """``text`` escaped, with ``text[start:end]`` in ``<mark class="qa-hl">``."""
    n = len(text)
    start = _clamp(start, 0, n)
    end = _clamp(end, start, n)
    return f'{esc(text[:start])}<mark class="qa-hl">{esc(text[start:end])}</mark>{esc(text[end:])}'


def render_sentence(c: Citation) -> str:
    """The cited sentence, answer span highlighted; a long one is cut around the span."""
    sentence = c.sentence
    rel_s = c.start - c.sentence_start
    rel_e = c.end - c.sentence_start
    if not (0 <= rel_s <= rel_e <= len(sentence)) or sentence[rel_s:rel_e] != c.quote:
        # offsets do not fit the sentence: find the quote instead, else no highlight
        rel_s = sentence.find(c.quote) if c.quote else -1
        if rel_s < 0:
            return esc(sentence)
        rel_e = rel_s + len(c.quote)
    head, tail = "", ""
    if len(sentence) > MAX_SENTENCE_CHARS:
        lo = max(0, rel_s - SENTENCE_CONTEXT)
        hi = min(len(sentence), rel_e + SENTENCE_CONTEXT)
        head = '<span class="qa-ellipsis">…</span>' if lo > 0 else ""
        tail = '<span class="qa-ellipsis">…</span>' if hi < len(sentence) else ""
        sentence, rel_s, rel_e = sentence[lo:hi], rel_s - lo, rel_e - lo
    return head + highlight(sentence, rel_s, rel_e) + tail


def render_document(text: str, c: Citation, script: str = "simplified",
                    max_chars: int = MAX_DOC_CHARS) -> str:
    """The whole document, escaped: the cited sentence tinted, the span in
    ``<mark class="qa-hl">``. A document over ``max_chars`` is shown as a window
    of that size around the sentence, saying how much was left out."""
    n = len(text)
    s_start, start, end, s_end = _offsets(c, n)
    lo, hi = 0, n
    if n > max_chars:
        half = max(0, (max_chars - (s_end - s_start)) // 2)
        lo = max(0, s_start - half)
        hi = min(n, max(s_end + half, lo + max_chars))
        lo = max(0, min(lo, hi - max_chars))
    parts = []
    if lo > 0:
        parts.append(f'<span class="qa-omitted">{esc(label("omitted_before", script, n=lo))}</span>\n')
    parts.append(esc(text[lo:s_start]))
    parts.append('<span class="qa-hl-sentence">')
    parts.append(esc(text[s_start:start]))
    parts.append(f'<mark class="qa-hl">{esc(text[start:end])}</mark>')
    parts.append(esc(text[end:s_end]))
    parts.append("</span>")
    parts.append(esc(text[s_end:hi]))
    if hi < n:
        parts.append(f'\n<span class="qa-omitted">{esc(label("omitted_after", script, n=n - hi))}</span>')
    return "".join(parts)




def citation_page(c: Citation) -> int | None:
    """The page a citation names (from 1), or None."""
    page = c.page
    return page if isinstance(page, int) and not isinstance(page, bool) and page >= 1 else None


def box_percent(box) -> dict[str, float] | None:
    """A box ``(x0, y0, x1, y1)`` in fractions of the page (from the top left) as the CSS
    ``left``, ``top``, ``width`` and ``height`` of an element over the page's image, in percent
    (clamped to the page; None for no box or one that is not four numbers)."""
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        return None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        return None
    x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in values)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    return {"left": round(100 * x0, 3), "top": round(100 * y0, 3),
            "width": round(100 * (x1 - x0), 3), "height": round(100 * (y1 - y0), 3)}


def render_page_view(c: Citation, script: str = "simplified") -> str:
    """The page image of a citation of a PDF or an image, to be loaded when the viewer opens
    (``ui/chat.js`` asks the server for it), with the quote's box drawn over it."""
    page = citation_page(c)
    if page is None:
        return ""
    pct = box_percent(c.box) if c.box is not None else None
    box = ""
    if pct is not None:
        style = ";".join(f"{k}:{v}%" for k, v in pct.items())
        name = label("page_box", script, quote=c.quote)
        box = (f'<div class="qa-page-box" role="img" aria-label="{esc(name)}" title="{esc(name)}" '
               f'style="{style}"></div>')
    alt = label("page_alt", script, title=c.title, page=page)
    return (f'<figure class="qa-page" data-page="{page}" data-script="{esc(script)}">'
            '<div class="qa-page-view" tabindex="0" hidden>'
            f'<div class="qa-page-frame"><img class="qa-page-img" alt="{esc(alt)}" hidden />{box}</div></div>'
            f'<figcaption class="qa-page-note" role="status">{esc(label("page_loading", script, page=page))}'
            '</figcaption></figure>')


def render_meta(c: Citation, script: str = "simplified") -> str:
    bits = [f'<span class="qa-doc-title">《{esc(c.title)}》</span>']
    page = citation_page(c)
    if page is not None:
        bits.append(f'<span class="qa-doc-page">{esc(label("page", script, page=page))}</span>')
    if c.date:
        bits.append(f'<span class="qa-doc-date">{esc(c.date)}</span>')
    source = display_source(c.source)
    if source:
        bits.append(f'<span class="qa-doc-source" title="{esc(source)}">{esc(source)}</span>')
    return f'<div class="qa-cite-meta">{"".join(bits)}</div>'


def render_citation(c: Citation, documents: Mapping[str, Document] | None = None,
                    script: str = "simplified") -> str:
    """A source card: title/date/source, the sentence with the span
    highlighted, and a folded panel with the whole document scrolled to it."""
    doc = documents.get(c.doc_id) if documents else None
    parts = [f'<div class="qa-cite" data-doc-id="{esc(doc_key(c.doc_id))}" data-start="{int(c.start)}" '
             f'data-end="{int(c.end)}">',
             render_meta(c, script),
             f'<blockquote class="qa-cite-sentence">{render_sentence(c)}</blockquote>']
    if doc is not None:
        chars = label("chars", script, start=c.start, end=c.end)
        page_view = render_page_view(c, script)
        hint = label("page_hint", script) if page_view else label("view_doc_hint", script)
        parts.append(
            f'<details class="qa-doc{" qa-doc--page" if page_view else ""}">'
            f'<summary><span class="qa-doc-open">{esc(label("view_doc", script))}</span>'
            f'<span class="qa-doc-hint">{esc(hint)} · {esc(chars)}</span></summary>'
            f'{page_view}'
            f'<div class="qa-doc-body" tabindex="0">{render_document(doc.text, c, script)}</div>'
            '</details>')
    elif documents is not None:
        parts.append(f'<div class="qa-doc-missing">{esc(label("doc_missing", script))}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_alternatives(alts: list[Answer], documents, script: str, title: str, open_: bool = False) -> str:
    if not alts:
        return ""
    items = []
    for a in alts:
        cites = "".join(render_citation(c, documents, script) for c in a.citations)
        items.append(f'<li class="qa-alt"><div class="qa-alt-head"><span class="qa-alt-text">{esc(a.text)}</span>'
                     f'{render_score(a.score, script)}</div>{cites}</li>')
    return (f'<details class="qa-alts"{" open" if open_ else ""}><summary>{esc(title)}'
            f'<span class="qa-count">{len(alts)}</span></summary>'
            f'<ol class="qa-alt-list">{"".join(items)}</ol></details>')


def render_answer(a: Answer, documents: Mapping[str, Document] | None = None) -> str:
    """One answer block (without the question): the answer, its score, its
    sources, and the alternatives folded; or the calm "not found" note."""
    script = a.script
    if a.no_answer:
        closest = render_alternatives(a.alternatives, documents, script, label("closest", script))
        hint = f'<div class="qa-hint">{esc(FOREIGN_HINT)}</div>' if is_foreign(a.question) else ""
        return ('<div class="qa-answer qa-answer--none" data-no-answer="true" data-state="not_found">'
                f'<div class="qa-answer-head"><span class="qa-badge qa-badge--none">'
                f'{esc(label("not_found", script))}</span></div>'
                f'<div class="qa-none-text">{esc(a.text)}</div>{hint}{closest}</div>')
    sources = "".join(render_citation(c, documents, script) for c in a.citations)
    hint = f'<div class="qa-hint">{esc(FOREIGN_NOTE)}</div>' if is_foreign(a.question) else ""
    alts = render_alternatives(a.alternatives, documents, script, label("alternatives", script))
    elapsed = ""
    if a.timings.get("total_ms") is not None:
        elapsed = f'<span class="qa-elapsed">{esc(label("elapsed", script, ms=round(a.timings["total_ms"])))}</span>'
    probable = a.state == "probable"
    badge = (f'<span class="qa-badge qa-badge--probable">{esc(label("probable", script))}…</span>' if probable else
             f'<span class="qa-badge">{esc(label("answer", script))}</span>')
    note = f'<div class="qa-probable-note">{esc(label("probable_note", script))}</div>' if probable else ""
    return (f'<div class="qa-answer{" qa-answer--probable" if probable else ""}" data-no-answer="false" '
            f'data-state="{"probable" if probable else "answer"}">'
            f'<div class="qa-answer-head">{badge}'
            f'{render_score(a.score, script, STATE_LEVEL[a.state])}{elapsed}</div>'
            f'<div class="qa-answer-text">{esc(a.text)}</div>{note}{hint}'
            f'<div class="qa-sources"><div class="qa-sources-title">{esc(label("sources", script))}</div>'
            f'{sources}</div>{alts}</div>')


#: Said under "not found" when the question was asked in another language.
FOREIGN_HINT = "这里的文档都是中文的，请用中文提问（简体、繁體均可），例如「新材料产业产值是多少」。"
#: Said under an answer to a question in another language: it may well be off the mark.
FOREIGN_NOTE = "这个问题不是用中文问的，而文档都是中文的：这个答案可能不对，请用中文再问一次。"
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]")


def is_foreign(question: str) -> bool:
    """Whether a question is written in another language than Chinese: Japanese kana or
    Korean hangul, or more letters of other scripts (English, …) than Han characters."""
    q = str(question or "")
    if _KANA_HANGUL.search(q):
        return True
    han = len(_HAN.findall(q))
    others = sum(1 for c in _LETTER.findall(q) if not _HAN.match(c))
    return others >= 3 and others > 2 * han


def render_question(question: str) -> str:
    return f'<div class="qa-question"><div class="qa-bubble">{esc(question)}</div></div>'


def render_turn(a: Answer, documents: Mapping[str, Document] | None = None, asked: str | None = None) -> str:
    """A question and its answer, as one turn of the conversation. ``asked``: what the user
    typed when the page answered a completed question instead (a follow-up such as
    «那2019年呢?», answered as ``a.question``), which the turn then says."""
    if not asked or asked == a.question:
        return f'<section class="qa-turn">{render_question(a.question)}{render_answer(a, documents)}</section>'
    note = f'<div class="qa-followup">按『{esc(a.question)}』回答</div>'
    return (f'<section class="qa-turn qa-turn--followup">{render_question(asked)}{note}'
            f'{render_answer(a, documents)}</section>')


def render_conversation(turns: list[str]) -> str:
    """The whole conversation from already rendered turns; a welcome note when empty."""
    if not turns:
        return ('<div class="qa-chat qa-chat--empty"><div class="qa-empty">'
                f'<div class="qa-empty-title">{esc(label("empty_title"))}</div>'
                f'<div class="qa-empty-body">{esc(label("empty_body"))}</div></div></div>')
    return f'<div class="qa-chat">{"".join(turns)}</div>'


def render_notice(message: str, kind: str = "warn") -> str:
    """A short message under the question box (an empty or too long question…)."""
    if not message:
        return ""
    return f'<div class="qa-notice qa-notice--{esc(kind)}" role="alert">{esc(message)}</div>'


def render_header(title: str, n_documents: int) -> str:
    """The page's title, what it does, and how many documents the collection holds."""
    return (f'<h1 class="qa-title">{esc(title)}</h1>'
            '<div class="qa-subtitle">答案直接取自文档原文，每个答案都附出处，可展开原文核对。'
            f'<span class="qa-collection">{int(n_documents)} 篇文档</span></div>')


def _titles(titles) -> str:
    return "".join(f"《{esc(t)}》" for t in titles)


def render_upload_summary(added: list[str], updated: list[str], unchanged: list[str],
                          skipped: list[tuple[str, str]], n_documents: int | None = None,
                          renamed: list[tuple[str, str]] = ()) -> str:
    """What an upload did, in plain words: the titles ``added``, ``updated`` and ``unchanged``
    (already there), the files ``renamed`` (name given, name saved: a file of that name was in
    the collection already), and ``skipped`` as (file name, why, in Chinese)."""
    parts = []
    done = []
    if added:
        done.append(f"已加入{_titles(added)}")
    if updated:
        done.append(f"已更新{_titles(updated)}")
    if done:
        total = f'<span class="qa-upload-total">文档库现有 {int(n_documents)} 篇文档。</span>' \
            if n_documents is not None else ""
        parts.append(f'<div class="qa-notice qa-upload-ok" role="status">{"，".join(done)}，可以提问了。{total}</div>')
    if unchanged:
        parts.append(f'<div class="qa-notice qa-upload-same" role="status">{_titles(unchanged)}'
                     "已在文档库中，内容没有变化。</div>")
    if renamed:
        items = "".join(f"<li>{render_renamed(a, b)}</li>" for a, b in renamed)
        parts.append(f'<div class="qa-notice qa-upload-renamed" role="status">文档库里已有同名的文件，'
                     f"没有替换它：<ul>{items}</ul></div>")
    if skipped:
        items = "".join(f"<li>{esc(n)}：{esc(r)}</li>" for n, r in skipped)
        parts.append(f'<div class="qa-notice qa-notice--warn qa-upload-skipped" role="alert">'
                     f"没有加入 {len(skipped)} 个文件：<ul>{items}</ul></div>")
    return "".join(parts)


def render_renamed(given: str, saved: str) -> str:
    """One file saved under a free name: 「报告.txt」另存为「报告 (2).txt」."""
    return f"「{esc(given)}」另存为「{esc(saved)}」"


def _size(chars: int) -> str:
    return f"{chars:,} 字" if chars < 10_000 else f"{chars / 10_000:.1f} 万字"


def render_library(entries: list[dict]) -> str:
    """The collection's documents: each with its title, file name, date, size and passages;
    ``entry["key"]`` (a file name of the upload folder) where the page may delete it."""
    if not entries:
        return '<div class="qa-lib qa-lib--empty">文档库是空的。</div>'
    items = []
    for e in entries:
        meta = [f'<span class="qa-lib-name">{esc(e.get("name", ""))}</span>']
        if e.get("date"):
            meta.append(f'<span class="qa-lib-date">{esc(e["date"])}</span>')
        meta.append(f'<span class="qa-lib-size">{esc(_size(int(e.get("chars", 0))))}</span>')
        meta.append(f'<span class="qa-lib-passages">{int(e.get("passages", 0))} 段</span>')
        actions = ""
        if e.get("key"):
            title = esc(e.get("title", ""))
            actions = (f'<button type="button" class="qa-lib-delete" data-key="{esc(e["key"])}" '
                       f'data-title="{title}" aria-label="删除《{title}》">删除</button>')
        items.append(f'<li class="qa-lib-item"><div class="qa-lib-main"><div class="qa-lib-title">'
                     f'《{esc(e.get("title", ""))}》</div><div class="qa-lib-meta">{" · ".join(meta)}</div></div>'
                     f'{actions}</li>')
    uploaded = sum(1 for e in entries if e.get("key"))
    note = (f"共 {len(entries)} 篇文档，其中 {uploaded} 篇是上传的（可以删除）。" if uploaded
            else f"共 {len(entries)} 篇文档。")
    return (f'<div class="qa-lib"><div class="qa-lib-note">{note}</div>'
            f'<ul class="qa-lib-list">{"".join(items)}</ul></div>')


_ICON_SEND = ('<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">'
              '<path d="M12 19V5M5 12l7-7 7 7" fill="none" stroke="currentColor" stroke-width="2.4" '
              'stroke-linecap="round" stroke-linejoin="round"/></svg>')
_ICON_CLEAR = ('<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">'
               '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3" '
               'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" '
               'stroke-linejoin="round"/></svg>')


def render_app(examples: list[str]) -> str:
    """The chat page's own part, which ``ui/chat.js`` brings to life: the conversation, the
    question box with its icon buttons (提问, 清空) stuck to the bottom of the window, the
    confirm/undo bar, the notice line, and the example questions."""
    buttons = "".join(f'<button type="button" class="qa-example" data-q="{esc(q)}">{esc(q)}</button>'
                      for q in examples)
    return (f'<div id="qa-chat">{render_conversation([])}</div>'
            '<div id="qa-dock">'
            '<div id="qa-notice"></div>'
            '<div id="qa-bar" class="qa-bar" role="group" aria-label="确认" hidden>'
            '<span class="qa-bar-text"></span><span class="qa-bar-actions">'
            '<button type="button" class="qa-bar-yes"></button>'
            '<button type="button" class="qa-bar-no"></button></span></div>'
            '<form id="qa-input" autocomplete="off">'
            '<div id="qa-question"><textarea rows="1" aria-label="问题" enterkeyhint="send" '
            'placeholder="输入问题，按回车提问"></textarea></div>'
            f'<button id="qa-ask" type="submit" aria-label="提问" title="提问（回车）">{_ICON_SEND}</button>'
            f'<button id="qa-clear" type="button" aria-label="清空对话" title="清空对话" disabled>{_ICON_CLEAR}</button>'
            '</form>'
            '<div id="qa-status" class="qa-sr" role="status" aria-live="polite"></div>'
            '</div>'
            f'<div id="qa-examples"><span class="qa-examples-label">试试：</span>{buttons}</div>')
