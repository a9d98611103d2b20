"""Properties that must hold for every input (hypothesis).

- ``normalize``: same length as its input, idempotent, traditional → simplified;
- ``split_sentences``: spans ordered, inside the text, non-overlapping, trimmed,
  on one line, never page furniture, and nothing but whitespace/furniture left out;
- ``chunk_sentences``: chunks ordered, start at a sentence start and end at a
  sentence end, cover every sentence, bounded, overlapping as specified;
- ``answer()`` on random Unicode: raises nothing but ``UsageError``, and every
  citation satisfies ``text[start:end] == quote``.
"""
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa import answer
from qa.text.chunking import _IMAGE_LINK, ChunkSpec, chunk_sentences, is_furniture_line, split_sentences
from qa.errors import UsageError
from qa.text.normalize import fold_width, normalize, to_simplified
from qa.api import get_pipeline

# Unambiguous traditional → simplified characters (no phrase-dependent readings).
TRAD = "經濟區發億萬國這體書說時會來們對與開業產總質達縣蓋譽覽電車門問題學習長鐘錢關係氣"
SIMP = "经济区发亿万国这体书说时会来们对与开业产总质达县盖誉览电车门问题学习长钟钱关系气"
T2S = dict(zip(TRAD, SIMP))
assert len(TRAD) == len(SIMP)

PUNCT = "。！？!?；;…，,、：:“”「」『』（）()【】\"' \t\u3000"
FURNITURE_BITS = "|-![]()\n\r\x0b\x0c\x1c\x85\u2028"

any_char = st.one_of(
    st.characters(),                                   # anything but surrogates
    st.characters(categories=["Cs"]),                  # lone surrogates
    st.sampled_from(TRAD + SIMP + PUNCT + FURNITURE_BITS + "ＡＢＣａ１２３！？İẞ"),
)
any_text = st.text(any_char, max_size=200)

# Document-like text: sentences, table rows, image links, e-paper id lines, blank lines.
sentence = st.builds(lambda body, end: body + end,
                     st.text(st.sampled_from(SIMP + TRAD + "0123456789年月日%亿元，、 "), min_size=0, max_size=60),
                     st.sampled_from(["。", "！", "？", "；", "……", "。”", "", "!\"", "）。"]))
furniture = st.sampled_from([
    "| 指标 | 数值 |", "|---|---|", "![图片](http://example.com/a.png)", "  |  ", "-----",
    "ISSN1234-5678 CN33-1234/F20210223A01 PAGE-A0123456",
    "| 2019年 | 1350亿元 |", "![](x)正文在图后。",
])
line = st.one_of(st.lists(sentence, max_size=5).map("".join), furniture, st.just(""), any_text)
document = st.lists(line, max_size=12).map(lambda ls: "\n".join(ls)) | any_text


# --- normalize ------------------------------------------------------------------

@given(any_text)
def test_normalize_keeps_length(text):
    assert len(normalize(text)) == len(text)
    assert len(to_simplified(text)) == len(text)
    assert len(fold_width(text)) == len(text)


@given(any_text)
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(st.sampled_from(TRAD + SIMP + PUNCT + "0123456789"), max_size=80))
def test_traditional_becomes_simplified(text):
    simplified = "".join(T2S.get(c, c) for c in text)
    assert normalize(text) == normalize(simplified)
    assert not set(normalize(text)) & set(TRAD)


def test_normalize_examples():
    assert normalize("經開區2019年經濟總量１３５０億") == "经开区2019年经济总量1350亿"
    assert normalize("ＧＤＰ") == "gdp"
    assert normalize("İstanbul") == "İstanbul"      # lower() would make it 9 characters


# --- split_sentences ------------------------------------------------------------------

def _furniture_ranges(text):
    """[start, end) of furniture lines, image links and table pipes."""
    out, pos = [], 0
    for ln in text.splitlines(keepends=True):
        body = ln.rstrip("\r\n")
        if is_furniture_line(body):
            out.append((pos, pos + len(ln)))
        else:
            out += [(pos + m.start(), pos + m.end()) for m in _IMAGE_LINK.finditer(body)]
        pos += len(ln)
    return out


