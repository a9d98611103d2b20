"""The conversation on the chat page, without Gradio.

The browser owns the conversation (``ui/chat.js``): it shows a question at once,
asks the server one question at a time in the order they were sent, and keeps
the turns in ``localStorage`` per collection, so a reload or a second question
sent while the first is loading loses nothing. The server is stateless per
question:

* :func:`ask_turn` answers one question and returns the turn's HTML and a
  compact *record* of the answer for the browser to keep;
* :func:`restore_turns` renders saved records again (after a reload) with the
  documents the collection holds now (a citation's page and box placed from them);
* :func:`page_view` gives the document viewer a cited page's image when the user opens it
  (:mod:`ui.pages`), or a Chinese note when the file is gone.

A record is :meth:`qa.types.Answer.to_dict` with every document id replaced by
:func:`ui.render.doc_key` and every source by its display name: no server path
ever reaches the browser.
"""
from __future__ import annotations

import dataclasses
import logging

from qa.decide import STATES
from qa.errors import QAError, UsageError
from qa.followup import complete
from qa.ingest.layout import place
from qa.question import MAX_QUESTION_CHARS, clean_question
from qa.text.normalize import in_script
from qa.types import Answer, Citation
from ui import pages, render
from ui.messages import error_zh

log = logging.getLogger(__name__)

#: Turns kept per conversation; older ones drop off the page (and the browser's storage).
MAX_TURNS = 40
#: Candidates kept per saved answer (alternatives), and characters of a saved sentence.
MAX_SAVED_ALTERNATIVES = 10


def empty_notice() -> str:
    """What an empty question gets (the browser checks before asking)."""
    try:
        clean_question("")
    except UsageError as e:
        return str(e)
    return "问题为空，请输入一个问题"


def too_long_notice() -> str:
    """What a too long question gets, with ``{n}`` for its length (the browser fills it in)."""
    try:
        clean_question("问" * (MAX_QUESTION_CHARS + 1))
    except UsageError as e:
        return str(e).replace(str(MAX_QUESTION_CHARS + 1), "{n}", 1)
    return "问题太长：{n} 个字符，上限 " + str(MAX_QUESTION_CHARS) + " 个"


def _public_citation(c: dict) -> dict:
    c = dict(c)
    c["doc_id"] = render.doc_key(c.get("doc_id"))
    c["source"] = render.display_source(c.get("source"))
    return c


def public_record(a: Answer) -> dict:
    """The answer as the browser keeps it: no document ids (server paths), no sources' folders,
    the answer's total time only."""
    def strip(d: dict, depth: int = 0) -> dict:
        d = dict(d)
        d["citations"] = [_public_citation(c) for c in d.get("citations", [])]
        d["alternatives"] = [strip(x, depth + 1) for x in d.get("alternatives", [])][:MAX_SAVED_ALTERNATIVES] \
            if depth == 0 else []
        total = (d.get("timings") or {}).get("total_ms")
        d["timings"] = {"total_ms": total} if total is not None else {}
        return d
    return strip(a.to_dict())


def answer_from_record(record, documents) -> Answer:
    """A saved record back as an :class:`Answer` over ``documents`` (the collection now).
    A citation whose document is gone or changed keeps its sentence but loses the panel
    (its ``doc_id`` then names no document). Raises ValueError for anything malformed."""
    if not isinstance(record, dict) or not isinstance(record.get("question"), str):
        raise ValueError("not a saved answer")
    by_key = {render.doc_key(doc_id): doc_id for doc_id in documents}

    def citation(c) -> Citation:
        if isinstance(c, dict):
            c = _saved_place(c)
        cit = Citation.from_dict(c)
        for name in ("start", "end", "sentence_start", "sentence_end", "passage_start", "passage_end"):
            if not isinstance(getattr(cit, name), int):
                raise ValueError(f"bad offset {name}")
        for name in ("title", "quote", "sentence", "source"):
            if not isinstance(getattr(cit, name), str):
                raise ValueError(f"bad text {name}")
        doc_id = by_key.get(cit.doc_id)
        doc = documents.get(doc_id) if doc_id is not None else None
        if doc is None or doc.text[cit.start:cit.end] != cit.quote:
            return cit      # the key names no document: no panel
        # page and box from the document as it is now (also for answers saved before pages were kept)
        return place(dataclasses.replace(cit, doc_id=doc_id), doc)

    def answer(d, depth=0) -> Answer:
        if not isinstance(d, dict):
            raise ValueError("not a saved answer")
        for name, kind in (("question", str), ("text", str), ("no_answer", bool), ("score", (int, float))):
            if not isinstance(d.get(name), kind):
                raise ValueError(f"bad field {name}")
        script = d.get("script") if d.get("script") in ("simplified", "traditional") else "simplified"
        timings = d.get("timings") if isinstance(d.get("timings"), dict) else {}
        total = timings.get("total_ms")
        alts = d.get("alternatives") or []
        return Answer(question=d["question"], text=d["text"], score=float(d["score"]), no_answer=d["no_answer"],
                      citations=[citation(c) for c in (d.get("citations") or [])[:10]],
                      alternatives=[answer(x, depth + 1) for x in alts[:MAX_SAVED_ALTERNATIVES]] if depth == 0 else [],
                      timings={"total_ms": float(total)} if isinstance(total, (int, float)) else {},
                      kind=str(d.get("kind") or ""), script=script,
                      state=d.get("state") if d.get("state") in STATES else "")
    return answer(record)


