"""Sentence splitting and chunking for Chinese, offset-exact.

``split_sentences(text)`` → ``[(start, end), …]`` over the original text, with page
furniture (markdown table pipes, image links, e-paper metadata lines) left out so
it can never become part of an answer. ``chunk_sentences`` packs sentences into
bounded chunks with overlap; each chunk is ``[start, end)`` of its document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends after one of these, plus any closing quotes/brackets after it.
_END = "。！？!?；;…"
_CLOSE = "”’」』）)】\"'"
_SENTENCE_END = re.compile(rf"[{_END}]+[{re.escape(_CLOSE)}]*")
# Furniture inside a line: markdown image links and table cell separators.
_IMAGE_LINK = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_TABLE_PIPE = re.compile(r"\s*\|+\s*")
# An identifier-like token (issue numbers, e-paper page ids): ≥10 ASCII chars with digits.
_ID_TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z/\-:]{9,}")
_SOFT_BREAK = re.compile(r"[,，、:：]")


def is_furniture_line(line: str) -> bool:
    """True for lines that are page furniture rather than content.

    - only pipes, dashes, whitespace and image links (markdown table debris);
    - an identifier-laden metadata line: ≥3 long ID tokens and no full stop
      (the trailing e-paper line of a newspaper page).
    """
    rest = _IMAGE_LINK.sub("", line)
    if not rest.strip(" \t\r\n|-:"):
        return True
    return "。" not in line and len(_ID_TOKEN.findall(line)) >= 3


def _line_spans(text: str):
    pos = 0
    for line in text.splitlines(keepends=True):
        yield pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _content_pieces(text: str, start: int, end: int):
    """Split a line's ``[start, end)`` at image links and table pipes."""
    cut = [(m.start(), m.end()) for m in _IMAGE_LINK.finditer(text, start, end)]   # already absolute
    cut += [(m.start(), m.end()) for m in _TABLE_PIPE.finditer(text, start, end) if "|" in m.group()]
    cut.sort()
    pos = start
    for a, b in cut:
        if a < pos:
            continue
        yield pos, a
        pos = b
    yield pos, end


def table_row(text: str, start: int, end: int) -> tuple[int, int]:
    """The table row (a line of ``|``-separated cells) that ``[start, end)`` lies in, without its
    outer pipes — the context that shows a cell's header (「发布单位: | 杭州湾上虞经开区」) — or
    ``(start, end)`` itself when it is not in a table row. Cells stay separate sentences, so no
    answer ever spans a pipe; only the cited context widens."""
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end)
    le = len(text) if le < 0 else le
    line = text[ls:le]
    if "|" not in line or is_furniture_line(line) or not any("|" in m.group() for m in _TABLE_PIPE.finditer(line)):
        return start, end
    a, b = ls, le
    while a < b and (text[a].isspace() or text[a] == "|"):
        a += 1
    while b > a and (text[b - 1].isspace() or text[b - 1] == "|"):
        b -= 1
    return (a, b) if a <= start and end <= b else (start, end)


def split_sentences(text: str, max_len: int = 200) -> list[tuple[int, int]]:
    """Sentences of ``text`` as ``[start, end)`` spans, furniture excluded.

    Splits at sentence-final punctuation (with closing quotes kept on the
    sentence), line breaks and table cells; a sentence longer than ``max_len``
    characters is cut at its last comma-like mark before the limit.
    """
    spans: list[tuple[int, int]] = []
    for ls, le in _line_spans(text):
        if is_furniture_line(text[ls:le]):
            continue
        for ps, pe in _content_pieces(text, ls, le):
            pos = ps
            for m in _SENTENCE_END.finditer(text, ps, pe):
                spans.extend(_cap(text, pos, m.end(), max_len))
                pos = m.end()
            spans.extend(_cap(text, pos, pe, max_len))
    return spans


def _cap(text: str, start: int, end: int, max_len: int) -> list[tuple[int, int]]:
    start, end = _strip(text, start, end)
    out = []
    while end - start > max_len:
        cut = None
        for m in _SOFT_BREAK.finditer(text, start + max_len // 3, start + max_len):
            cut = m.end()
        cut = cut or start + max_len
        s, e = _strip(text, start, cut)
        if e > s:
            out.append((s, e))
        start, _ = _strip(text, cut, end)
    if end > start:
        out.append((start, end))
    return out


@dataclass(frozen=True)
class ChunkSpec:
    """Chunking parameters; part of the index manifest."""

    max_chars: int = 240
    overlap_sentences: int = 1
    max_sentence: int = 200

    def to_dict(self) -> dict:
        return {"max_chars": self.max_chars, "overlap_sentences": self.overlap_sentences,
                "max_sentence": self.max_sentence}


def chunk_sentences(sentences: list[tuple[int, int]], spec: ChunkSpec = ChunkSpec()
                    ) -> list[tuple[int, int, int, int]]:
    """Pack consecutive sentences into chunks of at most ``spec.max_chars``
    (measured from first sentence start to last sentence end).

    Returns ``(start, end, first_sentence, last_sentence_exclusive)`` per chunk;
    consecutive chunks share ``spec.overlap_sentences`` sentences.
    """
    chunks = []
    i, n = 0, len(sentences)
    while i < n:
        j = i + 1
        while j < n and sentences[j][1] - sentences[i][0] <= spec.max_chars:
            j += 1
        chunks.append((sentences[i][0], sentences[j - 1][1], i, j))
        if j >= n:
            break
        i = max(i + 1, j - spec.overlap_sentences)
    return chunks
