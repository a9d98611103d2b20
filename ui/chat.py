"""The two steps of a question on the chat page, without Gradio: check it and show it
at once (:func:`prepare_turn`), then answer it (:func:`answer_turn`).

The conversation is a list of already rendered turns that the caller keeps per
session (``gr.State`` on the page); these functions never change the list they get.
"""
from __future__ import annotations

import logging

from qa.errors import QAError, UsageError
from qa.question import clean_question
from ui import render

log = logging.getLogger(__name__)

#: Turns kept per session; older ones drop off the page.
MAX_TURNS = 40


def prepare_turn(question, turns):
    """Step 1 of a question: check it and show it at once, with a "looking…" line.

    Returns ``(conversation_html, checked_question, notice_html)``; for an empty or
    too long question ``(None, None, notice)``: the conversation stays as it was
    and the notice says what is wrong."""
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
        msg = f"出错了，请稍后再试（内部错误：{e.__class__.__name__}）"
        return render.render_conversation(turns), turns, render.render_notice(msg, "error")
    turns = (turns + [render.render_turn(a, pipe.index.documents)])[-MAX_TURNS:]
    return render.render_conversation(turns), turns, ""
