"""SQuAD-format files (CMRC 2018, DRCD, SQuAD 2.0 zh, …): the one reader of them.

``qa eval --squad`` (:func:`qa.evaluation.run.squad_documents`) and the reader's
training (``tools/reader/train.py``) both read these files through :func:`read_squad`.
"""
from __future__ import annotations

import json
from pathlib import Path


def read_squad(path: str | Path, locate: bool = True, source: str = "") -> tuple[list[dict], list[dict]]:
    """``(paragraphs, questions)`` of a SQuAD-format file, in file order.

    A paragraph: ``{doc_id, title, context}``, ``doc_id`` = ``"AAAA-PPP"`` (article and
    paragraph number). A question: ``{id, question, context, answers, impossible, source,
    doc_id, title}``, ``answers`` = ``[{text, answer_start}]``; ``impossible`` when the file
    says so or lists no answer. ``locate``: an answer whose offset is missing or does not
    point at its text gets the first occurrence of the text in the context (-1 when absent);
    ``locate=False`` keeps the offsets the file gives (-1 where it gives none).
    ``source`` names the set in every question (default: the file's stem).
    """
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    source = source or path.stem
    paragraphs, questions = [], []
    for a_i, article in enumerate(data["data"]):
        title = article.get("title", "")
        for p_i, para in enumerate(article["paragraphs"]):
            doc_id = f"{a_i:04d}-{p_i:03d}"
            ctx = para["context"]
            paragraphs.append({"doc_id": doc_id, "title": title, "context": ctx})
            for qa_ in para["qas"]:
                answers = []
                for a in qa_.get("answers", []):
                    text, st = a["text"], int(a.get("answer_start", -1))
                    if locate and (st < 0 or ctx[st:st + len(text)] != text):
                        st = ctx.find(text) if text else -1
                    answers.append({"text": text, "answer_start": st})
                questions.append({
                    "id": str(qa_["id"]), "question": qa_["question"], "context": ctx, "answers": answers,
                    "impossible": bool(qa_.get("is_impossible", False)) or not answers,
                    "source": source, "doc_id": doc_id, "title": title,
                })
    return paragraphs, questions


def load_squad(path: str | Path, source: str = "", locate: bool = True) -> list[dict]:
    """The questions of a SQuAD-format file (see :func:`read_squad`)."""
    return read_squad(path, locate, source)[1]
