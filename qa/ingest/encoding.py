"""Bytes of a text file → str, for the encodings Chinese documents come in.

Order of tries (first that holds wins):

0. known binary signatures (PNG, PDF, ZIP/Office, ELF …) → binary;
1. a byte-order mark: UTF-8, UTF-16 LE/BE, UTF-32 LE/BE;
2. NUL bytes: BOM-less UTF-16 (both byte orders tried, the parity holding the
   zeros of ASCII characters first), else the file is binary;
3. strict UTF-8 (ASCII included) — unless its only non-ASCII characters are the
   odd 2-byte ones a short GBK/Big5 text turns into ("说" = CB B5 = "˵") and a
   Chinese reading is clearly plausible;
4. strict GB18030, Big5 (big5, cp950, big5hkscs) and, for even lengths, BOM-less
   UTF-16; each decoding that succeeds is scored for *plausibility* (on the
   first MiB; only the winner decodes the whole file): the mean over its
   non-ASCII characters of +3 for one of the ~500 most frequent characters, +1
   for another common character (GB2312 level 1 ∪ Big5 level 1, both taken from
   the codecs) or Chinese punctuation, 0.25 for a rare ideograph, −2 for kana,
   hangul, bopomofo, box drawing, small-form, private-use and control
   characters — what mis-decoded Chinese is made of — minus up to 2 for mixing
   simplified-only with traditional-only characters (GB bytes of Big5 text do;
   real text keeps to one script). A reading scoring ≥ 1 is taken; a near tie
   between a GB and a Big5 reading is settled by charset-normalizer when there
   are ≥ 200 bytes for it to judge; otherwise GB18030 wins ties;
5. UTF-8 with a few bad bytes (≤ 1 per 1000 characters, and ≥ 20 valid
   multi-byte characters per bad byte): decoded with U+FFFD in their place,
   and ``Decoded.note`` says so;
6. a weaker GB/Big5/UTF-16 reading (score ≥ 0.3);
7. charset-normalizer's best guess for other legacy encodings (Shift-JIS,
   EUC-KR, Latin code pages …), when its chaos is ≤ 0.1 and there are ≥ 16
   non-ASCII bytes to judge by;
8. a clean GB18030/Big5 reading of rare characters only (score ≥ 0: 氩氪氙);
9. otherwise :class:`InputError` "undecodable bytes …".

Every result must also look like text: a few stray control characters are
fine, more than 1 % (or any NUL) is binary.

Measured on 300 random snippets of the seed documents per length: GBK decodes
back 100 % from 2 characters; Big5 98 % at 2–3 characters, ≥ 99 % from 4 and
100 % from 10; BOM-less UTF-16 100 % from 4. EUC-KR and Shift-JIS text can be mistaken for GB18030
(same byte structure): such a reading is checked for kana (Japanese) or space-separated
hangul (Korean) and refused with the language named; so is a reading that is not
Chinese text at all (random high bytes), see :func:`decode_bytes`.
"""
from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

from qa.errors import InputError

# ~500 most frequent characters of modern Chinese (simplified; traditional
# forms are added from OpenCC at first use). Only used as a plausibility weight.
_TOP_CHARS = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里"
    "用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实"
    "日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政"
    "美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员"
    "解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件"
    "计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象"
    "完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改"
    "收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调"
    "深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企"
    "八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列"
    "武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供"
    "效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值"
    "仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳"
    "若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷"
    "洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善"
)
_PUNCT = set("，。、；：？！「」『』（）《》〈〉“”‘’—…·－～【】〔〕〖〗％＋／　")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHINESE_CODECS = ("gb18030", "big5", "cp950", "big5hkscs")
_GB = {"gb18030"}
_MAGIC = (
    (b"%PDF-", "PDF"), (b"PK\x03\x04", "ZIP/Office"), (b"\x89PNG", "PNG image"), (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"), (b"\xd0\xcf\x11\xe0", "old Office/OLE"), (b"\x7fELF", "executable"),
    (b"MZ", "executable"), (b"\x1f\x8b", "gzip"), (b"7z\xbc\xaf", "7-Zip"), (b"Rar!", "RAR"),
    (b"SQLite format 3\x00", "SQLite"),
)
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0e-\x19\x1c-\x1f\x7f]")

ACCEPT_SCORE = 1.0     # a Chinese reading this plausible is taken at once
WEAK_SCORE = 0.3       # … this plausible, when nothing better turns up
TIE_MARGIN = 0.15      # GB vs Big5 within this → ask charset-normalizer
SAMPLE_CHARS = 20000   # characters scored per candidate


