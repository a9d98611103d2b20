"""The words the user reads around answers, for the command line and the page alike.

Written once in simplified script; :func:`label` gives them in the question's script.
"""
from __future__ import annotations

from qa.text.normalize import in_script

#: Labels, written in simplified script; :func:`label` converts them.
LABELS = {
    "answer": "答案",
    "score": "置信度",
    "probable": "可能是",
    "probable_note": "把握不大，请核对下面的出处。",
    "sources": "来源",
    "source": "来源",
    "sentence": "原句",
    "view_doc": "查看原文",
    "view_doc_hint": "展开全文，引文已高亮",
    "chars": "第 {start}–{end} 字",
    "alternatives": "其他可能的答案",
    "not_found": "未找到",
    "closest": "最接近的内容（置信度不足，仅供参考）",
    "pending": "正在文档中查找…",
    "elapsed": "用时 {ms} 毫秒",
    "omitted_before": "（前文省略 {n} 字）",
    "omitted_after": "（后文省略 {n} 字）",
    "doc_missing": "原文不在当前索引中，无法展开。",
    "empty_title": "在下方输入问题，或点一个示例。",
    "empty_body": "答案直接取自文档原文，并附上出处：可展开原文，核对引文的上下文。简体、繁體均可提问。",
    "question": "问题",
    "page": "第 {page} 页",
    "page_hint": "原页图像和全文，引文已框出",
    "page_alt": "《{title}》第 {page} 页的图像",
    "page_box": "引文「{quote}」在这一页上的位置",
    "page_loading": "正在载入第 {page} 页的图像…",
}


def label(key: str, script: str = "simplified", **fmt) -> str:
    """The label ``key`` in ``script``, with ``{placeholders}`` filled from ``fmt``."""
    text = LABELS[key].format(**fmt) if fmt else LABELS[key]
    return in_script(text, script) if script == "traditional" else text