@settings(max_examples=300)
@given(document, st.integers(5, 300))
def test_sentences_are_ordered_inside_and_never_furniture(text, max_len):
    spans = split_sentences(text, max_len)
    prev_end = 0
    for s, e in spans:
        assert prev_end <= s < e <= len(text)                     # ordered, non-empty, non-overlapping
        prev_end = e
        piece = text[s:e]
        assert not piece[0].isspace() and not piece[-1].isspace()
        assert len(piece) <= max_len
        assert len(piece.splitlines()) == 1                       # never across a line break
        assert "|" not in piece and not _IMAGE_LINK.search(piece)
    furniture = _furniture_ranges(text)
    for s, e in spans:
        assert not any(a < e and s < b for a, b in furniture), (text[s:e], text)
    # nothing but whitespace, table pipes and furniture is left out
    covered = bytearray(len(text))
    for a, b in spans + furniture:
        covered[a:b] = b"\1" * (b - a)
    left = "".join(c for c, k in zip(text, covered) if not k)
    assert not left.replace("|", "").strip(), repr(left)


# --- chunk_sentences ----------------------------------------------------------------------

@settings(max_examples=300)
@given(document, st.integers(1, 400), st.integers(0, 3), st.integers(5, 300))
def test_chunks_end_at_sentence_ends_and_cover_everything(text, max_chars, overlap, max_sentence):
    spec = ChunkSpec(max_chars=max_chars, overlap_sentences=overlap, max_sentence=max_sentence)
    spans = split_sentences(text, spec.max_sentence)
    chunks = chunk_sentences(spans, spec)
    if not spans:
        assert chunks == []
        return
    assert chunks[0][2] == 0 and chunks[-1][3] == len(spans)
    seen = set()
    for k, (s, e, i, j) in enumerate(chunks):
        assert 0 <= i < j <= len(spans)
        assert (s, e) == (spans[i][0], spans[j - 1][1])            # starts/ends at sentence boundaries
        assert 0 <= s < e <= len(text)
        assert e - s <= max_chars or j - i == 1
        seen.update(range(i, j))
        if k:
            ps, pe, pi, pj = chunks[k - 1]
            assert pi < i and s > ps and e >= pe                   # ordered, always progressing
            # (e == pe: the overlap sentence alone, when the next one does not fit with it —
            # a redundant chunk, harmless; 2 of the seeds' 124 chunks)
            assert i <= pj and pj - i <= overlap                   # contiguous, overlap as specified
    assert seen == set(range(len(spans)))


# --- answer() on random Unicode -------------------------------------------------------------

def _question_from_seeds(draw_text, start, length, noise):
    docs = sorted(get_pipeline().index.documents.values(), key=lambda d: d.doc_id)
    doc = docs[start % len(docs)]
    s = start % max(1, len(doc.text) - length)
    return noise + doc.text[s:s + length] + draw_text


question = st.one_of(
    any_text,
    st.text(any_char, min_size=1001, max_size=1100),                 # over the length limit (mostly)
    st.builds(_question_from_seeds, any_text, st.integers(0, 10**6), st.integers(2, 40),
              st.sampled_from(["", "是多少", "什么时候", "谁", "？"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(question)
def test_answer_never_raises_and_citations_hold(q):
    pipe = get_pipeline()
    try:
        a = answer(q)
    except UsageError as e:
        assert str(e) and "\n" not in str(e)
        return
    for x in [a, *a.alternatives]:
        for c in x.citations:
            text = pipe.index.documents[c.doc_id].text
            assert 0 <= c.start < c.end <= len(text)
            assert text[c.start:c.end] == c.quote
            assert text[c.sentence_start:c.sentence_end] == c.sentence
            assert re.sub(r"\s", "", c.quote)                       # never an empty or blank quote