@dataclass
class Decoded:
    text: str
    encoding: str
    note: str = ""      # e.g. "3 undecodable bytes replaced with U+FFFD"


def decode_bytes(data: bytes) -> Decoded:
    """Bytes → :class:`Decoded`, or :class:`InputError` with a short reason (no path).

    A reading in a legacy encoding (GB18030, Big5, or charset-normalizer's guess) must
    also be Chinese: Japanese (Shift_JIS, EUC-JP) and Korean (EUC-KR) text, which the GB
    and Big5 codecs decode into plausible-looking garbage, is recognised and refused with
    its language and encoding; so is noise (random high bytes: a text whose characters
    are hardly ever among the ~500 most frequent ones)."""
    dec = _decode_bytes(data)
    if dec.encoding.replace("_", "-").lower().startswith(("utf-8", "utf-16", "utf-32", "ascii")):
        return dec
    _check_chinese(data, dec)
    return dec


# A legacy reading with at least this many non-ASCII characters must have at least this share
# of them among the most frequent characters. Measured: real paragraphs (DRCD, CMRC 2018,
# CAIL, SQuAD-zh: 4,052 of ≥ 50 characters) never below 0.41, the seeds 0.77–0.82; random
# bytes read as GB18030 0.09, Shift_JIS Japanese 0.02, EUC-KR Korean 0.09.
MIN_CHARS_TO_JUDGE = 50
MIN_TOP_SHARE = 0.2
KANA_SHARE = 0.15      # Japanese: kana among the non-ASCII characters of its own reading
HANGUL_SHARE = 0.5     # Korean: hangul syllables among them, and words separated by spaces


def _check_chinese(data: bytes, dec: Decoded) -> None:
    sample = _sample(data, "gb18030")
    for enc, language, share_of in (("shift_jis", "Japanese", _kana_share), ("cp932", "Japanese", _kana_share),
                                    ("euc_jp", "Japanese", _kana_share), ("euc_kr", "Korean", _hangul_share)):
        try:
            text = _decode_sample(sample, enc, whole=len(sample) == len(data))
        except UnicodeDecodeError:
            continue
        if share_of(text) >= (KANA_SHARE if language == "Japanese" else HANGUL_SHARE):
            name = {"shift_jis": "Shift_JIS", "cp932": "Shift_JIS", "euc_jp": "EUC-JP", "euc_kr": "EUC-KR"}[enc]
            raise InputError(f"{language} text ({name}), not Chinese; not indexed "
                             f"(saved as UTF-8 it would be read as it is)")
    top, _ = _char_tables()
    non_ascii = [ch for ch in dec.text[:SAMPLE_CHARS] if ch > "\x7f"]
    if len(non_ascii) >= MIN_CHARS_TO_JUDGE:
        share = sum(ch in top for ch in non_ascii) / len(non_ascii)
        if share < MIN_TOP_SHARE:
            raise InputError(f"does not look like Chinese text (read as {dec.encoding.upper()}, only "
                             f"{share:.0%} of its characters are common ones; random or binary bytes?)")


def _kana_share(text: str) -> float:
    non_ascii = [ch for ch in text[:SAMPLE_CHARS] if ch > "\x7f"]
    if len(non_ascii) < 20:
        return 0.0
    return sum("\u3040" <= ch <= "\u30ff" for ch in non_ascii) / len(non_ascii)


# Frequent hangul syllables (particles, endings, common word parts): real Korean text is
# made of them to a large part; Chinese GB bytes read as EUC-KR give syllables at random.
_COMMON_HANGUL = frozenset(
    "이다는의에하고을가지서한로기리사도를으어자대수인아들나시적게여해일습니있것정라주부무전상구과제보면"
    "동요장성만위소금원오거우문국신중생내학연진경결했되화모안미비조방저행공관세마개발실년월와은니다까"
    "분말그때더명없같터회해서울인천입텍트스용간감계교난당된들등러름물반번식알야업영운음재점통특할함후")


def _hangul_share(text: str) -> float:
    """Share of hangul among the non-ASCII characters — counted only when the text reads like
    Korean: words separated by spaces and mostly frequent syllables (else 0)."""
    sample = text[:SAMPLE_CHARS]
    non_ascii = [ch for ch in sample if ch > "\x7f"]
    if len(non_ascii) < 20 or sample.count(" ") < len(sample) / 8:     # Korean separates its words
        return 0.0
    hangul = [ch for ch in non_ascii if "\uac00" <= ch <= "\ud7a3"]
    if not hangul or sum(ch in _COMMON_HANGUL for ch in hangul) < 0.4 * len(hangul):
        return 0.0
    return len(hangul) / len(non_ascii)