def _saved_place(c: dict) -> dict:
    """A saved citation's ``page`` and ``box`` as :class:`Citation` takes them: a page that is
    not a positive number, or a box that is not four numbers, is dropped (not the record)."""
    c = dict(c)
    page = c.get("page")
    if not (isinstance(page, int) and not isinstance(page, bool) and page >= 1):
        c["page"] = None
    box = c.get("box")
    if box is not None and (not isinstance(box, (list, tuple)) or len(box) != 4
                            or render.box_percent(box) is None
                            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in box)):
        c["box"] = None
    return c


def page_view(pipe, data) -> dict:
    """The viewer's page image: ``data`` is ``{"doc": a document key (render.doc_key), "page": n,
    "script": the answer's script}`` from the page. Returns :func:`ui.pages.page_image`'s
    answer (a PNG data URI, or a Chinese note for the text version only). Runs only when the
    user opens a viewer, never in the answering queue."""
    if not isinstance(data, dict):
        return {"ok": False, "note": pages.NOTE_NOT_A_PAGE}
    script = data.get("script") if data.get("script") in ("simplified", "traditional") else "simplified"

    def said(out: dict) -> dict:
        if script == "traditional" and out.get("note"):
            out = dict(out, note=in_script(out["note"], script))
        return out

    documents = pipe.index.documents
    key = data.get("doc")
    doc_id = next((d for d in documents if render.doc_key(d) == key), None) if isinstance(key, str) else None
    page = data.get("page")
    if isinstance(page, str) and page.isdigit():
        page = int(page)
    if doc_id is None:
        return said({"ok": False, "note": render.label("doc_missing")})
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        return said({"ok": False, "note": pages.NOTE_NO_PAGE})
    try:
        return said(pages.page_image(documents[doc_id], page))
    except Exception:   # noqa: BLE001 — never a traceback, never a path
        log.exception("rendering page %s of a document failed", page)
        return said({"ok": False, "note": pages.NOTE_UNREADABLE})


def ask_turn(pipe, question, previous=None) -> dict:
    """Answer one question with ``pipe``; a follow-up («那2019年呢?», «衢州的呢?») is
    completed from ``previous`` (the question answered before it) first, and the turn says
    so: 「按『上虞区2019年的常住人口是多少?』回答」.

    Returns ``{"ok": True, "html": the turn, "record": public_record(answer)}``, or
    ``{"ok": False, "notice": HTML of a notice}`` for an empty or too long question or
    an error (always in Chinese; a traceback never reaches the page)."""
    try:
        q = clean_question(question)
        asked = None
        if isinstance(previous, str) and previous.strip():
            texts = (getattr(pipe.index, "normalized", None) or {}).values()
            completed = complete(q, previous, texts)
            if completed and completed != q:
                asked, q = q, clean_question(completed)
        a = pipe.answer(q)
    except QAError as e:
        kind = "warn" if isinstance(e, UsageError) else "error"
        return {"ok": False, "notice": render.render_notice(error_zh(e), kind)}
    except Exception as e:  # noqa: BLE001 — never a traceback on the page
        log.exception("answering %r failed", question)
        return {"ok": False, "notice": render.render_notice(error_zh(e), "error")}
    record = public_record(a)
    if asked:
        record["asked"] = asked
    return {"ok": True, "html": render.render_turn(a, pipe.index.documents, asked=asked), "record": record}


def restore_turns(pipe, records) -> list:
    """Saved records (the last :data:`MAX_TURNS`) rendered as turns with the documents the
    collection holds now: one HTML string per record, None for one that cannot be read."""
    if not isinstance(records, list):
        return []
    documents = pipe.index.documents
    out = []
    for rec in records[-MAX_TURNS:]:
        try:
            asked = rec.get("asked") if isinstance(rec.get("asked"), str) else None
            out.append(render.render_turn(answer_from_record(rec, documents), documents, asked=asked))
        except Exception as e:  # noqa: BLE001 — a damaged record loses only itself
            log.info("a saved turn could not be restored: %s", e)
            out.append(None)
    return out
