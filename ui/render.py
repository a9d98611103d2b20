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

import html
from typing import Mapping

from qa.labels import label
from qa.text.normalize import detect_script
from qa.types import Answer, Citation, Document

#: Cited sentences longer than this are shortened around the answer span in the
#: source card (the document panel always shows them whole).
SENTENCE_CONTEXT = 70
MAX_SENTENCE_CHARS = 2 * SENTENCE_CONTEXT + 40
#: The document panel shows the whole document up to this many characters;
#: beyond it, a window of this size around the cited sentence.
MAX_DOC_CHARS = 40_000


def esc(text) -> str:
    """``text`` safe to put in HTML content or a quoted attribute."""
    return html.escape("" if text is None else str(text), quote=True)


def score_level(score: float) -> str:
    """``high`` / ``mid`` / ``low``: the colour of the score badge."""
    if score >= 0.7:
        return "high"
    if score >= 0.4:
        return "mid"
    return "low"


def render_score(score: float, script: str) -> str:
    s = float(score)
    return (f'<span class="qa-score qa-score--{score_level(s)}" title="{esc(label("score", script))}">'
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


def render_meta(c: Citation) -> str:
    bits = [f'<span class="qa-doc-title">《{esc(c.title)}》</span>']
    if c.date:
        bits.append(f'<span class="qa-doc-date">{esc(c.date)}</span>')
    if c.source:
        bits.append(f'<span class="qa-doc-source" title="{esc(c.source)}">{esc(c.source)}</span>')
    return f'<div class="qa-cite-meta">{"".join(bits)}</div>'


def render_citation(c: Citation, documents: Mapping[str, Document] | None = None,
                    script: str = "simplified") -> str:
    """A source card: title/date/source, the sentence with the span
    highlighted, and a folded panel with the whole document scrolled to it."""
    doc = documents.get(c.doc_id) if documents else None
    parts = [f'<div class="qa-cite" data-doc-id="{esc(c.doc_id)}" data-start="{int(c.start)}" '
             f'data-end="{int(c.end)}">',
             render_meta(c),
             f'<blockquote class="qa-cite-sentence">{render_sentence(c)}</blockquote>']
    if doc is not None:
        chars = label("chars", script, start=c.start, end=c.end)
        parts.append(
            '<details class="qa-doc">'
            f'<summary><span class="qa-doc-open">{esc(label("view_doc", script))}</span>'
            f'<span class="qa-doc-hint">{esc(label("view_doc_hint", script))} · {esc(chars)}</span></summary>'
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
        return ('<div class="qa-answer qa-answer--none" data-no-answer="true">'
                f'<div class="qa-answer-head"><span class="qa-badge qa-badge--none">'
                f'{esc(label("not_found", script))}</span></div>'
                f'<div class="qa-none-text">{esc(a.text)}</div>{closest}</div>')
    sources = "".join(render_citation(c, documents, script) for c in a.citations)
    alts = render_alternatives(a.alternatives, documents, script, label("alternatives", script))
    elapsed = ""
    if a.timings.get("total_ms") is not None:
        elapsed = f'<span class="qa-elapsed">{esc(label("elapsed", script, ms=round(a.timings["total_ms"])))}</span>'
    return ('<div class="qa-answer" data-no-answer="false">'
            f'<div class="qa-answer-head"><span class="qa-badge">{esc(label("answer", script))}</span>'
            f'{render_score(a.score, script)}{elapsed}</div>'
            f'<div class="qa-answer-text">{esc(a.text)}</div>'
            f'<div class="qa-sources"><div class="qa-sources-title">{esc(label("sources", script))}</div>'
            f'{sources}</div>{alts}</div>')


def render_question(question: str) -> str:
    return f'<div class="qa-question"><div class="qa-bubble">{esc(question)}</div></div>'


def render_turn(a: Answer, documents: Mapping[str, Document] | None = None) -> str:
    """A question and its answer, as one turn of the conversation."""
    return f'<section class="qa-turn">{render_question(a.question)}{render_answer(a, documents)}</section>'


def render_pending(question: str) -> str:
    """The turn shown while the answer is being looked up (not answered yet, so its
    script is read from the question itself)."""
    script = detect_script(question)
    return (f'<section class="qa-turn qa-turn--pending">{render_question(question)}'
            f'<div class="qa-answer qa-answer--pending"><span class="qa-dots"><i></i><i></i><i></i></span>'
            f'{esc(label("pending", script))}</div></section>')


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
    return (f'<div class="qa-title">{esc(title)}</div>'
            '<div class="qa-subtitle">答案直接取自文档原文，每个答案都附出处，可展开原文核对。'
            f'<span class="qa-collection">{int(n_documents)} 篇文档</span></div>')


def render_upload_summary(indexed: list[tuple[str, str]], skipped: list[tuple[str, str]], report) -> str:
    """What an upload did: ``indexed`` as (file name, what happened to it), the collection
    as ``report`` (a :class:`~qa.index.build.IndexReport`) left it, and ``skipped`` as
    (file name, why)."""
    parts = []
    if indexed:
        names = "、".join(f"{name}（{what}）" for name, what in indexed)
        parts.append(
            f'<div class="qa-notice qa-upload-ok" role="status">已加入 {len(indexed)} 个文件：{esc(names)}。'
            f"文档库现有 {report.documents} 篇文档（新增 {len(report.added)} 篇、更新 {len(report.changed)} 篇、"
            f"删除 {len(report.removed)} 篇）；编码 {report.texts_encoded} 段文字"
            f"（{report.texts_cached} 段取自缓存），用时 {report.seconds:.1f} 秒。现在可以就这些文件提问。</div>")
    if skipped:
        items = "".join(f"<li>{esc(n)}：{esc(r)}</li>" for n, r in skipped)
        parts.append(f'<div class="qa-notice qa-notice--warn qa-upload-skipped" role="alert">'
                     f"未能加入 {len(skipped)} 个文件：<ul>{items}</ul></div>")
    return "".join(parts)