def _decode_bytes(data: bytes) -> Decoded:
    if not data:
        return Decoded("", "utf-8")
    kind = _binary_magic(data)
    if kind:
        raise InputError(f"binary file ({kind}), not text")

    for bom, enc in _BOMS:
        if data.startswith(bom):
            return _check_text(_decode_declared(data[len(bom):], enc))

    if b"\x00" in data:
        dec = _utf16_without_bom(data)
        if dec is None:
            raise InputError("binary file, not text")
        return dec

    try:
        utf8 = Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as e:
        utf8_error = e
    else:
        if not _looks_like_text(utf8.text):
            # Han-only UTF-16 without BOM can be all ASCII bytes (氩 = 29 6C = ")l")
            dec = _utf16_without_bom(data)
            if dec is None or not any(ch > "\x7f" for ch in dec.text):
                raise InputError("binary file, not text")
            return dec
        if not _odd_utf8(utf8.text):
            return utf8
        # A short GBK/Big5 text can be valid UTF-8 by chance ("说" = CB B5 = "˵").
        return _full(data, _chinese_readings(data), ACCEPT_SCORE) or utf8

    scored = _chinese_readings(data)
    dec = _full(data, scored, ACCEPT_SCORE)
    if dec:
        return dec

    lenient = _lenient(data, "utf-8", require_multibyte=True)
    if lenient:
        return _check_text(lenient)

    dec = _full(data, scored, WEAK_SCORE)
    if dec:
        return dec

    guessed = _charset_normalizer_guess(data)
    if guessed:
        return guessed

    # Rare characters only (氩氪氙): a clean GB18030/Big5 reading with no junk in it.
    dec = _full(data, scored, 0.0, exclude_utf16=True)
    if dec:
        return dec

    raise InputError(f"undecodable bytes (not UTF-8, GB18030, Big5 or UTF-16; "
                     f"first bad byte at offset {utf8_error.start})")


def decode_text(data: bytes, name: str = "") -> str:
    """Bytes of a text file → str; :class:`InputError` ``"name: reason"`` if they are not text."""
    try:
        return decode_bytes(data).text
    except InputError as e:
        raise InputError(f"{name}: {e}" if name else str(e)) from None


def decode_declared(data: bytes, declared: str | None) -> Decoded:
    """Decode with a declared charset (HTML ``<meta charset>``) when it fits, else detect."""
    enc = _canonical(declared) if declared else None
    if enc:
        for bom, bom_enc in _BOMS:
            if data.startswith(bom):
                return decode_bytes(data)
        try:
            dec = Decoded(data.decode(enc), enc)
            if _looks_like_text(dec.text):
                return dec
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_bytes(data)


# ---------------------------------------------------------------------------

def _canonical(name: str) -> str | None:
    name = name.strip().strip("'\"").lower()
    try:
        enc = codecs.lookup(name).name
    except LookupError:
        return None
    # Declared GB2312/GBK pages routinely hold GB18030-only characters; Big5 pages cp950 ones.
    return {"gb2312": "gb18030", "gbk": "gb18030", "big5": "cp950"}.get(enc, enc)


