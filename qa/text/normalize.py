"""The one normaliser, for matching only: traditional→simplified and width folding.

``normalize(text)`` returns a string of exactly the same length as ``text``, so an
offset into the normalised text is the same offset into the original. Indexing,
BM25, the reader and the scorer all call it; nothing else folds scripts.
"""
from __future__ import annotations

import functools
import re

import opencc

# Han characters, for every regex of the project that needs them (one definition):
# CJK unified ideographs with extension A, and the compatibility ideographs.
HAN = "\u3400-\u9fff\uf900-\ufaff"
# … plus 〇 and the supplementary ideograph planes: what the scorer counts as one character each
HAN_ALL = "\u3007" + HAN + "\U00020000-\U0003134f"

_T2S = opencc.OpenCC("t2s")
_S2T = opencc.OpenCC("s2t")

# Full-width ASCII block → ASCII, ideographic space → space, curly and corner
# quotes → ASCII quotes, so "，" and "," match. One char for one char; 、 and 。 stay.
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_WIDTH.update({0x3000: 0x20, 0xFF61: ord("。"), 0xFF64: ord("、"),
               0x2018: ord("'"), 0x2019: ord("'"), 0x201C: ord('"'), 0x201D: ord('"'),
               0x300C: ord('"'), 0x300D: ord('"'), 0x300E: ord('"'), 0x300F: ord('"')})
_WIDTH_TABLE = str.maketrans({chr(k): chr(v) for k, v in _WIDTH.items()})


def fold_width(text: str) -> str:
    """Full-width letters, digits and punctuation → half-width; ASCII lower-cased."""
    out = text.translate(_WIDTH_TABLE).lower()
    if len(out) != len(text):   # "İ".lower() is two characters: keep such a character as it is
        out = "".join(c if len(c.lower()) != 1 else c.lower() for c in text.translate(_WIDTH_TABLE))
    return out


@functools.lru_cache(maxsize=65536)
def _t2s_char(ch: str) -> str:
    out = _T2S.convert(ch)
    return out if len(out) == 1 else ch


_SURROGATES = re.compile(r"([\ud800-\udfff]+)")


def _around_surrogates(convert, text: str) -> str:
    """OpenCC needs valid UTF-8: convert the text between lone surrogates, keep those as they are."""
    return "".join(p if i % 2 else convert(p) for i, p in enumerate(_SURROGATES.split(text)))


def to_simplified(text: str) -> str:
    """Traditional → simplified, same length as ``text``.

    OpenCC converts phrase by phrase; where a phrase changes length (rare), that
    line falls back to character-by-character conversion.
    """
    if _SURROGATES.search(text):
        return _around_surrogates(to_simplified, text)
    out = _T2S.convert(text)
    if len(out) == len(text):
        return out
    parts = []
    for line in text.splitlines(keepends=True):
        conv = _T2S.convert(line)
        parts.append(conv if len(conv) == len(line) else "".join(_t2s_char(c) for c in line))
    return "".join(parts)


def to_traditional(text: str) -> str:
    """Simplified → traditional (for showing answers in the question's script)."""
    if _SURROGATES.search(text):
        return _around_surrogates(to_traditional, text)
    return _S2T.convert(text)


def normalize(text: str) -> str:
    """The matching form of ``text``: simplified script, half-width, lower-case ASCII.

    ``len(normalize(t)) == len(t)`` for every string ``t``.
    """
    return fold_width(to_simplified(text))


_HAN = re.compile(f"[{HAN}]")


def detect_script(text: str, simplified: str | None = None) -> str:
    """``"traditional"`` if the text has more traditional-only characters than
    simplified-only ones, else ``"simplified"``. ``simplified``: ``to_simplified(text)``,
    when the caller has it already."""
    simplified = to_simplified(text) if simplified is None else simplified
    trad = sum(1 for a, b in zip(text, simplified) if a != b)
    if trad == 0:
        return "simplified"
    trad_text = to_traditional(text)
    simp = sum(1 for a, b in zip(text, trad_text) if a != b) if len(trad_text) == len(text) else 0
    return "traditional" if trad >= simp else "simplified"


def in_script(text: str, script: str) -> str:
    """``text`` written in ``script`` (``"simplified"`` or ``"traditional"``)."""
    if script == "traditional":
        return to_traditional(text)
    return to_simplified(text)


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))
