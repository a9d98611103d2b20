"""Follow-up questions: 「那2019年呢?」 or 「衢州的呢?」 after a question, completed from it.

:func:`complete` rewrites such a question into a whole one, from the question before:
a year takes the place of the previous question's year (or goes in front of it), a place
takes the place of the previous question's place (or goes in front of it, with 的). It
is conservative: only a short question ending in 呢, without a question word of its own,
about a year or a place, is completed; anything else is left as it is (None), so no
ordinary question is ever rewritten.

A place is a name ending in a place word (区, 市, 县, 镇, 高新区, …), or a name that the
collection's texts (``texts``, normalised: simplified script) show followed by one
(「上虞」: 上虞区 is in the documents).
"""
from __future__ import annotations

import re
from typing import Iterable

from qa.text.normalize import to_simplified

_HAN = "\u3400-\u4dbf\u4e00-\u9fff"
#: 「那2019年呢?」「那么衢州的呢？」「上虞区呢」: what the follow-up asks about (the focus).
_FOLLOWUP = re.compile(rf"^(?:那么|那|还有|换成)?\s*(?P<focus>[0-9{_HAN}]{{1,10}}?)\s*(?:的情况|的)?\s*呢\s*[?？]?$")
_QUESTION_WORDS = re.compile(r"多少|什么|哪|几|谁|何|怎|如何|是否|吗|么")
_YEAR_ONLY = re.compile(r"^(?P<y>(?:19|20)\d\d)年?(?:度)?$")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)(?:\s*年)?")
#: Place words, longest first (simplified; the question is matched in simplified script).
_PLACE_WORDS = ["高新区", "经开区", "开发区", "新区", "园区", "自治区", "自治州", "省", "市", "县", "区", "镇", "乡",
                "街道", "村", "州"]
_PLACE_WORD = "|".join(_PLACE_WORDS)
_PLACE = re.compile(rf"[{_HAN}]{{1,8}}?(?:{_PLACE_WORD})+")
#: The previous question's place: its opening words up to the first place words (衢州市, 衢州高新区).
_LEADING_PLACE = re.compile(rf"^[{_HAN}]{{0,8}}?(?:{_PLACE_WORD})+")
MAX_FOLLOWUP_CHARS = 14


def is_followup(question: str) -> bool:
    """Whether ``question`` looks like a follow-up that :func:`complete` could complete."""
    q = (question or "").strip()
    m = _FOLLOWUP.match(q)
    return bool(m and len(q) <= MAX_FOLLOWUP_CHARS and not _QUESTION_WORDS.search(to_simplified(m["focus"])))


def _is_place(name: str, texts: Iterable[str]) -> bool:
    simplified = to_simplified(name)
    if any(simplified.endswith(w) for w in _PLACE_WORDS):
        return True
    if not re.fullmatch(f"[{_HAN}]{{2,6}}", simplified):
        return False
    probes = [simplified + w for w in _PLACE_WORDS]
    return any(any(p in t for p in probes) for t in texts)


def complete(question: str, previous: str | None, texts: Iterable[str] = ()) -> str | None:
    """``question`` completed from ``previous`` when it is a follow-up about a year or a
    place («那2019年呢?», «衢州的呢?»), else None. ``texts``: the collection's texts (or a
    few of them), normalised (``IndexData.normalized``), to tell a place name without a place
    word (上虞) from other words."""
    q = (question or "").strip()
    prev = (previous or "").strip()
    if not prev or not is_followup(q) or is_followup(prev):
        return None
    focus = _FOLLOWUP.match(q)["focus"]
    year = _YEAR_ONLY.match(focus)
    if year:
        y = year["y"]
        m = _YEAR.search(prev)
        if m:
            new = y + ("年" if m.group().rstrip().endswith("年") else "")
            return prev[:m.start()] + new + prev[m.end():]
        return f"{y}年{prev}"
    if not _is_place(focus, texts):
        return None
    simplified_prev = to_simplified(prev)          # same length: offsets carry over
    m = _LEADING_PLACE.match(simplified_prev) or _PLACE.search(simplified_prev)
    if m:
        return prev[:m.start()] + focus + prev[m.end():]
    return f"{focus}的{prev}"