def _binary_magic(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            if magic == b"MZ" and b"\x00" not in data[:64]:
                continue      # a text file that happens to start with "MZ"
            return kind
    return None


def _utf16_without_bom(data: bytes) -> Decoded | None:
    """BOM-less UTF-16. ASCII characters put their zero bytes on one parity, but
    Han characters can put one on the other (一 is U+4E00), so both byte orders
    are tried, the order with more zeros first on a tie. The reading must look
    like text (binary data read as UTF-16 is full of NULs and control
    characters) and not like mojibake."""
    if len(data) % 2:
        return None
    sample = data[:65536]
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    encs = ["utf-16-le", "utf-16-be"] if odd >= even else ["utf-16-be", "utf-16-le"]
    clear = max(odd, even) >= 2 * min(odd, even) and max(odd, even) >= 4
    readings = []
    for enc in encs:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            ascii_only = not any(ch > "\x7f" for ch in text[:SAMPLE_CHARS])
            score = 3.0 if ascii_only else _score(text)
            if score >= 0:
                if clear:           # the parity of the zeros decides
                    return Decoded(text, enc)
                readings.append((score, enc, text))
    if not readings:
        return None
    score, enc, text = max(readings, key=lambda r: r[0])   # max keeps the first on ties
    return Decoded(text, enc)


_LATIN_OK = re.compile(r"[\u00a0-\u00ff\u0391-\u03a9\u03b1-\u03c9\u0410-\u044f\u2000-\u206f]")


def _odd_utf8(text: str) -> bool:
    """Valid UTF-8 whose non-ASCII is only 2-byte odd characters (Latin extended, IPA,
    Armenian, Hebrew, Arabic …), as GBK/Big5 bytes read as UTF-8 look; Latin-1,
    basic Greek and Cyrillic letters are not odd."""
    sample = text[:SAMPLE_CHARS]
    non_ascii = [ch for ch in sample if ch > "\x7f"]
    if not non_ascii or len(non_ascii) > 64:
        return False
    return all(ch < "\u0800" and not _LATIN_OK.match(ch) for ch in non_ascii)


def _decode_declared(data: bytes, enc: str) -> Decoded:
    """Strict decode in a known encoding; a handful of bad bytes is tolerated with a note."""
    try:
        return Decoded(data.decode(enc), enc)
    except UnicodeDecodeError as e:
        dec = _lenient(data, enc, require_multibyte=False)
        if dec:
            return dec
        raise InputError(f"undecodable bytes in {enc.upper()} text at offset {e.start}") from None


def _lenient(data: bytes, enc: str, require_multibyte: bool) -> Decoded | None:
    text = data.decode(enc, errors="replace")
    bad = text.count("\ufffd") - (data.count(b"\xef\xbf\xbd") if enc == "utf-8" else 0)
    if bad <= 0:
        return Decoded(text, enc)
    if bad > max(1, len(text) // 1000):
        return None
    if require_multibyte:
        multibyte = sum(1 for ch in text[:SAMPLE_CHARS * 5] if ord(ch) > 0x7F and ch != "\ufffd")
        if multibyte < 20 * bad:
            return None
    return Decoded(text, enc, f"{bad} undecodable byte{'s' if bad > 1 else ''} replaced with U+FFFD")


def _looks_like_text(text: str) -> bool:
    sample = text[:200000]
    if "\x00" in sample:
        return False
    return len(_BAD_CONTROL.findall(sample)) <= len(sample) / 100


def _check_text(dec: Decoded) -> Decoded:
    if not _looks_like_text(dec.text):
        raise InputError("binary file, not text")
    return dec


SAMPLE_BYTES = 1 << 20   # candidates are scored on the first MiB; only the winner decodes it all


def _sample(data: bytes, enc: str) -> bytes:
    if len(data) <= SAMPLE_BYTES:
        return data
    if enc.startswith("utf-16"):
        return data[:SAMPLE_BYTES]
    cut = data.rfind(b"\n", 0, SAMPLE_BYTES)      # never inside a GB/Big5 character
    return data[:cut + 1] if cut > 0 else data


def _decode_sample(sample: bytes, enc: str, whole: bool) -> str:
    try:
        return sample.decode(enc)
    except UnicodeDecodeError as e:
        if whole or e.start < len(sample) - 4:
            raise
        return sample[:e.start].decode(enc)        # a character cut in two by the sample's end


def _chinese_readings(data: bytes) -> list[tuple[float, str, str]]:
    """Strict GB/Big5/UTF-16 readings that look like text, best first: (score, encoding,
    text of the sample — the whole text when the file is at most ``SAMPLE_BYTES``)."""
    out: list[tuple[float, str, str]] = []
    seen: set[str] = set()
    encs = list(_CHINESE_CODECS) + (["utf-16-le", "utf-16-be"] if len(data) % 2 == 0 else [])
    for order, enc in enumerate(encs):
        sample = _sample(data, enc)
        try:
            text = _decode_sample(sample, enc, whole=len(sample) == len(data))
        except UnicodeDecodeError:
            continue
        if text in seen or not _looks_like_text(text):
            continue
        seen.add(text)
        score = _score(text)
        if enc.startswith("utf-16") and score < ACCEPT_SCORE:
            continue      # BOM-less, NUL-less UTF-16 (no ASCII at all): only when clearly Chinese
        # tiny preference for the earlier codec on equal scores
        out.append((score - order * 1e-6, enc, text))
    out.sort(key=lambda t: -t[0])
    if len(out) >= 2:
        out = _break_gb_big5_tie(_sample(data, "gb18030"), out)
    return out


def _full(data: bytes, scored: list[tuple[float, str, str]], min_score: float,
          exclude_utf16: bool = False) -> Decoded | None:
    """The best reading at or above ``min_score`` that also decodes the whole file."""
    for score, enc, text in scored:
        if score < min_score or (exclude_utf16 and enc.startswith("utf-16")):
            continue
        if len(_sample(data, enc)) == len(data):   # the sample was the whole file
            return Decoded(text, enc)
        try:
            full = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(full):
            return Decoded(full, enc)
    return None


def _break_gb_big5_tie(data: bytes, scored: list[tuple[float, str, str]]) -> list[tuple[float, str, str]]:
    top, second = scored[0], scored[1]
    families = {top[1] in _GB, second[1] in _GB}
    if families != {True, False} or top[0] - second[0] >= TIE_MARGIN or len(data) < 200:
        return scored
    try:
        from charset_normalizer import from_bytes
        guess = from_bytes(data, cp_isolation=[top[1], second[1]]).best()
    except Exception:   # noqa: BLE001 — a helper only; never let it break decoding
        return scored
    if guess is not None and codecs.lookup(guess.encoding).name == codecs.lookup(second[1]).name:
        return [second, top] + scored[2:]
    return scored


@functools.lru_cache(maxsize=1)
def _char_tables() -> tuple[frozenset, frozenset]:
    """(most frequent characters, common characters) in both scripts."""
    common = set()
    for b1 in range(0xB0, 0xD8):            # GB2312 level 1: 3755 most used simplified
        for b2 in range(0xA1, 0xFF):
            try:
                common.add(bytes((b1, b2)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    trails = list(range(0x40, 0x7F)) + list(range(0xA1, 0xFF))
    for b1 in range(0xA4, 0xC7):            # Big5 level 1: 5401 common traditional
        for b2 in trails:
            if b1 == 0xC6 and b2 > 0x7E:
                break
            try:
                common.add(bytes((b1, b2)).decode("big5"))
            except UnicodeDecodeError:
                pass
    top = set(_TOP_CHARS)
    try:
        from qa.text.normalize import to_traditional
        top |= {c for c in to_traditional(_TOP_CHARS) if c.strip()}
    except Exception:   # noqa: BLE001 — OpenCC missing: simplified list alone
        pass
    common |= top
    return frozenset(top), frozenset(common)


def _char_weight(ch: str, top: frozenset, common: frozenset) -> float:
    if ch in top:
        return 3.0
    if ch in common or ch in _PUNCT:
        return 1.0
    cp = ord(ch)
    if 0x4E00 <= cp <= 0x9FFF or 0xFF01 <= cp <= 0xFF5E:
        return 0.25       # a rare ideograph still beats an arrow or a dingbat
    if (0x3040 <= cp <= 0x30FF or 0x3100 <= cp <= 0x312F or 0x3130 <= cp <= 0x318F
            or 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x2500 <= cp <= 0x257F
            or 0xE000 <= cp <= 0xF8FF or 0x80 <= cp <= 0x9F or 0xD800 <= cp <= 0xDFFF
            or 0x0370 <= cp <= 0x04FF or 0xFE10 <= cp <= 0xFE6F or 0xFDD0 <= cp <= 0xFDEF
            or cp >= 0xFFF0 and cp <= 0xFFFF):
        return -2.0
    if 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or cp > 0xFFFF:
        return -1.0
    return 0.0


@functools.lru_cache(maxsize=65536)
def _script_of(ch: str) -> int:
    """+1 traditional-only, −1 simplified-only, 0 either/neither (per OpenCC)."""
    try:
        from qa.text.normalize import to_simplified, to_traditional
    except Exception:   # noqa: BLE001
        return 0
    if to_simplified(ch) != ch:
        return 1
    if to_traditional(ch) != ch:
        return -1
    return 0


def _score(text: str) -> float:
    """Mean plausibility of the non-ASCII characters of ``text`` as Chinese (see module doc).

    Real text keeps to one script; GB bytes of Big5 text make a mix of
    simplified-only and traditional-only characters, which costs up to 2.
    """
    top, common = _char_tables()
    total = 0.0
    n = trad = simp = 0
    for ch in text[:SAMPLE_CHARS]:
        if ch < "\x80":
            if ch < " " and ch not in "\t\n\r\f\v":
                total -= 2.0
                n += 1
            continue
        total += _char_weight(ch, top, common)
        n += 1
        if "\u4e00" <= ch <= "\u9fff":
            s = _script_of(ch)
            trad += s > 0
            simp += s < 0
    if not n:
        return 0.0
    return total / n - 2.0 * min(trad, simp) / n


def _charset_normalizer_guess(data: bytes) -> Decoded | None:
    if sum(1 for b in data[:65536] if b > 0x7F) < 16:
        return None
    try:
        from charset_normalizer import from_bytes
        best = from_bytes(data).best()
    except Exception:   # noqa: BLE001
        return None
    if best is None or best.chaos > 0.1:
        return None
    try:
        text = data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    return Decoded(text, best.encoding) if _looks_like_text(text) else None
